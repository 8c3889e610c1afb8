"""A failing remote backend falls back to the offline one and says so."""

import logging

import pytest

from referral_hub.geo.base import GeoUnavailable, Mode, Place, Point, TravelEstimate
from referral_hub.geo.fallback import FallbackGeo
from referral_hub.geo.offline import OfflineGeo

A, B = Point(44.9773, -93.2654), Point(44.9486, -93.2391)
LANDMARK = Place("Midtown Global Market", Point(44.9487, -93.2603), None, "landmark", "offline")


class Down:
    """A remote backend whose service does not answer."""

    def __init__(self, error: Exception | None = None) -> None:
        self.error = error or GeoUnavailable("timed out after 5 s")

    def geocode(self, text):
        raise self.error

    def reverse(self, point):
        raise self.error

    def travel(self, origin, dest, mode=Mode.DRIVE):
        raise self.error

    def matrix(self, origins, dests, mode=Mode.DRIVE):
        raise self.error


class Up:
    """A remote backend that answers with routed times."""

    def geocode(self, text):
        return []

    def reverse(self, point):
        return None

    def travel(self, origin, dest, mode=Mode.DRIVE):
        return TravelEstimate(11.0, 10.0, 13.0, 4.6, mode, "routed")

    def matrix(self, origins, dests, mode=Mode.DRIVE):
        return [[self.travel(o, d, mode) for d in dests] for o in origins]


@pytest.fixture
def offline():
    return OfflineGeo(lambda: (LANDMARK,))


def test_travel_falls_back_to_an_estimate_with_a_note(offline, caplog):
    with caplog.at_level(logging.WARNING, logger="referral_hub.geo.fallback"):
        estimate = FallbackGeo(Down(), offline).travel(A, B, Mode.WALK)
    assert estimate.source == "estimate" and estimate.estimated and estimate.note
    assert estimate.minutes == offline.travel(A, B, Mode.WALK).minutes
    assert "timed out" in caplog.text


def test_matrix_falls_back_cell_by_cell(offline):
    rows = FallbackGeo(Down(), offline).matrix([A, B], [B])
    assert [[e.source for e in row] for row in rows] == [["estimate"], ["estimate"]]
    assert all(e.note for row in rows for e in row)


def test_geocode_and_reverse_fall_back_to_offline_places(offline):
    geo = FallbackGeo(Down(), offline)
    assert geo.geocode("midtown global market") == [LANDMARK]
    assert geo.reverse(LANDMARK.point) == LANDMARK
    assert LANDMARK.source == "offline"


def test_a_working_service_answers_unchanged(offline):
    geo = FallbackGeo(Up(), offline)
    estimate = geo.travel(A, B)
    assert estimate.source == "routed" and not estimate.estimated and estimate.note is None
    assert geo.matrix([A], [B])[0][0].source == "routed"
    # An empty answer from a working geocoder is an answer, not a failure.
    assert geo.geocode("midtown global market") == []


def test_programming_errors_are_not_swallowed(offline):
    with pytest.raises(KeyError):
        FallbackGeo(Down(KeyError("profile")), offline).travel(A, B)
