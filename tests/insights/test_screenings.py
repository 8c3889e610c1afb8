"""Unmet need: anonymous screening records, and what people needed and did not find."""

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from referral_hub.accounts.models import Organization, Role
from referral_hub.directory import operations as directory
from referral_hub.extensions import db
from referral_hub.geo.base import Point
from referral_hub.insights import screenings as screening_ops
from referral_hub.insights import tallies
from referral_hub.insights.models import ScreeningHourTally, ScreeningRecord
from referral_hub.insights.screenings import (
    NeedDimension,
    ScreeningFilters,
    hour_label,
    record_screening,
    unmet_need,
)
from referral_hub.matching.operations import match

CITY = ZoneInfo("America/Chicago")
MONDAY_10 = datetime(2026, 11, 23, 10, 0, tzinfo=CITY)
SATURDAY_10 = datetime(2026, 11, 28, 10, 0, tzinfo=CITY)
HERE = Point(44.9773, -93.2654)  # ZIP 55415 in the offline gazetteer
WEEKDAYS = [(d, time(9), time(17)) for d in range(5)]

# Exactly what a screening record may hold: nothing about the person or the user.
DECLARED_COLUMNS = {
    "id",
    "created_at",
    "hour_of_week",
    "zip",
    "needs",
    "any_eligible",
    "any_open",
    "any_capacity",
    "referring_org_id",
    "screener_version",
}


@pytest.fixture
def directory_world(app, make_org):
    """Open Shelter (housing, weekdays, taking referrals), Full House (housing, always open,
    full), Job Club (employment, adults, weekdays)."""
    org = make_org("provider")
    with app.test_request_context():
        org = db.session.get(Organization, org.id)
        site = directory.create_site(
            org,
            name="Center",
            address_1="1 Main St",
            postal_code="55415",
            latitude=HERE.lat,
            longitude=HERE.lon,
        )
        specs = [
            ("Open Shelter", ["housing"], None, "capacity", {"weekly": WEEKDAYS}),
            ("Full House", ["housing"], None, "no-capacity", {"open_24_7": True}),
            (
                "Job Club",
                ["employment"],
                {">=": [{"var": "age"}, 18]},
                "capacity",
                {"weekly": WEEKDAYS},
            ),
        ]
        for name, categories, criteria, capacity, hours in specs:
            program = directory.create_program(
                org, name=name, categories=categories, criteria=criteria
            )
            directory.set_capacity(program, capacity, None)
            directory.offer_at(program, site, **hours)
        db.session.commit()


def screen(app, answers, at, org_id=None, **where):
    with app.test_request_context():
        result = match(answers, at=at, **where)
        record = record_screening(answers, result, org_id)
        db.session.commit()
        return db.session.get(ScreeningRecord, record.id)


def flags(record):
    return record.any_eligible, record.any_open, record.any_capacity


def test_a_need_met(app, directory_world, make_org):
    team = make_org("responder_team")
    record = screen(app, {"needs": ["housing"], "age": 30}, MONDAY_10, team.id, point=HERE)
    assert flags(record) == (True, True, True) and record.met
    assert record.needs == ["housing"]
    assert record.zip == "55415"
    assert record.referring_org_id == team.id
    assert record.hour_of_week == 10  # Monday 10:00 in the city
    assert record.screener_version == 1
    # Cut to the hour, in UTC.
    assert record.created_at == datetime(2026, 11, 23, 16, 0, tzinfo=UTC)


def test_open_but_full(app, directory_world):
    # Saturday: the weekday shelter is closed; the one open all week is full.
    record = screen(app, {"needs": ["housing"]}, SATURDAY_10, place="55404")
    assert flags(record) == (True, True, False)
    assert record.zip == "55404"
    assert record.hour_of_week == 5 * 24 + 10


def test_eligible_but_closed(app, directory_world):
    record = screen(app, {"needs": ["employment"], "age": 30}, SATURDAY_10)
    assert flags(record) == (True, False, False)
    assert record.zip is None  # no place given


def test_not_eligible_or_no_program(app, directory_world):
    assert flags(screen(app, {"needs": ["employment"], "age": 16}, MONDAY_10)) == (
        False,
        False,
        False,
    )
    assert flags(screen(app, {"needs": ["victim_services"]}, MONDAY_10)) == (False, False, False)


