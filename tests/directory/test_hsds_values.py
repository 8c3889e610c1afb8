"""HSDS value encodings: times, schedules, service areas, age bounds, fees."""

from __future__ import annotations

import json
from datetime import date, time

import pytest

from referral_hub.directory.hsds_values import (
    HsdsValueError,
    age_bounds,
    age_clauses,
    area_from_hsds,
    fees_from_hsds,
    hours_from_schedules,
    merge_criteria,
    parse_time,
)

AGE_18 = {">=": [{"var": "age"}, 18]}
FOOD = {"in": ["food", {"var": "needs"}]}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("09:00", time(9)),
        ("9:30:00", time(9, 30)),
        ("17:00-05:00", time(17)),
        ("08:15Z", time(8, 15)),
        ("24:00", time(0)),
    ],
)
def test_times_are_read_as_local_wall_clock(text, expected):
    assert parse_time(text) == expected


@pytest.mark.parametrize("text", ["24:30", "25:00", "12:60", "noon", ""])
def test_bad_times_are_refused(text):
    with pytest.raises(HsdsValueError):
        parse_time(text)


@pytest.mark.parametrize("closes", ["23:59", "24:00", "00:00"])
def test_every_day_around_the_clock_is_24_7(closes):
    rows = [
        {
            "id": "a",
            "freq": "WEEKLY",
            "byday": "MO,TU,WE,TH,FR,SA,SU",
            "opens_at": "00:00",
            "closes_at": closes,
        }
    ]
    hours = hours_from_schedules(rows)
    assert hours.open_24_7 and hours.weekly == []


def test_weekly_overnight_exceptions_and_unsupported_rules():
    hours = hours_from_schedules(
        [
            {"id": "a", "byday": "FR,SA", "opens_at": "22:00", "closes_at": "02:00"},
            {"id": "b", "valid_from": "2026-01-01", "valid_to": "2026-01-01", "notes": "New Year"},
            {
                "id": "c",
                "valid_from": "2026-01-02",
                "valid_to": "2026-01-02",
                "opens_at": "10:00",
                "closes_at": "12:00",
            },
            {
                "id": "d",
                "freq": "MONTHLY",
                "byday": "1SA",
                "opens_at": "09:00",
                "closes_at": "12:00",
            },
            {
                "id": "e",
                "freq": "WEEKLY",
                "interval": 2,
                "byday": "MO",
                "opens_at": "09:00",
                "closes_at": "12:00",
            },
        ]
    )
    assert hours.weekly == [(4, time(22), time(2)), (5, time(22), time(2))]
    assert hours.exceptions == [
        {
            "on_date": date(2026, 1, 1),
            "closed": True,
            "opens": None,
            "closes": None,
            "reason": "New Year",
        },
        {
            "on_date": date(2026, 1, 2),
            "closed": False,
            "opens": time(10),
            "closes": time(12),
            "reason": None,
        },
    ]
    assert [w.split(":")[0] for w in hours.warnings] == ["schedule d", "schedule e"]


def test_service_areas():
    zips = area_from_hsds({"name": "N", "extent": "55401, 55402", "extent_type": "text"})
    assert zips["postal_codes"] == ["55401", "55402"]
    assert area_from_hsds({"extent": "North Minneapolis", "extent_type": "text"}) is None
    circle = {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [-93.2, 44.9]},
        "properties": {"radius_km": 3},
    }
    area = area_from_hsds({"extent": json.dumps(circle), "extent_type": "geojson"})
    assert (area["center_latitude"], area["center_longitude"], area["radius_km"]) == (
        44.9,
        -93.2,
        3,
    )
    polygon = {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 0]]]}
    assert area_from_hsds({"extent": json.dumps(polygon), "extent_type": "GeoJSON"})["geometry"]
    with pytest.raises(HsdsValueError):
        area_from_hsds({"extent": "{not json", "extent_type": "geojson"})
    circle["properties"]["radius_km"] = "far"
    with pytest.raises(HsdsValueError):
        area_from_hsds({"extent": json.dumps(circle), "extent_type": "geojson"})


def test_ages_become_criteria_without_repeating_clauses():
    assert age_clauses(17.5, 64.5) == [AGE_18, {"<=": [{"var": "age"}, 64]}]
    assert merge_criteria(None, [AGE_18]) == AGE_18
    assert merge_criteria(FOOD, [AGE_18]) == {"and": [AGE_18, FOOD]}
    both = {"and": [AGE_18, FOOD]}
    assert merge_criteria(both, [AGE_18]) is both
    assert merge_criteria(FOOD, []) is FOOD


def test_age_bounds_of_a_rule():
    rule = {"and": [{">": [{"var": "age"}, 17]}, {"<": [{"var": "age"}, 25]}, FOOD]}
    assert age_bounds(rule) == (18, 24)
    assert age_bounds(AGE_18) == (18, None)
    assert age_bounds({"or": [AGE_18, FOOD]}) == (None, None)
    assert age_bounds(None) == (None, None)


@pytest.mark.parametrize(
    ("description", "options", "expected"),
    [
        (None, [], (True, None)),
        (None, [{"option": "Free", "amount": 0}], (True, None)),
        ("$5 a night", [], (False, "$5 a night")),
        (None, [{"option": "Fee", "amount_description": "$10"}], (False, "$10")),
        (None, [{"amount": 35, "currency": "USD"}], (False, "35 USD")),
    ],
)
def test_fees(description, options, expected):
    assert fees_from_hsds(description, options) == expected
