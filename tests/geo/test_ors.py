"""openrouteservice: routed travel and matrix against a local ORS, its failures, the cache."""

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from referral_hub.geo.base import GeoUnavailable, Mode, Place, Point
from referral_hub.geo.fallback import FallbackGeo
from referral_hub.geo.offline import OfflineGeo
from referral_hub.geo.ors import OrsGeo, no_route_note
from referral_hub.geo.routecache import Leg, RouteCache
from referral_hub.geo.service import EXTENSION_KEY, get_geo
from tests.geo.servers import NOT_ROUTABLE, GeoServer, Reply, fake_leg, free_port, ors_error

A, B = Point(44.9773, -93.2654), Point(44.9486, -93.2391)
C, D = Point(44.9979, -93.3084), Point(44.9626, -93.2471)
LANDMARK = Place("Midtown Global Market", Point(44.9487, -93.2603), None, "landmark", "offline")
MONDAY_9AM = datetime(2026, 3, 2, 9, 30)


def lon_lat(p):
    return [p.lon, p.lat]


def leg(o, d):
    """What the fake server routes from o to d: (minutes, km)."""
    seconds, meters = fake_leg(lon_lat(o), lon_lat(d))
    return seconds / 60, meters / 1000


@pytest.fixture
def server():
    with GeoServer() as running:
        yield running


@pytest.fixture
def offline():
    return OfflineGeo(lambda: (LANDMARK,))


@pytest.fixture
def clock():
    """A settable wall clock for the cache: the hour of the week comes from it."""
    return {"now": MONDAY_9AM, "monotonic": 1000.0}


def make_ors(server, clock, **kwargs):
    cache = RouteCache(
        "America/Chicago",
        clock=lambda: clock["monotonic"],
        now=lambda tz: clock["now"].replace(tzinfo=tz),
        **kwargs.pop("cache_options", {}),
    )
    kwargs.setdefault("timeout", 2.0)
    return OrsGeo(server.url, key="test-key", cache=cache, **kwargs)


@pytest.fixture
def ors(server, clock):
    return make_ors(server, clock)


# --- routed answers ------------------------------------------------------------------------


def test_travel_is_routed_and_sent_as_lon_lat(server, ors):
    estimate = ors.travel(A, B)
    minutes, km = leg(A, B)
    assert estimate.source == "routed" and not estimate.estimated and estimate.note is None
    assert estimate.minutes == pytest.approx(minutes) and estimate.distance_km == pytest.approx(km)
    assert estimate.minutes_low < estimate.minutes < estimate.minutes_high
    [seen] = server.requests()
    assert (seen.method, seen.path) == ("POST", "/v2/directions/driving-car/json")
    assert seen.body["coordinates"] == [[A.lon, A.lat], [B.lon, B.lat]]
    assert seen.body["radiuses"] == [350.0, 350.0]  # generous for phone GPS fixes
    assert seen.headers["Authorization"] == "test-key"


@pytest.mark.parametrize(
    ("mode", "profile"),
    [(Mode.DRIVE, "driving-car"), (Mode.WALK, "foot-walking"), (Mode.WHEELCHAIR, "wheelchair")],
)
def test_each_mode_asks_its_profile(server, ors, mode, profile):
    assert ors.travel(A, B, mode).mode == mode
    assert ors.matrix([A], [C], mode)[0][0].mode == mode
    assert [s.path for s in server.requests()] == [
        f"/v2/directions/{profile}/json",
        f"/v2/matrix/{profile}/json",
    ]


def test_snap_radius_is_configurable(server, clock):
    make_ors(server, clock, snap_radius_m=800).travel(A, B)
    assert server.requests()[0].body["radiuses"] == [800, 800]


def test_matrix_is_routed_with_null_cells_unreachable(server, ors):
    server.unreachable.add((D.lon, D.lat))
    rows = ors.matrix([A, B], [C, D])
    assert [[e.source if e else None for e in row] for row in rows] == [
        ["routed", None],
        ["routed", None],
    ]
    assert rows[1][0].minutes == pytest.approx(leg(B, C)[0])
    [seen] = server.requests()
    assert seen.body["locations"] == [lon_lat(A), lon_lat(B), lon_lat(C), lon_lat(D)]
    assert (seen.body["sources"], seen.body["destinations"]) == ([0, 1], [2, 3])
    assert sorted(seen.body["metrics"]) == ["distance", "duration"]


