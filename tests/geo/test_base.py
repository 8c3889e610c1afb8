"""Points, "lat,lon" parsing, travel estimates and the backend protocol."""

import math

import pytest

from referral_hub.geo.base import GeoBackend, Mode, Point, TravelEstimate, parse_point
from referral_hub.geo.offline import OfflineGeo


def test_point_keeps_valid_coordinates():
    point = Point(44.9773, -93.2654)
    assert (point.lat, point.lon) == (44.9773, -93.2654)


@pytest.mark.parametrize(
    ("lat", "lon"), [(90.0001, 0), (-91, 0), (0, 180.5), (0, -181), (math.nan, 0), (0, math.inf)]
)
def test_point_refuses_impossible_coordinates(lat, lon):
    with pytest.raises(ValueError):
        Point(lat, lon)


def test_point_accepts_the_extremes():
    assert Point(-90, -180) and Point(90, 180)


@pytest.mark.parametrize(
    "text",
    ["44.97, -93.26", "44.97 -93.26", "44.97,-93.26", " (44.97, -93.26) ", "[44.97;-93.26]"],
)
def test_parse_point_reads_lat_lon(text):
    assert parse_point(text) == Point(44.97, -93.26)


@pytest.mark.parametrize("text", ["91, 0", "-90.5 10", "45, 181", "45, -180.01"])
def test_parse_point_refuses_out_of_range(text):
    assert parse_point(text) is None


@pytest.mark.parametrize(
    "text", ["", "   ", "lake street", "44.97", "44.97, -93.26, 5", "55411", "44.97,", "a, b"]
)
def test_parse_point_refuses_junk(text):
    assert parse_point(text) is None


def test_estimated_is_true_only_for_offline_estimates():
    estimate = TravelEstimate(10, 8, 14, 5, Mode.DRIVE, "estimate")
    routed = TravelEstimate(10, 9, 12, 5, Mode.DRIVE, "routed")
    assert estimate.estimated and not routed.estimated


def test_mode_values_are_the_api_strings():
    assert [m.value for m in Mode] == ["drive", "walk", "wheelchair"]
    assert Mode("walk") is Mode.WALK


def test_offline_backend_follows_the_protocol():
    assert isinstance(OfflineGeo(tuple), GeoBackend)
