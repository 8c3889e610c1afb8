"""Pickup planning: when to collect a person so they arrive in time, and what that relies on.

pickup = appointment - check-in buffer - travel (upper estimate) - boarding time, offered as a
window that closes at that latest pickup. For "now", an arrival estimate instead. Every time
says whether it rests on a routed answer or an estimate (DESIGN.md section 6).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from flask_babel import gettext as _

from referral_hub.core.errors import ValidationFailed
from referral_hub.directory.hours import Interval, is_open
from referral_hub.geo.base import TravelEstimate


@dataclass(frozen=True)
class PlanSettings:
    check_in_buffer: timedelta = timedelta(minutes=10)
    boarding: timedelta = timedelta(minutes=5)
    window: timedelta = timedelta(minutes=20)


@dataclass(frozen=True)
class PickupPlan:
    """A pickup window for an appointment, or an arrival estimate for a ride now."""

    window_start: datetime
    window_end: datetime  # the latest pickup that still arrives in time
    arrive_by: datetime
    arrival_earliest: datetime
    arrival_latest: datetime
    travel: TravelEstimate

    @property
    def estimated(self) -> bool:
        return self.travel.estimated


def plan_for_appointment(
    appointment: datetime,
    travel: TravelEstimate,
    *,
    now: datetime,
    settings: PlanSettings = PlanSettings(),
) -> PickupPlan:
    """The pickup window for an appointment; refuses one that cannot be reached any more."""
    if appointment.tzinfo is None:
        raise ValueError("appointment must be timezone-aware")
    arrive_by = appointment - settings.check_in_buffer
    latest_pickup = arrive_by - timedelta(minutes=travel.minutes_high) - settings.boarding
    if appointment <= now:
        message = _("The appointment has already started or passed.")
        raise ValidationFailed(message, fields={"appointment_at": [message]})
    if latest_pickup < now:
        message = _(
            "There is not enough time left to get there: the latest pickup was "
            "%(minutes)d minutes ago.",
            minutes=round((now - latest_pickup).total_seconds() / 60),
        )
        raise ValidationFailed(message, fields={"appointment_at": [message]})
    window_start = max(now, latest_pickup - settings.window)
    return PickupPlan(
        window_start=window_start,
        window_end=latest_pickup,
        arrive_by=arrive_by,
        arrival_earliest=window_start + settings.boarding + timedelta(minutes=travel.minutes_low),
        arrival_latest=latest_pickup + settings.boarding + timedelta(minutes=travel.minutes_high),
        travel=travel,
    )


def plan_now(
    travel: TravelEstimate, *, now: datetime, settings: PlanSettings = PlanSettings()
) -> PickupPlan:
    """A ride leaving now: when the person should arrive, as a range."""
    start = now
    return PickupPlan(
        window_start=start,
        window_end=start + settings.window,
        arrive_by=start,
        arrival_earliest=start + settings.boarding + timedelta(minutes=travel.minutes_low),
        arrival_latest=start
        + settings.window
        + settings.boarding
        + timedelta(minutes=travel.minutes_high),
        travel=travel,
    )


def check_site_open(
    plan: PickupPlan,
    tz: ZoneInfo,
    *,
    open_24_7: bool,
    weekly: list[Interval],
    exceptions: dict | None = None,
) -> None:
    """Refuse a plan that arrives while the site is closed (checked at both arrival ends)."""
    exceptions = exceptions or {}
    for moment in (plan.arrival_earliest, plan.arrival_latest):
        if not is_open(moment, tz, open_24_7=open_24_7, weekly=weekly, exceptions=exceptions):
            message = _("The site is closed when the person would arrive.")
            raise ValidationFailed(message, fields={"appointment_at": [message]})
