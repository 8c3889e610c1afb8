"""A large referral history for dashboards and benchmarks: `flask seed synthetic-history`.

Referrals spread over the past --days, growing over time and busiest on weekday afternoons.
Each one is told as a story the lifecycle allows (send, accept, arrive, hand off, complete;
or a decline with its reason, a cancellation, an expiry) with plausible gaps between steps:
providers answer in working hours, late answers are escalated, appointments fall days later
in office hours, and about a third of accepted referrals get an outbound ride, some late.
Steps after "now" have not happened yet, so recent referrals are still open. Two anonymous
screening records go with each referral: the one that led to it, and one elsewhere that
often found nothing open (at night, at weekends, for office-hours-only needs).

Rows go in with COPY on PostgreSQL and batched Core inserts elsewhere, with ids assigned
here so events can point at their referral without a round trip. Same seed, same data.
"""

from __future__ import annotations

import json
import math
import queue
import random
import threading
from bisect import bisect
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from itertools import accumulate
from typing import Any
from zoneinfo import ZoneInfo

from flask import current_app
from sqlalchemy import Connection, Table, func, insert, select

from referral_hub.accounts.models import Membership, Organization, OrgKind, Role
from referral_hub.core.db import utcnow
from referral_hub.directory.models import Category, Program, ProgramSite, Site, program_categories
from referral_hub.extensions import db
from referral_hub.geo import zips
from referral_hub.insights import tallies
from referral_hub.insights.models import ScreeningRecord
from referral_hub.matching.questions import SCREENER_VERSION
from referral_hub.referrals.models import Client, Referral, ReferralEvent
from referral_hub.transport.models import Driver, Ride, RideEvent, Vehicle

# The name_key prefix of the clients it creates: how a second run is recognised.
MARK = "synthetic-history"
CHUNK = 10_000  # referrals generated, then written, at a time
BATCH = 10_000  # rows per executemany where COPY is not available
MIN, HOUR, DAY = 60.0, 3600.0, 86400.0
EPOCH = datetime(1970, 1, 1)  # naive: local wall-clock times are counted from it

# Local hour of sending (responders work around the clock, most in the afternoon).
SEND_HOURS = [1, 1, 0.7, 0.5, 0.5, 0.6, 1, 2, 3, 4, 5, 5, 5, 5, 5, 5, 5, 5, 4, 4, 3, 3, 2, 1.5]
WEEKDAY_VOLUME = [1, 1, 1, 1, 1, 0.75, 0.65]
OPENS, CLOSES = 8 * HOUR, 18 * HOUR  # when programs not staffed around the clock answer
ALWAYS_ON_SHARE = 0.35
RIDE_SHARE = 0.3  # accepted referrals that get an outbound ride
LATE_RIDE_SHARE = 0.14
COMPLETED_SHARE = 0.88  # handoffs whose outcome the provider records
RIDE_MAX_KM = 40.0


def _table(*pairs: tuple[Any, float]) -> tuple[list[Any], list[float]]:
    return [v for v, _ in pairs], list(accumulate(w for _, w in pairs))


def _pick(rng: random.Random, table: tuple[list[Any], list[float]]) -> Any:
    values, cum = table
    return values[bisect(cum, rng.random() * cum[-1])]


def _columns(names: str) -> list[str]:
    return names.split()


# Local hour of screenings that did not become referrals: flatter, more at night.
SCREEN_HOURS = _table(
    *enumerate([2, 2, 1.5, 1, 1, 1, 1.5, 2, 3, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 3.5, 3.5, 3, 2.5])
)
# How the provider first answers; the decline weight is scaled per program.
FIRST_ANSWER = [
    ("accept", 68),
    ("hold_accept", 2),
    ("decline", 13),
    ("hold_decline", 1),
    ("cancel", 5),
    ("expire", 3),
    ("hold_cancel", 1),
    ("enter_in_error", 0.5),
]
AFTER_ACCEPT = _table(("hand_off", 76), ("no_show", 8), ("cancel", 11), ("hold_cancel", 3))
DECLINE = _table(
    ("no_capacity", 35),
    ("not_eligible", 25),
    ("unable_to_contact", 15),
    ("client_declined", 12),
    ("duplicate", 5),
    ("other", 8),
)
CANCEL_EARLY = _table(
    ("referred_elsewhere", 40), ("client_declined", 30), ("client_unreachable", 20), ("other", 10)
)
CANCEL_LATE = _table(
    ("client_declined", 35), ("client_unreachable", 35), ("referred_elsewhere", 20), ("other", 10)
)
HOLD = _table(("client_asked_to_wait", 50), ("awaiting_documents", 35), ("program_closed", 15))
OUTCOMES = _table(
    ("enrolled", 30),
    ("services_delivered", 30),
    ("referred_elsewhere", 10),
    ("housed", 8),
    ("not_eligible_after_assessment", 7),
    ("employed", 6),
    ("client_declined_service", 6),
    ("other", 3),
)
RIDE_MODES = _table(("vendor", 55), ("escort", 20), ("rideshare", 10), ("transit", 10))
APPOINTMENT_DAYS = _table((1, 30), (2, 25), (3, 15), (4, 10), (5, 8), (6, 6), (7, 6))
LANGUAGES = _table(("en", 70), ("es", 12), ("so", 10), ("hmn", 5), ("om", 2), ("vi", 1))
# Minneapolis ZIPs where people are met, weighted towards the busiest neighbourhoods.
ZIPS = _table(
    *[(code, 10) for code in ("55404", "55411")],
    *[(code, 8) for code in ("55407", "55412")],
    *[(code, 6) for code in ("55408", "55405", "55406", "55403")],
    *[(code, 4) for code in ("55401", "55413", "55414", "55415", "55417", "55418")],
    *[(code, 2) for code in ("55402", "55409", "55410", "55416", "55419", "55454", "55455")],
)
STAFF = ["Kou Vang", "Hodan Ali", "Ana Flores", "Marcus Green", "Leticia Ruiz", "Abdi Omar"]
NOTES = frozenset({"ride_booked", "ride_no_show"})  # events that change no state
TIME_DATA = frozenset({"appointment_at", "at"})

