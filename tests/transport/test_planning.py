"""Pickup planning: the window follows the appointment, travel and buffers; impossible plans
are refused; estimates stay labelled."""

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from referral_hub.core.errors import ValidationFailed
from referral_hub.directory.hours import Interval
from referral_hub.geo.base import Mode, TravelEstimate
from referral_hub.transport.planning import (
    PlanSettings,
    check_site_open,
    plan_for_appointment,
    plan_now,
)

CHI = ZoneInfo("America/Chicago")
NOW = datetime(2026, 11, 23, 14, 0, tzinfo=UTC)  # Monday 08:00 in Minneapolis
TRAVEL = TravelEstimate(
    minutes=20, minutes_low=16, minutes_high=28, distance_km=6.0, mode=Mode.DRIVE, source="estimate"
)


@pytest.fixture(autouse=True)
def _ctx(app):
    with app.test_request_context():
        yield


def test_window_ends_at_the_latest_pickup_that_arrives_in_time():
    appointment = NOW + timedelta(hours=2)
    plan = plan_for_appointment(appointment, TRAVEL, now=NOW)
    # 10 min check-in, 28 min upper travel, 5 min boarding: latest pickup 43 min before.
    assert plan.window_end == appointment - timedelta(minutes=43)
    assert plan.window_start == plan.window_end - timedelta(minutes=20)
    assert plan.arrival_latest <= appointment - timedelta(minutes=10)
    assert plan.estimated


def test_window_never_starts_in_the_past():
    plan = plan_for_appointment(NOW + timedelta(minutes=50), TRAVEL, now=NOW)
    assert plan.window_start == NOW and plan.window_end == NOW + timedelta(minutes=7)


@pytest.mark.parametrize(("minutes", "fault"), [(-5, "already started"), (30, "not enough time")])
def test_impossible_plans_are_refused(minutes, fault):
    with pytest.raises(ValidationFailed) as exc:
        plan_for_appointment(NOW + timedelta(minutes=minutes), TRAVEL, now=NOW)
    assert fault in exc.value.message and "appointment_at" in exc.value.fields


def test_settings_change_the_window():
    settings = PlanSettings(
        check_in_buffer=timedelta(0), boarding=timedelta(0), window=timedelta(minutes=5)
    )
    plan = plan_for_appointment(NOW + timedelta(hours=1), TRAVEL, now=NOW, settings=settings)
    assert plan.window_end == NOW + timedelta(minutes=32)
    assert plan.window_start == NOW + timedelta(minutes=27)


def test_ride_now_gives_an_arrival_range():
    plan = plan_now(TRAVEL, now=NOW)
    assert plan.arrival_earliest == NOW + timedelta(minutes=21)
    assert plan.arrival_latest == NOW + timedelta(minutes=53)


def test_arriving_at_a_closed_site_is_refused():
    weekdays = [Interval(d, time(9), time(17)) for d in range(5)]
    early = plan_now(TRAVEL, now=NOW)  # arrives around 08:21-08:53, before 09:00
    with pytest.raises(ValidationFailed) as exc:
        check_site_open(early, CHI, open_24_7=False, weekly=weekdays)
    assert "closed" in exc.value.message
    later = plan_now(TRAVEL, now=NOW + timedelta(hours=2))
    check_site_open(later, CHI, open_24_7=False, weekly=weekdays)
    check_site_open(early, CHI, open_24_7=True, weekly=[])


def test_naive_appointment_is_a_programming_error():
    with pytest.raises(ValueError):
        plan_for_appointment(datetime(2026, 11, 23, 16, 0), TRAVEL, now=NOW)