def test_a_big_matrix_is_split_within_the_server_limit(server, clock):
    rows = make_ors(server, clock, matrix_max_cells=2).matrix([A], [B, C, D])
    assert [e.minutes for e in rows[0]] == pytest.approx([leg(A, p)[0] for p in (B, C, D)])
    sizes = [len(s.body["destinations"]) for s in server.requests()]
    assert sizes == [2, 1]


# --- the cache -----------------------------------------------------------------------------


def test_the_same_trip_is_asked_once(server, ors):
    first = ors.travel(A, B)
    # A GPS fix a few metres away rounds to the same trip.
    again = ors.travel(Point(A.lat + 0.00002, A.lon - 0.00002), B)
    assert again == first and len(server.requests()) == 1


def test_matrix_after_travel_asks_only_the_missing_pairs(server, ors):
    ors.travel(A, B)
    rows = ors.matrix([A], [B, C])
    [seen] = server.requests("/v2/matrix")
    assert seen.body["locations"] == [lon_lat(A), lon_lat(C)]
    assert rows[0][0] == ors.travel(A, B)
    ors.matrix([A], [C, B])
    assert len(server.requests()) == 2  # nothing new to ask


def test_matrix_requests_never_repeat_a_known_trip(server, ors):
    ors.travel(A, C)
    ors.travel(B, D)
    rows = ors.matrix([A, B], [C, D])
    asked = sorted(tuple(map(tuple, s.body["locations"])) for s in server.requests("/v2/matrix"))
    assert asked == sorted(
        [(tuple(lon_lat(A)), tuple(lon_lat(D))), (tuple(lon_lat(B)), tuple(lon_lat(C)))]
    )
    assert all(e.source == "routed" for row in rows for e in row)


def test_unreachable_cells_are_remembered_too(server, ors):
    server.unreachable.add((D.lon, D.lat))
    assert ors.matrix([A], [D]) == [[None]]
    assert ors.matrix([A], [D]) == [[None]]
    assert len(server.requests()) == 1


def test_cache_keys_on_profile_and_hour_of_week(server, ors, clock):
    ors.travel(A, B)
    ors.travel(A, B, Mode.WALK)
    clock["now"] += timedelta(minutes=20)  # 9:50, same hour
    ors.travel(A, B)
    clock["now"] += timedelta(minutes=20)  # 10:10, another hour
    ors.travel(A, B)
    assert len(server.requests()) == 3


def test_concurrent_callers_share_one_cache(server, ors):
    points = [Point(44.95 + i / 1000, -93.25) for i in range(8)]
    with ThreadPoolExecutor(8) as pool:  # each thread gets its own client
        estimates = list(pool.map(lambda p: ors.travel(A, p), points * 3))
    assert all(e.source == "routed" for e in estimates) and len(ors.cache) == 8
    asked = len(server.requests())
    assert [ors.travel(A, p) for p in points] == estimates[:8]
    assert len(server.requests()) == asked


def test_cache_entries_expire_and_are_bounded(clock):
    cache = RouteCache("UTC", max_entries=2, ttl=60, clock=lambda: clock["monotonic"])
    keys = [cache.key("driving-car", A, p, 0) for p in (B, C, D)]
    for key in keys:
        cache.put(key, Leg(60, 500))
    assert cache.get(keys[0]) is None and len(cache) == 2  # least recently used went first
    clock["monotonic"] += 60
    assert cache.get(keys[2]) is None


def test_hour_of_week_is_in_the_city_time_zone():
    monday_3am_utc = datetime(2026, 3, 2, 3, 0, tzinfo=ZoneInfo("UTC"))
    cache = RouteCache("America/Chicago", now=monday_3am_utc.astimezone)
    assert cache.hour_of_week() == 6 * 24 + 21  # Sunday 21:00 in Minneapolis


# --- service failures fall back to the offline estimate ------------------------------------

