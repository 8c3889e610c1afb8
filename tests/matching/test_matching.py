"""Matching: grouping, ranking, explanations, locations, areas and a fixed query count."""

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from referral_hub.core.errors import ValidationFailed
from referral_hub.directory import operations as directory
from referral_hub.directory.models import Program
from referral_hub.extensions import db
from referral_hub.geo.base import Point
from referral_hub.matching.operations import clean_answers, match
from tests.conftest import counting_selects

CHI = ZoneInfo("America/Chicago")
MONDAY_10 = datetime(2026, 11, 23, 10, 0, tzinfo=CHI)
SATURDAY_10 = datetime(2026, 11, 28, 10, 0, tzinfo=CHI)
HERE = Point(44.9773, -93.2654)
YOUTH = {"and": [{">=": [{"var": "age"}, 18]}, {"<=": [{"var": "age"}, 24]}]}


def names(items):
    return [m.name for m in items]


def run(app, answers, **kwargs):
    with app.test_request_context():
        return match(answers, **kwargs)


def test_groups_eligible_unknown_ineligible(app, build):
    build(
        {"name": "Youth Housing", "criteria": YOUTH},
        {"name": "Open Door", "criteria": None},
        {"name": "Veterans Housing", "criteria": {"var": "veteran"}},
    )
    result = run(app, {"needs": ["housing"], "age": 30}, point=HERE, at=MONDAY_10)
    assert names(result.eligible) == ["Open Door"]
    assert names(result.unknown) == ["Veterans Housing"]
    assert names(result.ineligible) == ["Youth Housing"]
    assert result.ineligible[0].reason == "Age must be at most 24"
    assert result.unknown[0].reason.startswith("Ask: Is the person a veteran")
    assert result.ask_next == ["veteran"]
    assert result.counts == {"eligible": 1, "unknown": 1, "ineligible": 1}


def test_only_programs_for_the_needs_asked(app, build):
    build({"name": "Jobs", "categories": ["employment"]}, {"name": "Beds"})
    result = run(app, {"needs": ["housing"]}, point=HERE, at=MONDAY_10)
    assert names(result.eligible) == ["Beds"]
    everything = run(app, {}, point=HERE, at=MONDAY_10)
    assert sorted(names(everything.eligible)) == ["Beds", "Jobs"]


def test_open_sites_rank_first_then_nearest(app, build):
    build(
        {"name": "Far but open", "at": (45.03, -93.30), "open_24_7": True},
        {"name": "Near weekdays", "at": (44.978, -93.266)},
        {"name": "Middle weekdays", "at": (44.95, -93.24)},
    )
    monday = run(app, {}, point=HERE, at=MONDAY_10)
    assert names(monday.eligible) == ["Near weekdays", "Middle weekdays", "Far but open"]
    saturday = run(app, {}, point=HERE, at=SATURDAY_10)
    assert names(saturday.eligible)[0] == "Far but open"
    closed = saturday.eligible[1]
    assert not closed.site.open_at_time
    assert closed.site.opens_next == datetime(2026, 11, 30, 9, 0, tzinfo=CHI)
    assert "closed at that time" in closed.reason


def test_capacity_then_language_break_ties(app, build):
    build(
        {"name": "Full", "capacity": ("no-capacity", 0), "languages": [("so", "staff")]},
        {"name": "Somali staff", "languages": [("so", "staff")]},
        {"name": "Interpreter", "languages": [("so", "interpreter")]},
        {"name": "English only"},
    )
    result = run(app, {"language": "so"}, point=HERE, at=MONDAY_10)
    assert names(result.eligible) == ["Somali staff", "Interpreter", "English only", "Full"]
    assert "staff speak the language" in result.eligible[0].reason
    assert "with an interpreter" in result.eligible[1].reason


def test_reason_line_says_travel_is_estimated(app, build):
    build({"name": "Walk-in", "at": (44.9486, -93.2391), "capacity": ("capacity", 3)})
    item = run(app, {}, point=HERE, at=MONDAY_10).eligible[0]
    assert item.site.travel.estimated
    assert "(estimated)" in item.reason and "3 open" in item.reason
    assert "open at that time" in item.reason


def test_place_text_is_geocoded_and_unknown_places_still_match(app, build):
    build({"name": "Shelter", "site_name": "Harbor Light Center", "at": (44.9806, -93.2802)})
    found = run(app, {}, place="Harbor Light", at=MONDAY_10)
    assert found.location.name == "Harbor Light Center"
    assert found.eligible[0].site.travel.minutes < 5
    lost = run(app, {}, place="Nowhere Special 999", at=MONDAY_10)
    assert lost.location is None and "could not find" in lost.location_note
    assert names(lost.eligible) == ["Shelter"] and lost.eligible[0].site.travel is None