REFERRAL_COLUMNS = _columns(
    "id uuid client_id program_id site_id provider_org_id referring_org_id referring_user_id "
    "status priority answers screener_version sent_at response_due_at accepted_at "
    "appointment_at arrived_at handed_off_at handed_off_to handoff_code closed_at escalated_at "
    "reason_code reason_note outcome holds_slot version created_at updated_at"
)
EVENT_COLUMNS = _columns(
    "referral_id action from_status to_status actor_user_id actor_org_id actor_label "
    "reason_code data created_at"
)
CLIENT_COLUMNS = _columns(
    "id uuid organization_id created_by_id display_name name_key preferred_language "
    "birth_year sms_ok neutral_sender created_at updated_at"
)
RIDE_COLUMNS = _columns(
    "id uuid referral_id leg mode status vendor_org_id site_id booked_by_id booked_by_org_id "
    "pickup_label pickup_lat pickup_lon pickup_from_device dropoff_label dropoff_lat "
    "dropoff_lon outside_region will_call requested_for_at window_start_at window_end_at "
    "arrive_by_at eta_earliest_at eta_latest_at travel_minutes travel_minutes_high distance_km "
    "estimate_source wheelchair service_animal companions driver_id vehicle_id en_route_at "
    "at_pickup_at picked_up_at dropped_off_at closed_at reason_code version created_at "
    "updated_at"
)
RIDE_EVENT_COLUMNS = _columns(
    "ride_id action from_status to_status actor_user_id actor_label reason_code data created_at"
)

SCREENING_COLUMNS = _columns(
    "created_at hour_of_week zip needs any_eligible any_open any_capacity referring_org_id "
    "screener_version"
)
# Written in this order (parents first), each with the columns the generator fills.
TABLES: dict[str, tuple[Table, list[str]]] = {
    "clients": (Client.__table__, CLIENT_COLUMNS),
    "referrals": (Referral.__table__, REFERRAL_COLUMNS),
    "referral_events": (ReferralEvent.__table__, EVENT_COLUMNS),
    "rides": (Ride.__table__, RIDE_COLUMNS),
    "ride_events": (RideEvent.__table__, RIDE_EVENT_COLUMNS),
    "screening_records": (ScreeningRecord.__table__, SCREENING_COLUMNS),
}
# Needs with no site open at night or at weekends (the gaps the coverage page should find).
OFFICE_HOURS_ONLY = frozenset({"victim_services", "legal", "employment"})


class CannotBuild(Exception):
    """The history cannot be built on this database."""


class HistoryExists(CannotBuild):
    """The database already holds a synthetic history (and --append was not given)."""


# --- what there is to refer to ---------------------------------------------------------------


@dataclass
class _Program:
    id: int
    org_id: int
    target: float  # response target, seconds
    need: str | None
    site: tuple[int, float, float, str] | None  # id, lat, lon, label
    staff: list[int]
    speed: float  # how quickly this provider answers, relative to the median
    always_on: bool
    first: tuple[list[str], list[float]]


@dataclass
class _World:
    programs: list[_Program]
    program_cum: list[float]
    teams: list[tuple[int, list[int]]]  # organization, its responders
    team_cum: list[float]
    coordinator: tuple[int | None, int | None]
    vendor: int | None
    drivers: list[int]
    vehicles: list[int]