FAILURES = {
    "rate limited": Reply(429, {"error": "Rate limit exceeded"}),
    "quota": Reply(403, {"error": "Quota exceeded"}),
    "server error": Reply(500, {"error": {"code": 2099, "message": "Unknown internal error"}}),
    "unavailable (HTTP 503": Reply(503, {"error": "Service unavailable"}),
    "HTTP 502, not JSON": Reply(502, "<html>Bad Gateway</html>"),
    "not found (check ORS_BASE_URL": Reply(404, {"error": "Not Found"}),
}


@pytest.mark.parametrize("reason", FAILURES)
def test_service_failures_answer_offline_with_a_note(server, ors, offline, caplog, reason):
    geo = FallbackGeo(ors, offline)
    server.script(FAILURES[reason])
    with caplog.at_level(logging.WARNING, logger="referral_hub.geo.fallback"):
        estimate = geo.travel(A, B)
    assert estimate.source == "estimate" and estimate.note == FallbackGeo._note()
    assert estimate.minutes == offline.travel(A, B).minutes
    assert reason in caplog.text
    assert len(server.requests()) == 1  # no retries: someone is waiting
    # A failure is not remembered: the next call asks again, and is routed.
    assert geo.travel(A, B).source == "routed"


@pytest.mark.parametrize("reason", ["rate limited", "quota", "server error"])
def test_matrix_failures_answer_offline_cell_by_cell(server, ors, offline, caplog, reason):
    server.script(FAILURES[reason])
    with caplog.at_level(logging.WARNING, logger="referral_hub.geo.fallback"):
        rows = FallbackGeo(ors, offline).matrix([A, B], [C])
    assert all(e.source == "estimate" and e.note for row in rows for e in row)
    assert reason in caplog.text


def test_a_slow_server_is_not_waited_out(server, clock, offline, caplog):
    server.script(Reply(200, {"routes": []}, delay=10))
    geo = FallbackGeo(make_ors(server, clock, timeout=0.3), offline)
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="referral_hub.geo.fallback"):
        estimate = geo.travel(A, B)
    assert time.monotonic() - started < 2.0
    assert estimate.source == "estimate" and "timed out after 0.3 s" in caplog.text
    assert len(server.requests()) == 1


def test_an_unreachable_server_answers_offline(offline, caplog):
    geo = FallbackGeo(OrsGeo(f"http://127.0.0.1:{free_port()}", timeout=1), offline)
    with caplog.at_level(logging.WARNING, logger="referral_hub.geo.fallback"):
        rows = geo.matrix([A], [B])
    assert rows[0][0].source == "estimate" and "unreachable" in caplog.text


def test_a_malformed_answer_is_a_failure_not_a_crash(server, ors):
    server.script(Reply(200, {"routes": [{}]}), Reply(200, {"durations": [[1]]}))
    with pytest.raises(GeoUnavailable, match="no route summary"):
        ors.travel(A, B)
    with pytest.raises(GeoUnavailable, match="malformed matrix"):
        ors.matrix([A], [B])


# --- no route, point not routable: an estimate that says why -------------------------------


@pytest.mark.parametrize(
    ("message", "which"),
    [
        (f"{NOT_ROUTABLE} 0: -93.2654000 44.9773000.", "origin"),
        (f"{NOT_ROUTABLE} 1: -93.2391000 44.9486000.", "destination"),
        (
            "Could not find point 1: -93.2391000 44.9486000 within a radius of 350.0 meters.",
            "destination",
        ),
        ("Could not find a routable point.", None),
    ],
)
def test_an_unroutable_point_is_named_in_the_note(server, ors, message, which, caplog):
    server.script(ors_error(404, 2010, message))
    with caplog.at_level(logging.WARNING):
        estimate = FallbackGeo(ors, OfflineGeo(tuple)).travel(A, B)
    assert estimate.source == "estimate" and estimate.note == no_route_note(which, Mode.DRIVE)
    assert estimate.minutes == OfflineGeo(tuple).travel(A, B).minutes
    assert "failed" not in caplog.text  # an answer, not a service failure


def test_the_fake_server_names_the_unroutable_destination(server, ors):
    server.unreachable.add((B.lon, B.lat))
    assert ors.travel(A, B).note == no_route_note("destination", Mode.DRIVE)
    assert "destination" in no_route_note("destination", Mode.DRIVE)
    assert "starting point" in no_route_note("origin", Mode.DRIVE)