def test_record_holds_no_personal_data(app, directory_world):
    answers = {"needs": ["housing"], "age": 19, "language": "so", "veteran": True}
    record = screen(app, answers, MONDAY_10, point=Point(44.97731, -93.26541))
    assert set(ScreeningRecord.__table__.columns.keys()) == DECLARED_COLUMNS
    with app.test_request_context():
        raw = db.session.execute(
            sa.select(ScreeningRecord.__table__).where(ScreeningRecord.id == record.id)
        ).one()
    stored = dict(raw._mapping)
    assert set(stored) == DECLARED_COLUMNS
    assert 19 not in stored.values() and "so" not in stored.values()
    text = repr(stored)
    assert "44.97" not in text and "93.26" not in text  # ZIP only, never coordinates
    assert stored["zip"] == "55415"


def test_zip_is_five_digits_or_nothing(app, directory_world):
    from referral_hub.insights.screenings import _zip

    assert _zip("55404-1234") == "55404"
    assert _zip("55404") == "55404"
    assert _zip("K1A 0B1") is None
    assert _zip(None) is None


def test_the_screener_page_records_each_screening(client, login_as, directory_world, app):
    user = login_as(Role.RESPONDER)
    response = client.post_form(
        "/screen",
        {"needs": ["housing"], "age": "20", "location": "55404", "mode": "drive"},
    )
    assert response.status_code == 200
    with app.test_request_context():
        records = db.session.scalars(sa.select(ScreeningRecord)).all()
    assert len(records) == 1
    record = records[0]
    assert record.needs == ["housing"] and record.zip == "55404"
    assert record.referring_org_id == user.primary_membership.organization_id
    # An invalid screening is not a screening: nothing more is stored.
    client.post_form("/screen", {"age": "250", "needs": ["housing"]})
    with app.test_request_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(ScreeningRecord)) == 1


# --- aggregates over constructed records -----------------------------------------------------


def _add(app, rows):
    """rows: (local datetime, zip, needs, eligible, open, capacity, org)."""
    with app.test_request_context():
        for at, zip_code, needs, eligible, is_open, capacity, org in rows:
            local = at.astimezone(CITY)
            db.session.add(
                ScreeningRecord(
                    created_at=at.astimezone(UTC).replace(minute=0, second=0, microsecond=0),
                    hour_of_week=local.weekday() * 24 + local.hour,
                    zip=zip_code,
                    needs=needs,
                    any_eligible=eligible,
                    any_open=is_open,
                    any_capacity=capacity,
                    referring_org_id=org,
                    screener_version=1,
                )
            )
        db.session.commit()


@pytest.fixture
def screenings(app, make_org):
    team = make_org("responder_team")
    sat = datetime(2026, 3, 7, 22, 15, tzinfo=CITY)  # Saturday 22:00 -> hour 142
    mon = datetime(2026, 3, 2, 9, 40, tzinfo=CITY)  # Monday 09:00 -> hour 9
    april = datetime(2026, 4, 1, 12, tzinfo=CITY)
    _add(
        app,
        [
            (mon, "55415", ["housing"], True, True, True, team.id),  # met
            (mon, "55415", ["housing", "employment"], True, True, False, None),  # full
            (sat, "55404", ["housing"], True, False, False, team.id),  # closed
            (sat, "55404", ["victim_services"], False, False, False, None),  # none
            (sat, None, [], False, False, False, None),  # no need, no place
            # Outside March: left out by the date filters below.
            (april, "55415", ["housing"], False, False, False, None),
        ],
    )
    return team.id


MARCH = ScreeningFilters(start=date(2026, 3, 1), end=date(2026, 3, 31))


def test_unmet_need_overall(app, screenings):
    with app.test_request_context():
        (row,) = unmet_need(MARCH)
        assert row.key is None and row.label == "All screenings"
        assert (row.screenings, row.no_eligible, row.none_open, row.no_capacity) == (5, 2, 1, 1)
        assert row.unmet == 4 and row.unmet_share == 0.8
        assert unmet_need()[0].screenings == 6


