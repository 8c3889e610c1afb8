"""The app's geo backend: config, the gazetteer read from the database, and its cache."""

from contextlib import contextmanager

import pytest
from flask import Flask, current_app

from referral_hub.core.errors import ValidationFailed
from referral_hub.directory.models import Site
from referral_hub.extensions import db
from referral_hub.geo.base import GeoBackend, Place, Point
from referral_hub.geo.models import Landmark
from referral_hub.geo.offline import OfflineGeo
from referral_hub.geo.service import (
    EXTENSION_KEY,
    GazetteerCache,
    get_geo,
    invalidate_gazetteer,
    locate,
    parse_point,
)
from tests.conftest import counting_selects


@pytest.fixture(autouse=True)
def fresh_geo(app):
    """Each test starts without a cached backend or gazetteer, and leaves none behind.

    The app lives for the whole session while each test's rows are rolled back, so a
    gazetteer cached by one test would show another test's sites.
    """
    app.extensions.pop(EXTENSION_KEY, None)
    yield
    app.extensions.pop(EXTENSION_KEY, None)


@pytest.fixture
def place_rows(app, make_org):
    """An active site, an inactive site and a landmark, committed."""
    org = make_org("provider")
    with app.app_context():
        db.session.add_all(
            [
                Site(
                    organization_id=org.id,
                    slug="northside-resource-hub",
                    name="Northside Resource Hub",
                    address_1="1256 Penn Ave N",
                    city="Minneapolis",
                    state="MN",
                    postal_code="55411",
                    latitude=44.9979,
                    longitude=-93.3084,
                ),
                Site(
                    organization_id=org.id,
                    slug="closed-annex",
                    name="Closed Annex",
                    address_1="1 Closed Way",
                    city="Minneapolis",
                    state="MN",
                    postal_code="55411",
                    latitude=44.99,
                    longitude=-93.30,
                    is_active=False,
                ),
                Landmark(
                    name="Franklin Avenue Station",
                    latitude=44.9626,
                    longitude=-93.2471,
                    postal_code="55404",
                ),
            ]
        )
        db.session.commit()


@contextmanager
def counting_queries():
    """Collect the SELECTs run inside the block (needs an app context).

    Only SELECTs: the test transaction's SAVEPOINTs come and go on their own schedule.
    """
    with counting_selects(current_app._get_current_object()) as statements:
        yield statements


def test_get_geo_is_the_offline_backend_made_once_per_app(app):
    with app.app_context():
        geo = get_geo()
        assert isinstance(geo, OfflineGeo) and isinstance(geo, GeoBackend)
        assert get_geo() is geo
    with app.app_context():
        assert get_geo() is geo


def test_an_unknown_backend_name_is_refused():
    other = Flask(__name__)
    other.config["GEO_BACKEND"] = "openstreetmaps"
    with other.app_context(), pytest.raises(RuntimeError, match="openstreetmaps"):
        get_geo()


def test_sites_and_landmarks_are_geocoded_by_name(app, place_rows):
    with app.app_context():
        [hub] = get_geo().geocode("northside resource hub")
        [station] = get_geo().geocode("Franklin Ave Station")
        by_address = get_geo().geocode("1256 Penn Avenue North")
    assert (hub.kind, hub.postal_code, hub.point) == ("site", "55411", Point(44.9979, -93.3084))
    assert hub.address == "1256 Penn Ave N, Minneapolis, MN 55411"
    assert (station.kind, station.postal_code) == ("landmark", "55404")
    assert by_address == [hub]


def test_inactive_sites_are_left_out(app, place_rows):
    with app.app_context():
        assert get_geo().geocode("Closed Annex") == []


def test_reverse_finds_a_site_from_the_database(app, place_rows):
    with app.app_context():
        assert get_geo().reverse(Point(44.9981, -93.3080)).name == "Northside Resource Hub"


def test_gazetteer_is_not_queried_again_within_its_ttl(app, place_rows):
    with app.app_context():
        with counting_queries() as first:
            get_geo().geocode("Northside Resource Hub")
        with counting_queries() as second:
            get_geo().geocode("Franklin Avenue Station")
            get_geo().reverse(Point(44.9626, -93.2471))
        assert len(first) == 2  # one select of sites, one of landmarks
        assert second == []


def test_invalidate_makes_the_next_call_read_again(app, place_rows, make_org):
    with app.app_context():
        assert get_geo().geocode("Lyndale Clinic") == []
        db.session.add(
            Landmark(name="Lyndale Clinic", latitude=44.95, longitude=-93.288, postal_code=None)
        )
        db.session.commit()
        assert get_geo().geocode("Lyndale Clinic") == []  # still cached
        invalidate_gazetteer()
        with counting_queries() as statements:
            assert [p.name for p in get_geo().geocode("Lyndale Clinic")] == ["Lyndale Clinic"]
        assert len(statements) == 2


def test_cache_reloads_after_its_ttl():
    now = [1000.0]
    loads = []

    def load():
        loads.append(now[0])
        return [Place(f"load {len(loads)}", Point(45, -93), None, "landmark", "offline")]

    cache = GazetteerCache(load, ttl=300, clock=lambda: now[0])
    assert cache()[0].name == "load 1"
    now[0] += 299
    assert cache()[0].name == "load 1"
    now[0] += 1
    assert cache()[0].name == "load 2"
    cache.invalidate()
    assert cache()[0].name == "load 3"
    assert loads == [1000.0, 1300.0, 1300.0]


def test_ttl_comes_from_config(app, place_rows, monkeypatch):
    monkeypatch.setitem(app.config, "GEO_GAZETTEER_TTL", 0)
    with app.app_context():
        get_geo().geocode("Northside Resource Hub")
        with counting_queries() as statements:
            get_geo().geocode("Northside Resource Hub")
        assert len(statements) == 2


def test_locate_returns_the_best_place_or_a_field_error(app, place_rows):
    with app.app_context():
        assert locate("55411").postal_code == "55411"
        with pytest.raises(ValidationFailed) as raised:
            locate("nowhere in particular", field="place")
    assert raised.value.status == 422 and list(raised.value.fields) == ["place"]


def test_parse_point_is_offered_by_the_service():
    assert parse_point("44.97, -93.26") == Point(44.97, -93.26)
    assert parse_point("somewhere") is None
