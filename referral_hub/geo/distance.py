"""Great-circle distance and bounding boxes on a spherical Earth."""

from __future__ import annotations

import math

from referral_hub.geo.base import Point

# IUGG mean Earth radius. The sphere is off by at most 0.5% against the ellipsoid, far
# below what separates a street route from a straight line.
EARTH_RADIUS_KM = 6371.0088


def haversine_rad(
    lat1: float, lon1: float, cos_lat1: float, lat2: float, lon2: float, cos_lat2: float
) -> float:
    """Great-circle km between two points given in radians, with their latitudes' cosines.

    Split out so that a matrix can compute radians and cosines once per point; every
    distance in the package goes through here, so travel() and matrix() agree exactly.
    """
    sin_dlat = math.sin((lat2 - lat1) / 2)
    sin_dlon = math.sin((lon2 - lon1) / 2)
    a = sin_dlat * sin_dlat + cos_lat1 * cos_lat2 * sin_dlon * sin_dlon
    # min(): rounding can push `a` a hair above 1 for antipodal points.
    return 2 * EARTH_RADIUS_KM * math.asin(math.sqrt(min(1.0, a)))


def haversine_km(a: Point, b: Point) -> float:
    """Great-circle distance between two points, in km."""
    lat1, lat2 = math.radians(a.lat), math.radians(b.lat)
    return haversine_rad(
        lat1, math.radians(a.lon), math.cos(lat1), lat2, math.radians(b.lon), math.cos(lat2)
    )


def bounding_box(center: Point, radius_km: float) -> tuple[float, float, float, float]:
    """(min_lat, min_lon, max_lat, max_lon) enclosing every point within `radius_km`.

    Meant for a range-scan prefilter on a (latitude, longitude) index, so it errs wide:
    near a pole, or where the box would cross the antimeridian, it spans all longitudes
    rather than split into two ranges.
    """
    if not (radius_km >= 0 and math.isfinite(radius_km)):
        raise ValueError(f"radius must be a finite non-negative number of km: {radius_km!r}")
    angle = radius_km / EARTH_RADIUS_KM
    lat = math.radians(center.lat)
    min_lat, max_lat = lat - angle, lat + angle
    if min_lat <= -math.pi / 2 or max_lat >= math.pi / 2:
        return (max(-90.0, math.degrees(min_lat)), -180.0, min(90.0, math.degrees(max_lat)), 180.0)
    # The widest longitude of a circle on the sphere is not at its centre's latitude:
    # asin(sin r / cos lat) is the exact half-width (Matuschek, "Finding points within a
    # distance of a latitude/longitude using bounding coordinates").
    half_width = math.degrees(math.asin(min(1.0, math.sin(angle) / math.cos(lat))))
    min_lon, max_lon = center.lon - half_width, center.lon + half_width
    if min_lon < -180.0 or max_lon > 180.0:
        min_lon, max_lon = -180.0, 180.0
    return (math.degrees(min_lat), min_lon, math.degrees(max_lat), max_lon)