def test_unmet_need_by_category(app, screenings):
    with app.test_request_context():
        rows = {r.key: r for r in unmet_need(MARCH, NeedDimension.CATEGORY)}
    assert set(rows) == {"housing", "employment", "victim_services", None}
    housing = rows["housing"]
    assert (housing.screenings, housing.unmet, housing.none_open, housing.no_capacity) == (
        3,
        2,
        1,
        1,
    )
    assert housing.label == "Housing or shelter"  # the screener's words for the need
    assert (rows["employment"].screenings, rows["employment"].no_capacity) == (1, 1)
    assert rows["victim_services"].no_eligible == 1
    assert rows["victim_services"].label == "Support after a crime"
    assert rows[None].label == "No need stated" and rows[None].screenings == 1


def test_unmet_need_by_zip(app, screenings):
    with app.test_request_context():
        rows = unmet_need(MARCH, NeedDimension.ZIP)
    # Most unmet first; "place not given" last.
    assert [(r.key, r.screenings, r.unmet) for r in rows] == [
        ("55404", 2, 2),
        ("55415", 2, 1),
        (None, 1, 1),
    ]
    assert rows[-1].label == "Place not given"


def test_unmet_need_by_hour_of_week_is_the_whole_week(app, screenings):
    with app.test_request_context():
        rows = unmet_need(MARCH, NeedDimension.HOUR_OF_WEEK)
        assert hour_label(142) == "Saturday 22:00"
    assert len(rows) == 168 and [r.key for r in rows] == list(range(168))
    assert (rows[9].screenings, rows[9].unmet) == (2, 1)
    assert (rows[142].screenings, rows[142].unmet) == (3, 3)
    assert rows[142].label == "Saturday 22:00"
    assert sum(r.screenings for r in rows) == 5
    assert rows[0].screenings == 0 and rows[0].unmet_share is None


def test_unmet_need_filters(app, screenings):
    with app.test_request_context():
        housing = unmet_need(ScreeningFilters(start=MARCH.start, end=MARCH.end, category="housing"))
        assert housing[0].screenings == 3
        by_zip = unmet_need(ScreeningFilters(zip="55404"), NeedDimension.CATEGORY)
        assert {r.key: r.screenings for r in by_zip} == {"housing": 1, "victim_services": 1}
        team = unmet_need(ScreeningFilters(referring_org_id=screenings))
        assert team[0].screenings == 2 and team[0].unmet == 1
        # Days are the city's: Saturday 7 March 22:15 is already Sunday in UTC.
        saturday = unmet_need(ScreeningFilters(start=date(2026, 3, 7), end=date(2026, 3, 7)))
        assert saturday[0].screenings == 3
        nothing = unmet_need(ScreeningFilters(start=date(2025, 1, 1), end=date(2025, 1, 2)))
        assert nothing[0].screenings == 0 and nothing[0].label == "All screenings"


# --- the hourly tallies answer as the records do ---------------------------------------------

ASKED = [
    (MARCH, None),
    (MARCH, NeedDimension.CATEGORY),
    (MARCH, NeedDimension.HOUR_OF_WEEK),
    (ScreeningFilters(start=MARCH.start, end=MARCH.end, category="housing"), None),
    (ScreeningFilters(category="housing"), NeedDimension.HOUR_OF_WEEK),
    (ScreeningFilters(start=date(2026, 3, 7), end=date(2026, 3, 7)), NeedDimension.CATEGORY),
]


@pytest.mark.parametrize(("filters", "by"), ASKED)
def test_tallies_answer_as_the_records_do(app, screenings, monkeypatch, filters, by):
    with app.test_request_context():
        team = ScreeningFilters(**{**filters.__dict__, "referring_org_id": screenings})
        for asked in (filters, team):
            from_tallies = unmet_need(asked, by)
            with monkeypatch.context() as patched:
                patched.setattr(screening_ops, "_tallied", lambda filters, by: False)
                assert from_tallies == unmet_need(asked, by)
        assert sum(r.screenings for r in unmet_need(filters, by)) > 0


def test_screening_tallies_match_a_rewrite_from_scratch(app, screenings):
    t = ScreeningHourTally
    columns = (t.day, t.hour_of_week, t.referring_org_id, t.need, t.screenings, t.no_eligible)
    with app.test_request_context():
        kept = sorted(db.session.execute(sa.select(*columns)).all(), key=repr)
        assert len(kept) >= 10
        tallies.rebuild(db.session.connection())
        assert sorted(db.session.execute(sa.select(*columns)).all(), key=repr) == kept
        db.session.rollback()