@pytest.mark.parametrize("mode", [Mode.DRIVE, Mode.WHEELCHAIR])
def test_no_route_is_an_estimate_with_a_note_and_is_remembered(server, ors, mode):
    message = "Route could not be found - Unable to find a route between points 1 and 2."
    server.script(ors_error(404, 2009, message))
    estimate = ors.travel(A, B, mode)
    assert estimate.source == "estimate" and estimate.note == no_route_note(None, mode)
    assert ("wheelchair" in estimate.note) == (mode is Mode.WHEELCHAIR)
    assert ors.travel(A, B, mode) == estimate and len(server.requests()) == 1
    assert ors.matrix([A], [B], mode) == [[None]]  # unreachable, in matrix terms


def test_a_matrix_point_that_cannot_be_placed_falls_back_naming_it(server, ors, offline, caplog):
    server.script(ors_error(404, 6010, f"{NOT_ROUTABLE} 2: -93.3084000 44.9979000."))
    with caplog.at_level(logging.WARNING, logger="referral_hub.geo.fallback"):
        rows = FallbackGeo(ors, offline).matrix([A], [B, C])
    assert all(e.source == "estimate" for e in rows[0])
    assert "cannot place destination 1" in caplog.text


# --- geocoding is delegated --------------------------------------------------------------


def test_without_a_geocoder_places_come_from_the_fallback(server, ors, offline):
    geo = FallbackGeo(ors, offline)
    assert geo.geocode("midtown global market") == [LANDMARK]
    assert geo.reverse(LANDMARK.point) == LANDMARK
    assert server.requests() == []


def test_a_given_geocoder_answers_places(server, clock, offline):
    ors = make_ors(server, clock, geocoder=offline)
    assert ors.geocode("midtown global market") == [LANDMARK]
    assert ors.reverse(LANDMARK.point) == LANDMARK


# --- built from config -------------------------------------------------------------------


@pytest.fixture
def configured(app, monkeypatch):
    """Set config keys on the shared app; its geo backend is rebuilt for the test."""

    def configure(**settings):
        for key, value in settings.items():
            monkeypatch.setitem(app.config, key, value)

    app.extensions.pop(EXTENSION_KEY, None)
    yield configure
    app.extensions.pop(EXTENSION_KEY, None)


def test_config_builds_a_routed_backend_over_offline(app, server, configured):
    configured(GEO_BACKEND="openrouteservice", ORS_BASE_URL=server.url, ORS_TIMEOUT=2)
    with app.app_context():
        geo = get_geo()
        assert isinstance(geo, FallbackGeo) and isinstance(geo.primary, OrsGeo)
        assert isinstance(geo.primary.geocoder, OfflineGeo)  # GEOCODER defaults to offline
        assert geo.travel(A, B).source == "routed"
        assert geo.geocode("55411")[0].postal_code == "55411"
    assert "Authorization" not in server.requests()[0].headers  # no key configured


@pytest.mark.parametrize(
    ("settings", "complaint"),
    [
        ({}, "ORS_BASE_URL"),
        ({"ORS_BASE_URL": "  "}, "ORS_BASE_URL"),
        ({"ORS_BASE_URL": "ors.internal:8080/ors"}, "not an http"),
        ({"ORS_BASE_URL": "http://127.0.0.1:9", "ORS_TIMEOUT": "soon"}, "ORS_TIMEOUT"),
        ({"ORS_BASE_URL": "http://127.0.0.1:9", "ORS_SNAP_RADIUS_M": 0}, "ORS_SNAP_RADIUS_M"),
        ({"ORS_BASE_URL": "http://127.0.0.1:9", "TIMEZONE": "Mars/Olympus"}, "Mars"),
        ({"ORS_BASE_URL": "http://127.0.0.1:9", "GEOCODER": "google"}, "GEOCODER"),
    ],
)
def test_misconfiguration_is_refused_at_first_use(app, configured, settings, complaint):
    configured(**{"GEO_BACKEND": "openrouteservice", "ORS_BASE_URL": None, **settings})
    with app.app_context(), pytest.raises(RuntimeError, match=complaint):
        get_geo()
