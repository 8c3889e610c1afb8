"""US ZIP centroids from the offline `zipcodes` data, looked up by code or by proximity."""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import zipcodes

from referral_hub.geo.base import Place, Point
from referral_hub.geo.distance import haversine_km

# Reverse lookups index ZIPs by cells of this many degrees, so a call scans the few hundred
# ZIPs of its region rather than all 42,000. Half a degree is a metro area: small enough to
# keep each cell's list short, big enough that a city's calls share a handful of cells.
CELL_DEGREES = 0.5
KM_PER_MILE = 1.609344


@dataclass(frozen=True, slots=True)
class ZipCentroid:
    """A ZIP code with the centre of its area and the names of the place it serves."""

    code: str
    point: Point
    city: str
    state: str
    cities: tuple[str, ...]  # the primary city and the other names the USPS accepts

    def to_place(self) -> Place:
        """This centroid as a Place of kind "zip"."""
        return Place(
            name=f"{self.city}, {self.state} {self.code}",
            point=self.point,
            postal_code=self.code,
            kind="zip",
            source="offline",
        )


def _centroid(record: dict) -> ZipCentroid | None:
    """A ZipCentroid from one `zipcodes` record; None when its position is unusable."""
    try:
        point = Point(float(record["lat"]), float(record["long"]))
    except (KeyError, TypeError, ValueError):
        return None
    # The data writes "no position" as 0,0 (military and some unique ZIPs): a centroid in
    # the Gulf of Guinea would make a far-away place look near.
    if point.lat == 0.0 and point.lon == 0.0:
        return None
    cities = (record["city"], *record.get("acceptable_cities", ()))
    return ZipCentroid(record["zip_code"], point, record["city"], record["state"], cities)


@lru_cache(maxsize=4096)
def lookup(code: str) -> ZipCentroid | None:
    """The centroid of a 5-digit ZIP code, or None if there is no such ZIP."""
    if not (len(code) == 5 and code.isascii() and code.isdigit()):
        return None  # zipcodes raises on malformed input; unknown text is not an error here
    for record in zipcodes.matching(code):
        centroid = _centroid(record)
        if centroid:
            return centroid
    return None


def _clamped(lat: float, lon: float) -> Point:
    # Cells along the poles and the antimeridian reach past the valid range.
    return Point(max(-90.0, min(90.0, lat)), max(-180.0, min(180.0, lon)))


def _cell_of(point: Point) -> tuple[int, int]:
    return math.floor(point.lat / CELL_DEGREES), math.floor(point.lon / CELL_DEGREES)


@lru_cache(maxsize=256)
def _cell_zips(cell: tuple[int, int], reach_km: float) -> tuple[ZipCentroid, ...]:
    """Residential ZIPs within `reach_km` of any point of the cell."""
    south, west = cell[0] * CELL_DEGREES, cell[1] * CELL_DEGREES
    centre = _clamped(south + CELL_DEGREES / 2, west + CELL_DEGREES / 2)
    corners = [
        _clamped(lat, lon)
        for lat in (south, south + CELL_DEGREES)
        for lon in (west, west + CELL_DEGREES)
    ]
    radius_km = max(haversine_km(centre, c) for c in corners) + reach_km
    records = zipcodes.filter_by_coordinates(
        centre.lat, centre.lon, radius_in_miles=radius_km / KM_PER_MILE
    )
    # PO box and single-organisation ZIPs sit on a post office or a building: as "the area
    # you are in" they would mislead, so only delivery-area ZIPs answer a reverse lookup.
    found = (_centroid(r) for r in records if r["zip_code_type"] == "STANDARD" and r.get("active"))
    return tuple(c for c in found if c)


def nearest(point: Point, max_km: float) -> ZipCentroid | None:
    """The residential ZIP whose centroid is nearest `point`, if within `max_km`."""
    best: ZipCentroid | None = None
    best_km = max_km
    for centroid in _cell_zips(_cell_of(point), max_km):
        km = haversine_km(point, centroid.point)
        if km <= best_km:
            best, best_km = centroid, km
    return best