def _load_world(rng: random.Random) -> _World:
    staff: dict[int, list[int]] = {}
    teams: dict[int, list[int]] = {}
    coordinator: tuple[int | None, int | None] = (None, None)
    for org_id, user_id, role in db.session.execute(
        select(Membership.organization_id, Membership.user_id, Membership.role).order_by(
            Membership.id
        )
    ):
        if role == Role.RESPONDER:
            teams.setdefault(org_id, []).append(user_id)
        elif role in (Role.PROVIDER_STAFF, Role.PROVIDER_ADMIN):
            staff.setdefault(org_id, []).append(user_id)
        elif role == Role.COORDINATOR and coordinator[0] is None:
            coordinator = (user_id, org_id)
    needs: dict[int, str] = {}
    for program_id, code in db.session.execute(
        select(program_categories.c.program_id, Category.code)
        .join(Category, Category.id == program_categories.c.category_id)
        .order_by(program_categories.c.program_id, Category.id)
    ):
        needs.setdefault(program_id, code)
    sites: dict[int, tuple[int, float, float, str]] = {}
    for program_id, site_id, lat, lon, name, address in db.session.execute(
        select(
            ProgramSite.program_id,
            Site.id,
            Site.latitude,
            Site.longitude,
            Site.name,
            Site.address_1,
        )
        .join(Site, Site.id == ProgramSite.site_id)
        .where(Site.is_active)
        .order_by(ProgramSite.program_id, ProgramSite.id)
    ):
        sites.setdefault(program_id, (site_id, lat, lon, f"{name}, {address}"[:200]))
    programs = []
    for program_id, org_id, target in db.session.execute(
        select(Program.id, Program.organization_id, Program.response_target_hours)
        .where(Program.is_active, Program.accepts_responder_referrals)
        .order_by(Program.id)
    ):
        programs.append(
            _Program(
                id=program_id,
                org_id=org_id,
                target=target * HOUR,
                need=needs.get(program_id),
                site=sites.get(program_id),
                staff=staff.get(org_id, []),
                speed=rng.lognormvariate(0, 0.35),
                always_on=rng.random() < ALWAYS_ON_SHARE,
                first=([], []),  # below, once every program's popularity is known
            )
        )
    if not programs or not teams:
        raise CannotBuild("load a directory and responders first (seed demo)")
    vendor = db.session.scalar(
        select(Organization.id)
        .where(Organization.kind == OrgKind.TRANSPORT_VENDOR, Organization.is_active)
        .where(Organization.id.in_(select(Driver.organization_id).where(Driver.is_active)))
        .order_by(Organization.id)
        .limit(1)
    )
    drivers = vehicles = []
    if vendor is not None:
        drivers = list(
            db.session.scalars(
                select(Driver.id).where(Driver.organization_id == vendor, Driver.is_active)
            )
        )
        vehicles = list(
            db.session.scalars(
                select(Vehicle.id).where(Vehicle.organization_id == vendor, Vehicle.is_active)
            )
        )
    team_list = sorted(teams.items())
    popularity = [rng.lognormvariate(0, 1) for _ in programs]
    # Some providers decline more than others, but the city-wide share stays as declared.
    biases = [rng.lognormvariate(0, 0.4) for _ in programs]
    mean = sum(p * b for p, b in zip(popularity, biases, strict=True)) / sum(popularity)
    for program, bias in zip(programs, biases, strict=True):
        program.first = _table(
            *[(a, w * bias / mean if "decline" in a else w) for a, w in FIRST_ANSWER]
        )
    return _World(
        programs=programs,
        program_cum=list(accumulate(popularity)),
        teams=team_list,
        team_cum=list(accumulate(rng.lognormvariate(0, 0.5) for _ in team_list)),
        coordinator=coordinator,
        vendor=vendor,
        drivers=drivers,
        vehicles=vehicles,
    )


# --- the stories -----------------------------------------------------------------------------

# A step: (local wall-clock seconds, action, from, to, who, reason code, data).
Step = tuple[float, str, str | None, str | None, str, str | None, dict[str, Any] | None]
Clock = Callable[[float], datetime]  # local wall-clock seconds to an aware UTC datetime


def _s(
    at: float,
    action: str,
    before: str | None,
    after: str,
    who: str,
    reason: str | None = None,
    data: dict[str, Any] | None = None,
) -> Step:
    return (at, action, before, after, who, reason, data)


@dataclass
class _Trip:
    """An outbound ride as planned at booking, and what then happened to it."""

    mode: str
    booked: float
    travel: float  # minutes
    high: float
    km: float
    pickup: tuple[float, float, str]
    window_start: float
    window_end: float
    arrive_by: float
    appointment: float
    driver: int | None = None
    vehicle: int | None = None
    steps: list[Step] = field(default_factory=list)

    def status_before(self, moment: float) -> str:
        """Drop the steps from `moment` on; the ride's state just before it."""
        self.steps = [s for s in self.steps if s[0] < moment]
        return self.steps[-1][3]  # type: ignore[return-value]


