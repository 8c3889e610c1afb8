"""geopy geocoders (Nominatim, Pelias) against a local server, their failures, their config."""

import logging
import time

import pytest

from referral_hub.geo.base import GeoUnavailable, Place, Point
from referral_hub.geo.fallback import FallbackGeo
from referral_hub.geo.geocoders import NominatimGeocoder, PeliasGeocoder, parse_viewbox
from referral_hub.geo.offline import OfflineGeo
from referral_hub.geo.ors import OrsGeo
from referral_hub.geo.service import EXTENSION_KEY, get_geo
from tests.geo.servers import GeoServer, Reply, free_port

AGENT = "referral-hub-tests/1.0 (ops@city.example.org)"
LANDMARK = Place("Midtown Global Market", Point(44.9487, -93.2603), None, "landmark", "offline")
CITY = (Point(44.89, -93.33), Point(45.05, -93.19))

HUB = {
    "place_id": 1,
    "lat": "44.9979",
    "lon": "-93.3084",
    "class": "building",
    "type": "yes",
    "name": "",
    "display_name": "1256, Penn Avenue North, Near North, Minneapolis, Hennepin County, "
    "Minnesota, 55411, United States",
    "address": {
        "house_number": "1256",
        "road": "Penn Avenue North",
        "city": "Minneapolis",
        "state": "Minnesota",
        "postcode": "55411-3521",
        "country_code": "us",
    },
}
ZIP_AREA = {
    "lat": "45.0",
    "lon": "-93.3",
    "class": "place",
    "type": "postcode",
    "display_name": "55411, Minneapolis, Hennepin County, Minnesota, United States",
    "address": {"postcode": "55411", "country_code": "us"},
}


def feature(name, lon, lat, postalcode=None, layer="address"):
    properties = {"name": name, "label": f"{name}, Minneapolis, MN, USA", "layer": layer}
    if postalcode:
        properties["postalcode"] = postalcode
    return {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [lon, lat]},
        "properties": properties,
    }


@pytest.fixture
def server():
    with GeoServer() as running:
        yield running


@pytest.fixture
def nominatim(server):
    return NominatimGeocoder(server.url, AGENT, timeout=2, viewbox=CITY)


@pytest.fixture
def offline():
    return OfflineGeo(lambda: (LANDMARK,))


# --- Nominatim -----------------------------------------------------------------------------


def test_nominatim_geocodes_an_address(server, nominatim):
    server.nominatim["1256 penn ave n"] = [HUB]
    [place] = nominatim.geocode("1256 Penn Ave N")
    assert place == Place(
        "1256 Penn Avenue North",
        Point(44.9979, -93.3084),
        "55411",  # ZIP+4 cut to the ZIP
        "address",
        "nominatim",
        HUB["display_name"],
    )
    [seen] = server.requests("/search")
    assert seen.query["q"] == "1256 Penn Ave N" and seen.query["countrycodes"] == "us"
    assert seen.query["addressdetails"] == "1" and seen.query["limit"] == "10"
    assert seen.query["viewbox"] == "-93.33,44.89,-93.19,45.05" and "bounded" not in seen.query
    assert seen.headers["User-Agent"] == AGENT


def test_nominatim_postcode_results_are_zips(server, nominatim):
    server.nominatim["55411"] = [ZIP_AREA]
    [place] = nominatim.geocode("55411")
    assert (place.kind, place.postal_code, place.name) == ("zip", "55411", "55411")


def test_nominatim_finding_nothing_is_an_answer(server, nominatim, offline):
    # An empty list from a working geocoder stands; the fallback is for failures.
    geo = FallbackGeo(OrsGeo(server.url, geocoder=nominatim), offline)
    assert geo.geocode("Midtown Global Market") == []
    assert nominatim.geocode("  ") == []


def test_typed_coordinates_need_no_request(server, nominatim):
    [place] = nominatim.geocode("44.9773, -93.2654")
    assert place.kind == "coordinates" and place.point == Point(44.9773, -93.2654)
    assert server.requests() == []


def test_nominatim_reverse(server, nominatim):
    server.nominatim_reverse = HUB
    place = nominatim.reverse(Point(44.99791, -93.30843))
    assert place.name == "1256 Penn Avenue North" and place.postal_code == "55411"
    [seen] = server.requests("/reverse")
    assert (seen.query["lat"], seen.query["lon"]) == ("44.99791", "-93.30843")
    server.nominatim_reverse = None
    assert nominatim.reverse(Point(45.5, -93.0)) is None  # "Unable to geocode"


FAILURES = {
    "rate limited": Reply(429, {"error": "Too many requests"}),
    "refused the key or the user agent": Reply(403, {"error": "Access blocked"}),
    "failed": Reply(500, "Internal Server Error"),
    "timed out or overloaded": Reply(503, "Service Unavailable"),
}


@pytest.mark.parametrize("reason", FAILURES)
def test_nominatim_failures_answer_offline_and_say_why(server, nominatim, offline, caplog, reason):
    geo = FallbackGeo(OrsGeo(server.url, geocoder=nominatim), offline)
    server.script(FAILURES[reason], FAILURES[reason])
    with caplog.at_level(logging.WARNING, logger="referral_hub.geo.fallback"):
        assert geo.geocode("midtown global market") == [LANDMARK]
        assert geo.reverse(LANDMARK.point) == LANDMARK
    assert f"nominatim {reason}" in caplog.text
    assert len(server.requests()) == 2  # one each: geopy's retries are off