def test_zip_code_as_location(app, build):
    build({"name": "North", "at": (45.0, -93.30)})
    result = run(app, {}, place="55411", at=MONDAY_10)
    assert result.location.postal_code == "55411"
    assert result.eligible[0].site.travel is not None


def test_service_area_by_zip_and_radius(app, build):
    area_rule = {"in_service_area": [{"var": "location"}]}
    build(
        {
            "name": "Northside only",
            "criteria": area_rule,
            "areas": [{"kind": "postal_codes", "postal_codes": ["55411", "55412"]}],
        },
        {
            "name": "Within 2 km of downtown",
            "criteria": area_rule,
            "areas": [
                {
                    "kind": "radius",
                    "center_latitude": 44.9773,
                    "center_longitude": -93.2654,
                    "radius_km": 2,
                }
            ],
        },
    )
    north = run(app, {}, place="55411", at=MONDAY_10)
    assert "Northside only" in names(north.eligible)
    assert "Within 2 km of downtown" in names(north.ineligible)
    downtown = run(app, {}, point=HERE, at=MONDAY_10)
    assert "Within 2 km of downtown" in names(downtown.eligible)
    nowhere = run(app, {}, at=MONDAY_10)
    assert {m.outcome.missing for m in nowhere.unknown} == {("location",)}


def test_criteria_changes_are_followed(app, build):
    ids = build({"name": "Youth Housing", "criteria": YOUTH})
    assert names(run(app, {"age": 30}, point=HERE, at=MONDAY_10).ineligible) == ["Youth Housing"]
    with app.test_request_context():
        program = db.session.get(Program, ids["Youth Housing"])
        directory.set_criteria(program, {">=": [{"var": "age"}, 18]})
        db.session.commit()
    assert names(run(app, {"age": 30}, point=HERE, at=MONDAY_10).eligible) == ["Youth Housing"]


def test_far_away_sites_are_not_candidates(app, build):
    build({"name": "Duluth", "at": (46.7867, -92.1005)}, {"name": "Local"})
    assert names(run(app, {}, point=HERE, at=MONDAY_10).eligible) == ["Local"]


def test_inactive_and_direct_referral_closed_programs_are_left_out(app, build):
    ids = build({"name": "Closed"}, {"name": "No responders"}, {"name": "Open"})
    with app.test_request_context():
        db.session.get(Program, ids["Closed"]).is_active = False
        db.session.get(Program, ids["No responders"]).accepts_responder_referrals = False
        db.session.commit()
    assert names(run(app, {}, point=HERE, at=MONDAY_10).eligible) == ["Open"]


def _count_queries(app, fn):
    with counting_selects(app) as statements:
        fn()
    return len(statements)


def test_query_count_does_not_grow_with_the_directory(app, build):
    build(
        *[
            {
                "name": f"P{i}",
                "criteria": YOUTH if i % 2 else None,
                "areas": [
                    {
                        "kind": "radius",
                        "center_latitude": 44.97,
                        "center_longitude": -93.26,
                        "radius_km": 9,
                    }
                ]
                if i % 3 == 0
                else [],
            }
            for i in range(3)
        ]
    )
    with app.test_request_context():
        match({}, point=HERE, at=MONDAY_10)  # warm the gazetteer cache
    small = _count_queries(app, lambda: run(app, {"language": "so"}, point=HERE, at=MONDAY_10))
    build(
        *[
            {
                "name": f"Q{i}",
                "criteria": YOUTH if i % 2 else None,
                "areas": [{"kind": "postal_codes", "postal_codes": ["55415"]}]
                if i % 3 == 0
                else [],
            }
            for i in range(30)
        ]
    )
    with app.test_request_context():
        match({}, point=HERE, at=MONDAY_10)  # new sites reloaded the gazetteer: warm it again
    large = _count_queries(app, lambda: run(app, {"language": "so"}, point=HERE, at=MONDAY_10))
    assert large == small
    assert small <= 8


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"age": "old"}, "age"),
        ({"age": 500}, "age"),
        ({"veteran": "maybe"}, "veteran"),
        ({"needs": ["spaceships"]}, "needs"),
        ({"household": "castle"}, "household"),
        ({"favourite_colour": "blue"}, "favourite_colour"),
    ],
)
def test_bad_answers_are_named(app, raw, field):
    with app.test_request_context(), pytest.raises(ValidationFailed) as exc:
        clean_answers(raw)
    assert field in exc.value.fields


def test_answers_are_normalised(app):
    with app.test_request_context():
        cleaned = clean_answers(
            {
                "age": "19",
                "veteran": "yes",
                "needs": "housing",
                "household": "",
                "unsheltered": False,
            }
        )
    assert cleaned == {"age": 19, "veteran": True, "needs": ["housing"], "unsheltered": False}