class _Generator:
    def __init__(
        self,
        rng: random.Random,
        world: _World,
        now: datetime,
        days: int,
        json_text: Callable[[Any], Any],
    ) -> None:
        self.rng = rng
        self.world = world
        self.json = json_text
        self.empty = json_text({})
        self.now_ts = now.timestamp()
        self.next_client = self.next_referral = self.next_ride = 1
        self.rows: dict[str, list[tuple]] = {name: [] for name in TABLES}
        self.needs = sorted({p.need for p in world.programs if p.need}) or ["housing"]
        self.counts = dict.fromkeys(TABLES, 0)
        self.recent: dict[int, list[tuple[int, str]]] = {}
        tz = ZoneInfo(current_app.config["TIMEZONE"])
        local_now = now.astimezone(tz).replace(tzinfo=None)
        first_day = local_now.date() - timedelta(days=days)
        self.days = days
        self.day0 = (datetime.combine(first_day, time()) - EPOCH).total_seconds()
        self.weekday0 = first_day.weekday()
        self.now_sod = (local_now - datetime.combine(local_now.date(), time())).total_seconds()
        # UTC offset of each day at noon: one per referral keeps its steps in order over DST.
        self.offsets = [
            tz.utcoffset(datetime.combine(first_day + timedelta(days=d), time(12))).total_seconds()
            for d in range(days + 1)
        ]
        self.day_cum = list(
            accumulate(
                (0.4 + 0.6 * d / days) * WEEKDAY_VOLUME[(self.weekday0 + d) % 7]
                for d in range(days + 1)
            )
        )
        self.zips = {}
        for code in ZIPS[0]:
            found = zips.lookup(code)
            self.zips[code] = (found.point.lat, found.point.lon) if found else (44.9778, -93.265)

    def sending_times(self, count: int) -> list[float]:
        """When each referral was sent (local seconds), oldest first."""
        rng, days = self.rng, self.days
        day_list = rng.choices(range(days + 1), cum_weights=self.day_cum, k=count)
        hours = rng.choices(range(24), weights=SEND_HOURS, k=count)
        sent = []
        for day, hour in zip(day_list, hours, strict=True):
            sod = (hour + rng.random()) * HOUR
            if day == days and sod >= self.now_sod:
                sod = rng.random() * self.now_sod
            sent.append(self.day0 + day * DAY + sod)
        sent.sort()
        return sent

    def _next_open(self, moment: float) -> float:
        days, sod = divmod(moment - self.day0, DAY)
        weekday = (self.weekday0 + int(days)) % 7
        if weekday < 5 and OPENS <= sod < CLOSES:
            return moment
        if weekday < 5 and sod < OPENS:
            return moment - sod + OPENS
        step = 1
        while (weekday + step) % 7 >= 5:
            step += 1
        return moment - sod + step * DAY + OPENS

    def _appointment(self, program: _Program, accepted: float) -> float:
        rng = self.rng
        days, sod = divmod(accepted - self.day0, DAY)
        if sod < 15 * HOUR and rng.random() < 0.35:
            return accepted + rng.uniform(45, 180) * MIN  # come in today
        ahead = _pick(rng, APPOINTMENT_DAYS)
        weekday = (self.weekday0 + int(days) + ahead) % 7
        while not program.always_on and weekday >= 5:
            ahead, weekday = ahead + 1, (weekday + 1) % 7
        slot = 9 * HOUR + rng.randrange(32) * 15 * MIN  # 9:00 to 16:45
        return accepted - sod + ahead * DAY + slot

    def story(
        self, program: _Program, sent: float, urgent: bool
    ) -> tuple[list[Step], _Trip | None]:
        """Every step this referral will take, ignoring "now"."""
        rng = self.rng
        steps = [_s(sent, "send", "draft", "sent", "referrer")]
        due = sent + program.target
        first = _pick(rng, program.first)
        if first == "cancel":
            answer = sent + rng.lognormvariate(math.log(3 * HOUR), 1.0)
        elif first == "expire":
            answer = due + 72 * HOUR + rng.random() * 5 * MIN
        elif first == "enter_in_error":
            answer = sent + rng.uniform(5 * MIN, 2 * HOUR)
        else:
            opens = sent if program.always_on else self._next_open(sent)
            median = 2 * HOUR if first == "decline" else 40 * MIN
            quick = 0.5 if urgent else 1.0
            answer = opens + rng.lognormvariate(math.log(median), 0.9) * program.speed * quick
            if answer > due + 72 * HOUR:  # too late: the worker expired it first
                first, answer = "expire", due + 72 * HOUR + rng.random() * 5 * MIN
        swept = due + rng.random() * 5 * MIN  # the worker's next pass after the deadline
        if answer > swept and first != "enter_in_error":
            steps.append(_s(swept, "escalate", "sent", "sent", "system"))
        if first == "decline":
            steps.append(_s(answer, "decline", "sent", "declined", "provider", _pick(rng, DECLINE)))
            return steps, None
        if first == "cancel":
            reason = _pick(rng, CANCEL_EARLY)
            steps.append(_s(answer, "cancel", "sent", "cancelled", "referrer", reason))
            return steps, None
        if first == "expire":
            steps.append(_s(answer, "expire", "sent", "cancelled", "system"))
            return steps, None
        if first == "enter_in_error":
            steps.append(_s(answer, "enter_in_error", "sent", "entered_in_error", "coordinator"))
            return steps, None
        if first.startswith("hold_"):
            steps.append(_s(answer, "hold", "sent", "on_hold", "provider", _pick(rng, HOLD)))
            later = answer + rng.uniform(1, 10) * DAY
            if first == "hold_decline":
                reason = _pick(rng, DECLINE)
                steps.append(_s(later, "decline", "on_hold", "declined", "provider", reason))
                return steps, None
            if first == "hold_cancel":
                reason = _pick(rng, CANCEL_EARLY)
                steps.append(_s(later, "cancel", "on_hold", "cancelled", "referrer", reason))
                return steps, None
            steps.append(_s(later, "resume", "on_hold", "sent", "provider"))
            # At once: long past its deadline, it would expire at the worker's next pass.
            answer = later + rng.uniform(0.5, 3) * MIN
        appointment = self._appointment(program, answer)
        data = {"appointment_at": appointment}
        steps.append(_s(answer, "accept", "sent", "accepted", "provider", None, data))
        return steps, self._after_accept(program, steps, answer, appointment)

    def _after_accept(
        self, program: _Program, steps: list[Step], accepted: float, appointment: float
    ) -> _Trip | None:
        rng = self.rng
        path = _pick(rng, AFTER_ACCEPT)
        if path == "hold_cancel":
            hold = accepted + rng.uniform(1, 48) * HOUR
            steps.append(_s(hold, "hold", "accepted", "on_hold", "provider", _pick(rng, HOLD)))
            cancel = hold + rng.uniform(3, 21) * DAY
            reason = _pick(rng, CANCEL_LATE)
            steps.append(_s(cancel, "cancel", "on_hold", "cancelled", "referrer", reason))
            return None
        trip = self._book(program, steps, accepted, appointment)
        if path == "cancel":
            cancel = accepted + rng.uniform(0.05, 0.95) * (appointment - accepted)
            if trip is not None and trip.booked >= cancel:
                steps.pop()  # it would have been booked after the cancellation: never was
                trip = None
            reason = _pick(rng, CANCEL_LATE)
            steps.append(_s(cancel, "cancel", "accepted", "cancelled", "referrer", reason))
            self._call_off(trip, cancel)
            return trip
        if path == "no_show":
            marked = appointment + rng.lognormvariate(math.log(3 * HOUR), 0.8)
            if trip is not None and trip.mode == "vendor" and rng.random() < 0.6:
                gone = self._not_at_pickup(trip)
                steps.append(_s(gone, "ride_no_show", "accepted", "accepted", "driver"))
            else:
                self._call_off(trip, marked)
            steps.append(_s(marked, "no_show", "accepted", "no_show", "provider"))
            return trip
        if trip is not None:
            handed = self._ride_there(trip, steps)
        elif rng.random() < 0.75:
            arrived = appointment + rng.uniform(-15, 20) * MIN
            steps.append(_s(arrived, "arrive", "accepted", "arrived", "provider"))
            handed = arrived + rng.uniform(2, 40) * MIN
            steps.append(_s(handed, "hand_off", "arrived", "handed_off", "provider"))
        else:
            handed = appointment + rng.uniform(0, 30) * MIN
            steps.append(_s(handed, "hand_off", "accepted", "handed_off", "provider"))
        if rng.random() < COMPLETED_SHARE:
            done = handed + rng.lognormvariate(math.log(4 * DAY), 0.9)
            data = {"outcome": _pick(rng, OUTCOMES)}
            steps.append(_s(done, "complete", "handed_off", "completed", "provider", None, data))
        return trip

    def _book(
        self, program: _Program, steps: list[Step], accepted: float, appointment: float
    ) -> _Trip | None:
        """An outbound ride for some accepted referrals, planned as the booking page does."""
        rng = self.rng
        if program.site is None or rng.random() >= RIDE_SHARE:
            return None
        code = _pick(rng, ZIPS)
        lat, lon = self.zips[code]
        lat, lon = lat + rng.uniform(-0.01, 0.01), lon + rng.uniform(-0.014, 0.014)
        _site, site_lat, site_lon, _label = program.site
        # Road distance from the straight line (km per degree at this latitude).
        km = 1.3 * math.hypot((site_lat - lat) * 111.2, (site_lon - lon) * 78.7)
        if km > RIDE_MAX_KM:
            return None
        mode = _pick(rng, RIDE_MODES)
        if mode == "vendor" and not self.world.drivers:
            mode = "escort"
        if mode == "transit" and km < 1.5:
            mode = "walk"
        speed = 4.5 if mode == "walk" else 15 if mode == "transit" else 28  # km/h
        travel = round(4 + km / speed * 60, 1)
        high = round(travel * 1.35, 1)
        booked = accepted + rng.lognormvariate(math.log(15 * MIN), 0.8)
        arrive_by = appointment - 10 * MIN
        window_end = arrive_by - high * MIN - 5 * MIN
        if window_end - booked < 30 * MIN:
            return None  # too close to plan a ride: the responder takes them
        trip = _Trip(
            mode=mode,
            booked=booked,
            travel=travel,
            high=high,
            km=round(km, 2),
            pickup=(round(lat, 6), round(lon, 6), f"Pickup point, Minneapolis {code}"),
            window_start=max(booked, window_end - 20 * MIN),
            window_end=window_end,
            arrive_by=arrive_by,
            appointment=appointment,
        )
        booking = {"mode": mode}
        steps.append(_s(booked, "ride_booked", "accepted", "accepted", "referrer", None, booking))
        if mode == "vendor":
            trip.steps.append(_s(booked, "book", None, "requested", "referrer", None, booking))
            assigned = booked + min(rng.uniform(5, 90) * MIN, (trip.window_start - booked) / 2)
            trip.driver = _any(rng, self.world.drivers)
            trip.vehicle = _any(rng, self.world.vehicles) if self.world.vehicles else None
            data = {"driver_id": trip.driver, "vehicle_id": trip.vehicle}
            trip.steps.append(
                _s(assigned, "assign", "requested", "scheduled", "dispatch", None, data)
            )
        else:
            trip.steps.append(_s(booked, "book", None, "scheduled", "referrer", None, booking))
        return trip

    def _call_off(self, trip: _Trip | None, moment: float) -> None:
        if trip is not None:
            before = trip.status_before(moment)
            trip.steps.append(
                _s(moment, "cancel", before, "cancelled", "system", "referral_closed")
            )

    def _not_at_pickup(self, trip: _Trip) -> float:
        """The driver waits at the pickup and leaves without the client; returns when."""
        rng = self.rng
        there = trip.window_end - rng.uniform(0, 8) * MIN
        departed = max(trip.steps[-1][0] + MIN, there - rng.uniform(10, 25) * MIN)
        there = max(there, departed + MIN)
        gone = there + rng.uniform(8, 20) * MIN
        trip.steps += [
            _s(departed, "depart", "scheduled", "en_route_to_pickup", "driver"),
            _s(there, "at_pickup", "en_route_to_pickup", "en_route_to_pickup", "driver"),
            _s(gone, "no_show", "en_route_to_pickup", "no_show", "driver"),
        ]
        return gone

    def _ride_there(self, trip: _Trip, steps: list[Step]) -> float:
        """Pickup (in the window or late), drop-off, and the referral's matching steps."""
        rng = self.rng
        if rng.random() < LATE_RIDE_SHARE:
            pickup = trip.window_end + rng.lognormvariate(math.log(10 * MIN), 0.7)
        else:
            pickup = rng.uniform(trip.window_start, trip.window_end)
        who = "driver" if trip.mode == "vendor" else "referrer"
        if trip.mode == "vendor":
            departed = max(trip.steps[-1][0] + MIN, pickup - rng.uniform(8, 25) * MIN)
            there = max(departed + MIN, pickup - rng.uniform(0, 6) * MIN)
            pickup = max(pickup, there)
            trip.steps += [
                _s(departed, "depart", "scheduled", "en_route_to_pickup", who),
                _s(there, "at_pickup", "en_route_to_pickup", "en_route_to_pickup", who),
                _s(pickup, "pick_up", "en_route_to_pickup", "picked_up", who),
            ]
        else:
            trip.steps.append(_s(pickup, "pick_up", "scheduled", "picked_up", who))
        dropped = pickup + trip.travel * rng.uniform(0.85, 1.3) * MIN
        trip.steps.append(_s(dropped, "drop_off", "picked_up", "dropped_off", who))
        handed = dropped + rng.uniform(2, 25) * MIN
        steps += [
            _s(pickup, "depart", "accepted", "en_route", who),
            _s(dropped, "arrive", "en_route", "arrived", who, None, {"at": dropped}),
            _s(handed, "hand_off", "arrived", "handed_off", "provider"),
        ]
        return handed

    # --- rows ------------------------------------------------------------------------------

    def add(self, sent: float) -> None:
        """Tell one referral's story and keep the rows of what happened before now."""
        rng, world = self.rng, self.world
        program = world.programs[bisect(world.program_cum, rng.random() * world.program_cum[-1])]
        team, responders = world.teams[bisect(world.team_cum, rng.random() * world.team_cum[-1])]
        user = _any(rng, responders)
        staff = _any(rng, program.staff) if program.staff else None
        offset = self.offsets[int((sent - self.day0) // DAY)]

        def at(moment: float) -> datetime:
            return datetime.fromtimestamp(moment - offset, UTC)

        screened = sent - rng.uniform(3, 20) * MIN
        client_id, code = self._client(team, user, at(screened))
        self._screenings(program, team, screened, code, offset, at)
        urgent = rng.random() < 0.2
        steps, trip = self.story(program, sent, urgent)
        steps.sort(key=_first)
        cutoff = self.now_ts + offset  # "now" on this referral's clock
        kept = 0
        while kept < len(steps) and steps[kept][0] <= cutoff:
            kept += 1
        steps = steps[:kept]
        if trip is not None and trip.booked > cutoff:
            trip = None
        referral_id = self.next_referral
        self.next_referral += 1
        ride_id = self.next_ride if trip is not None else None
        actors = {
            "referrer": (user, team, None),
            "provider": (staff, program.org_id, None),
            "system": (None, None, "system"),
            "driver": (None, world.vendor, "driver"),
            "coordinator": (*world.coordinator, None),
        }
        accepted = appointment = arrived = handed = closed = escalated = None
        reason = note = outcome = handed_to = None
        status = "draft"
        for moment, action, before, after, who, code_given, data in steps:
            status = after
            if action == "accept":
                accepted, appointment = moment, data["appointment_at"]  # type: ignore[index]
            elif action == "arrive":
                arrived = moment
            elif action == "hand_off":
                handed, handed_to = moment, _any(rng, STAFF)
                arrived = arrived or moment
            elif action == "escalate":
                escalated = moment
            elif action == "complete":
                outcome = data["outcome"]  # type: ignore[index]
            elif action == "expire":
                reason = "expired"
            elif action == "enter_in_error":
                note = "Entered twice"
            elif action in NOTES:
                data = {"ride_id": ride_id, "leg": "outbound", **(data or {})}
            reason = code_given or reason
            if after in TERMINAL:
                closed = moment
            user_id, org_id, label = actors[who]
            self.rows["referral_events"].append(
                (
                    referral_id,
                    action,
                    before,
                    after,
                    user_id,
                    org_id,
                    label,
                    code_given,
                    self._data(data, at),
                    at(moment),
                )
            )
        lat, lon = self.zips[code]
        answers = {
            "needs": [program.need] if program.need else [],
            "location": {
                "lat": round(lat + rng.uniform(-0.01, 0.01), 5),
                "lon": round(lon + rng.uniform(-0.014, 0.014), 5),
                "postal_code": code,
            },
        }
        self.rows["referrals"].append(
            (
                referral_id,
                _uuid(rng),
                client_id,
                program.id,
                program.site[0] if program.site else None,
                program.org_id,
                team,
                user,
                status,
                "urgent" if urgent else "routine",
                self.json(answers),
                1,
                at(sent),
                at(sent + program.target),
                _maybe(at, accepted),
                _maybe(at, appointment),
                _maybe(at, arrived),
                _maybe(at, handed),
                handed_to,
                f"{rng.randrange(10**6):06d}",
                _maybe(at, closed),
                _maybe(at, escalated),
                reason,
                note,
                outcome,
                False,
                1 + sum(s[1] not in NOTES for s in steps),
                at(sent),
                at(steps[-1][0]),
            )
        )
        if trip is not None:
            self._ride(trip, ride_id, referral_id, program, user, team, cutoff, at)

    def _ride(
        self,
        trip: _Trip,
        ride_id: int,
        referral_id: int,
        program: _Program,
        user: int,
        team: int,
        cutoff: float,
        at: Clock,
    ) -> None:
        """The ride's row and the events of its steps that happened before now."""
        rng = self.rng
        self.next_ride += 1
        fields: dict[str, Any] = {}
        steps = [s for s in trip.steps if s[0] <= cutoff]
        stamps = {
            "depart": "en_route",
            "at_pickup": "at_pickup",
            "pick_up": "picked_up",
            "drop_off": "dropped_off",
        }
        labels = {"referrer": (user, None), "driver": (None, "driver")}
        for moment, action, before, after, who, reason, data in steps:
            if action in stamps:
                fields[stamps[action]] = moment
            if after in RIDE_TERMINAL:
                fields["closed"], fields["reason"] = moment, reason
            user_id, label = labels.get(who, (None, who))
            self.rows["ride_events"].append(
                (
                    ride_id,
                    action,
                    before,
                    after,
                    user_id,
                    label,
                    reason,
                    self._data(data, at),
                    at(moment),
                )
            )
        assigned = len(steps) > 1 and steps[1][1] == "assign"
        site_id, site_lat, site_lon, site_label = program.site  # type: ignore[misc]
        low = trip.travel - (trip.high - trip.travel)
        window_start, window_end = trip.window_start, trip.window_end
        vendor = self.world.vendor if trip.mode == "vendor" else None
        self.rows["rides"].append(
            (
                ride_id,
                _uuid(rng),
                referral_id,
                "outbound",
                trip.mode,
                steps[-1][3],
                vendor,
                site_id,
                user,
                team,
                trip.pickup[2],
                trip.pickup[0],
                trip.pickup[1],
                False,
                site_label,
                site_lat,
                site_lon,
                False,
                False,
                at(trip.appointment),
                at(window_start),
                at(window_end),
                at(trip.arrive_by),
                at(window_start + (5 + low) * MIN),
                at(window_end + (5 + trip.high) * MIN),
                trip.travel,
                trip.high,
                trip.km,
                "estimate",
                rng.random() < 0.04,
                False,
                int(rng.random() < 0.25),
                trip.driver if assigned else None,
                trip.vehicle if assigned else None,
                _maybe(at, fields.get("en_route")),
                _maybe(at, fields.get("at_pickup")),
                _maybe(at, fields.get("picked_up")),
                _maybe(at, fields.get("dropped_off")),
                _maybe(at, fields.get("closed")),
                fields.get("reason"),
                len(steps),
                at(trip.booked),
                at(steps[-1][0]),
            )
        )

    def _screenings(
        self, program: _Program, team: int, screened: float, code: str, offset: float, at: Clock
    ) -> None:
        """The screening that led to this referral, and one elsewhere that may have found
        nothing (more of those at night, at weekends, and for office-hours-only needs)."""
        rng = self.rng
        rows = self.rows["screening_records"]
        need = [program.need] if program.need else []
        found = rng.random() < 0.93  # else only a waiting list
        rows.append(self._screening(screened, code, need, True, True, found, team, at))
        sod = (screened - self.day0) % DAY
        moment = (
            screened
            - sod
            + rng.randrange(-3, 4) * DAY
            + (_pick(rng, SCREEN_HOURS) + rng.random()) * HOUR
        )
        if moment - offset > self.now_ts:
            moment -= 7 * DAY
        other = _any(rng, self.needs)
        needs = sorted({other, _any(rng, self.needs)}) if rng.random() < 0.2 else [other]
        weekday = (self.weekday0 + int((moment - self.day0) // DAY)) % 7
        hour = int((moment - self.day0) % DAY // HOUR)
        office = weekday < 5 and 8 <= hour < 18
        if office:
            open_share = 0.92
        elif OFFICE_HOURS_ONLY.intersection(needs):
            open_share = 0.08
        else:
            open_share = 0.6 if weekday < 5 and 7 <= hour < 22 else 0.45
        eligible = rng.random() < 0.85
        is_open = eligible and rng.random() < open_share
        capacity = is_open and rng.random() < (0.5 if "housing" in needs else 0.8)
        rows.append(
            self._screening(moment, _pick(rng, ZIPS), needs, eligible, is_open, capacity, team, at)
        )

    def _screening(
        self,
        moment: float,
        code: str,
        needs: list[str],
        eligible: bool,
        is_open: bool,
        capacity: bool,
        team: int,
        at: Clock,
    ) -> tuple:
        days, sod = divmod(moment - self.day0, DAY)
        hour_of_week = (self.weekday0 + int(days)) % 7 * 24 + int(sod // HOUR)
        created = at(moment).replace(minute=0, second=0, microsecond=0)
        return (
            created,
            hour_of_week,
            code,
            self.json(needs),
            eligible,
            is_open,
            capacity,
            team,
            SCREENER_VERSION,
        )

    def _client(self, team: int, user: int, created: datetime) -> tuple[int, str]:
        """A returning client of this team (some people are referred again) or a new one."""
        rng = self.rng
        recent = self.recent.setdefault(team, [])
        if recent and rng.random() < 0.45:
            return _any(rng, recent[-60:])
        client_id = self.next_client
        self.next_client += 1
        self.rows["clients"].append(
            (
                client_id,
                _uuid(rng),
                team,
                user,
                f"Synthetic client {client_id}",
                f"{MARK} {client_id}",
                _pick(rng, LANGUAGES),
                rng.randint(1945, 2007),
                rng.random() < 0.6,
                False,
                created,
                created,
            )
        )
        code = _pick(rng, ZIPS)
        recent.append((client_id, code))
        if len(recent) > 600:
            del recent[:300]
        return client_id, code

    def _data(self, data: dict[str, Any] | None, at: Clock) -> Any:
        if not data:
            return self.empty
        return self.json({k: at(v).isoformat() if k in TIME_DATA else v for k, v in data.items()})

    def take(self) -> dict[str, list[tuple]]:
        """The rows generated since the last call, by table name."""
        batch, self.rows = self.rows, {name: [] for name in TABLES}
        for name, rows in batch.items():
            self.counts[name] += len(rows)
        return batch


TERMINAL = frozenset({"declined", "completed", "no_show", "cancelled", "entered_in_error"})
RIDE_TERMINAL = frozenset({"dropped_off", "cancelled", "no_show"})


def _first(step: Step) -> float:
    return step[0]


def _maybe(at: Clock, moment: float | None) -> datetime | None:
    return None if moment is None else at(moment)


def _any(rng: random.Random, items: list) -> Any:
    return items[int(rng.random() * len(items))]  # rng.choice, at a third of the cost


def _uuid(rng: random.Random) -> str:
    """A random (version 4) UUID from this generator, formatted without uuid.UUID's cost."""
    bits = rng.getrandbits(128) & ~(0xF000 << 64 | 0xC000 << 48) | (0x4000 << 64 | 0x8000 << 48)
    h = f"{bits:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


# --- writing ---------------------------------------------------------------------------------


class _Sink:
    """COPY on PostgreSQL (the fast path: a million referrals in minutes), else executemany."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.postgres = connection.dialect.name == "postgresql"

    def write_batch(self, batch: dict[str, list[tuple]]) -> None:
        for name, (table, columns) in TABLES.items():
            if batch[name]:
                self.write(table, columns, batch[name])

    def write(self, table: Table, columns: list[str], rows: list[tuple]) -> None:
        if self.postgres:
            cursor = self.connection.connection.cursor()
            try:
                with cursor.copy(f"COPY {table.name} ({', '.join(columns)}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
            finally:
                cursor.close()
            return
        for start in range(0, len(rows), BATCH):
            self.connection.execute(
                insert(table),
                [dict(zip(columns, row, strict=True)) for row in rows[start : start + BATCH]],
            )


class _Writer:
    """On PostgreSQL, a thread sends each batch while the next one is generated: the server
    checks keys and updates indexes in parallel. Elsewhere, batches are written in line."""

    def __init__(self, sink: _Sink) -> None:
        self.sink = sink
        self.error: BaseException | None = None
        self.queue: queue.Queue[dict[str, list[tuple]] | None] = queue.Queue(maxsize=2)
        self.thread = threading.Thread(target=self._run, daemon=True) if sink.postgres else None
        if self.thread is not None:
            self.thread.start()

    def put(self, batch: dict[str, list[tuple]]) -> None:
        if self.thread is None:
            self.sink.write_batch(batch)
            return
        if self.error is not None:
            raise self.error
        self.queue.put(batch)

    def close(self) -> None:
        """Wait for the last batch; raise what the thread met."""
        if self.thread is not None:
            self.queue.put(None)
            self.thread.join()
        if self.error is not None:
            raise self.error

    def _run(self) -> None:
        while (batch := self.queue.get()) is not None:
            if self.error is None:  # after a failure, only drain the queue
                try:
                    self.sink.write_batch(batch)
                except BaseException as exc:  # handed to the main thread
                    self.error = exc


def _compact_json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def _as_is(value: Any) -> Any:
    return value


def build_history(
    count: int,
    *,
    days: int = 730,
    seed: int = 11,
    append: bool = False,
    now: datetime | None = None,
) -> dict[str, int]:
    """Insert `count` referrals with their events, clients and rides; returns row counts.

    Refuses a second history unless `append`. Flushes only: the caller commits (or not).
    """
    connection = db.session.connection()
    sink = _Sink(connection)
    if sink.postgres:
        # Ids are assigned here: no other writer may take them meanwhile (a second run waits,
        # then sees the first one's clients and refuses).
        connection.exec_driver_sql(
            "LOCK TABLE clients, referrals, rides IN SHARE ROW EXCLUSIVE MODE"
        )
    earlier = db.session.scalar(select(Client.id).where(Client.name_key.like(f"{MARK} %")).limit(1))
    if earlier is not None and not append:
        raise HistoryExists("this database already has a synthetic history (use --append)")
    first = {
        model: (db.session.scalar(select(func.max(model.id))) or 0) + 1
        for model in (Client, Referral, Ride)
    }
    # Appending with the same seed must not repeat the first run's uuids.
    rng = random.Random(seed if earlier is None else f"{seed}/{first[Referral]}")  # noqa: S311
    world = _load_world(rng)
    generator = _Generator(
        rng, world, now or utcnow(), days, _compact_json if sink.postgres else _as_is
    )
    generator.next_client, generator.next_referral, generator.next_ride = (
        first[Client],
        first[Referral],
        first[Ride],
    )
    sending = generator.sending_times(count)
    writer = _Writer(sink)
    try:
        for start in range(0, count, CHUNK):
            for sent in sending[start : start + CHUNK]:
                generator.add(sent)
            writer.put(generator.take())
    finally:
        writer.close()
    if sink.postgres:
        for table in ("clients", "referrals", "rides"):
            connection.exec_driver_sql(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "  # noqa: S608
                f"(SELECT max(id) FROM {table}))"
            )
    tallies.rebuild(connection)  # COPY and executemany pass no flush
    if sink.postgres:
        # Fresh statistics, so the dashboards' first queries get sensible plans.
        connection.exec_driver_sql(f"ANALYZE {', '.join(TABLES)}, referral_day_tallies")
    db.session.expire_all()
    return dict(generator.counts)