def test_nominatim_timeout_is_honoured(server, offline, caplog):
    server.script(Reply(200, [HUB], delay=10))
    geo = FallbackGeo(
        OrsGeo(server.url, geocoder=NominatimGeocoder(server.url, AGENT, timeout=0.3)), offline
    )
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="referral_hub.geo.fallback"):
        assert geo.geocode("midtown global market") == [LANDMARK]
    assert time.monotonic() - started < 2.0
    assert "timed out" in caplog.text and len(server.requests()) == 1


def test_an_unreachable_geocoder_raises_geo_unavailable():
    down = NominatimGeocoder(f"http://127.0.0.1:{free_port()}", AGENT, timeout=1)
    with pytest.raises(GeoUnavailable, match="nominatim unreachable"):
        down.geocode("1256 Penn Ave N")


@pytest.mark.parametrize("agent", ["", "   "])
def test_nominatim_refuses_to_start_without_a_user_agent(server, agent):
    with pytest.raises(ValueError, match="user agent"):
        NominatimGeocoder(server.url, agent)


# --- Pelias --------------------------------------------------------------------------------


def test_pelias_geocodes_with_the_viewbox_as_a_bias(server):
    outside = feature("Penn Ave N", -93.10, 45.20, "55430")
    inside = feature("1256 Penn Ave N", -93.3084, 44.9979, "55411")
    server.pelias["penn ave n"] = [outside, inside]
    pelias = PeliasGeocoder(server.url + "/", "pelias-key", timeout=2, viewbox=CITY)
    places = pelias.geocode("Penn Ave N")
    assert [p.name for p in places] == ["1256 Penn Ave N", "Penn Ave N"]
    assert places[0].postal_code == "55411" and places[0].source == "pelias"
    assert places[0].address == "1256 Penn Ave N, Minneapolis, MN, USA"
    [seen] = server.requests("/v1/search")
    assert seen.query["boundary.country"] == "us" and seen.query["api_key"] == "pelias-key"


def test_pelias_reverse_and_postal_layer(server):
    server.pelias_reverse = [feature("55411", -93.3, 45.0, "55411", layer="postalcode")]
    place = PeliasGeocoder(server.url, timeout=2).reverse(Point(45.0, -93.3))
    assert (place.kind, place.postal_code) == ("zip", "55411")
    assert "api_key" not in server.requests("/v1/reverse")[0].query


def test_pelias_failure_is_geo_unavailable(server):
    server.script(Reply(429, {"error": "slow down"}))
    with pytest.raises(GeoUnavailable, match="pelias rate limited"):
        PeliasGeocoder(server.url, timeout=2).geocode("Penn Ave N")


# --- helpers and config --------------------------------------------------------------------


def test_parse_viewbox():
    assert parse_viewbox("44.89,-93.33, 45.05,-93.19") == CITY
    for bad in ("44.89,-93.33", "a,b,c,d", "95,0,0,0"):
        with pytest.raises(ValueError):
            parse_viewbox(bad)


@pytest.fixture
def configured(app, monkeypatch, server):
    """The shared app set up for openrouteservice on the fake server, rebuilt per test."""

    def configure(**settings):
        settings = {"GEO_BACKEND": "openrouteservice", "ORS_BASE_URL": server.url, **settings}
        for key, value in settings.items():
            monkeypatch.setitem(app.config, key, value)

    app.extensions.pop(EXTENSION_KEY, None)
    yield configure
    app.extensions.pop(EXTENSION_KEY, None)


def test_config_builds_nominatim(app, server, configured):
    configured(
        GEOCODER="nominatim",
        NOMINATIM_URL=server.url,
        NOMINATIM_USER_AGENT=AGENT,
        GEOCODER_COUNTRY="",
        GEOCODER_VIEWBOX="44.89,-93.33,45.05,-93.19",
        GEOCODER_TIMEOUT=1.5,
    )
    server.nominatim["1256 penn ave n"] = [HUB]
    with app.app_context():
        geocoder = get_geo().primary.geocoder
        assert isinstance(geocoder, NominatimGeocoder) and geocoder.timeout == 1.5
        assert get_geo().geocode("1256 Penn Ave N")[0].source == "nominatim"
    assert "countrycodes" not in server.requests("/search")[0].query  # "" means anywhere


def test_config_builds_pelias(app, server, configured):
    configured(GEOCODER="pelias", PELIAS_URL=server.url, PELIAS_API_KEY="k")
    with app.app_context():
        assert isinstance(get_geo().primary.geocoder, PeliasGeocoder)


@pytest.mark.parametrize(
    ("settings", "complaint"),
    [
        ({"GEOCODER": "nominatim", "NOMINATIM_USER_AGENT": AGENT}, "NOMINATIM_URL"),
        ({"GEOCODER": "nominatim", "NOMINATIM_URL": "http://127.0.0.1:9"}, "NOMINATIM_USER_AGENT"),
        (
            {
                "GEOCODER": "nominatim",
                "NOMINATIM_URL": "127.0.0.1:9",
                "NOMINATIM_USER_AGENT": AGENT,
            },
            "http",
        ),
        ({"GEOCODER": "pelias"}, "PELIAS_URL"),
        (
            {"GEOCODER": "pelias", "PELIAS_URL": "http://127.0.0.1:9", "GEOCODER_TIMEOUT": -1},
            "GEOCODER_TIMEOUT",
        ),
        (
            {
                "GEOCODER": "pelias",
                "PELIAS_URL": "http://127.0.0.1:9",
                "GEOCODER_VIEWBOX": "45,-93",
            },
            "GEOCODER_VIEWBOX",
        ),
    ],
)
def test_geocoder_misconfiguration_is_refused_at_first_use(app, configured, settings, complaint):
    configured(
        **{"NOMINATIM_URL": None, "NOMINATIM_USER_AGENT": None, "PELIAS_URL": None, **settings}
    )
    with app.app_context(), pytest.raises(RuntimeError, match=complaint):
        get_geo()
