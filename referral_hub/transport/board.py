"""The dispatch board: a transport vendor's rides of one city day in pickup order, with the
flags a dispatcher acts on (late, overlapping, unassigned).

Counts and flags cover the whole day from one narrow query; only the rows of the page shown
are loaded as full rides with what a row displays, so a day of 5,000 rides stays quick and
the number of queries does not grow with the rides.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, case, func, select
from sqlalchemy.orm import selectinload

from referral_hub.core.db import city_tz, utcnow
from referral_hub.extensions import db
from referral_hub.referrals.models import Referral
from referral_hub.transport.models import Driver, Ride, RideMode, RideStatus, Vehicle

LATE_STATES = frozenset({RideStatus.REQUESTED, RideStatus.SCHEDULED, RideStatus.EN_ROUTE_TO_PICKUP})
PER_PAGE = 100


@dataclass
class BoardRow:
    ride: Ride
    late: bool
    overlaps: list[int]  # ids of the same driver's rides whose times overlap this one
    unassigned: bool


@dataclass
class Board:
    day: date
    rows: list[BoardRow]  # the page shown
    counts: dict[str, int]  # per status, whole day
    total: int  # rides of the day
    shown: int  # rides of the day the status filter keeps
    late: int
    unassigned: int
    page: int
    pages: int
    drivers: list[Driver] = field(default_factory=list)
    vehicles: list[Vehicle] = field(default_factory=list)


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """The aware start and end of a day in the city's time zone."""
    start = datetime.combine(day, datetime.min.time(), tzinfo=city_tz())
    return start, start + timedelta(days=1)


def on_day(day: date) -> ColumnElement[bool]:
    """Rides of the day: pickups in it, and will-call returns (no window yet) whose
    appointment is in it, so the dispatcher sees them coming."""
    start, end = day_bounds(day)
    return ((Ride.window_start_at >= start) & (Ride.window_start_at < end)) | (
        Ride.window_start_at.is_(None)
        & (Ride.requested_for_at >= start)
        & (Ride.requested_for_at < end)
    )


def is_late(status: RideStatus, window_end_at: datetime | None, picked_up_at, now) -> bool:
    """The pickup window has passed and nobody was picked up."""
    return (
        status in LATE_STATES
        and window_end_at is not None
        and window_end_at < now
        and picked_up_at is None
    )


def dispatch_board(
    organization_ids: set[int],
    day: date,
    *,
    statuses: set[RideStatus] | None = None,
    page: int = 1,
    per_page: int = PER_PAGE,
    now: datetime | None = None,
) -> Board:
    """The board for the vendors' rides of one city day; `statuses` and `page` pick rows."""
    now = now or utcnow()
    orgs = organization_ids or {-1}
    facts = db.session.execute(
        select(
            Ride.id,
            Ride.status,
            Ride.mode,
            Ride.driver_id,
            Ride.window_start_at,
            Ride.window_end_at,
            Ride.eta_latest_at,
            Ride.picked_up_at,
        )
        .where(Ride.vendor_org_id.in_(orgs), on_day(day))
        .order_by(Ride.window_start_at, Ride.id)
    ).all()
    counts: dict[str, int] = {s.value: 0 for s in RideStatus}
    late: set[int] = set()
    unassigned: set[int] = set()
    busy: dict[int, list[tuple[datetime, datetime, int]]] = {}
    for row in facts:
        counts[row.status.value] += 1
        if is_late(row.status, row.window_end_at, row.picked_up_at, now):
            late.add(row.id)
        if row.mode is RideMode.VENDOR and row.driver_id is None and not row.status.terminal:
            unassigned.add(row.id)
        if (
            row.driver_id is not None
            and row.window_start_at is not None
            and row.status not in (RideStatus.CANCELLED, RideStatus.NO_SHOW)
        ):
            # From the start of the pickup window to the latest arrival, the driver is taken.
            end = row.eta_latest_at or row.window_end_at or row.window_start_at
            busy.setdefault(row.driver_id, []).append((row.window_start_at, end, row.id))
    overlaps = _overlaps(busy)
    kept = [row.id for row in facts if not statuses or row.status in statuses]
    pages = max(1, -(-len(kept) // per_page))
    page = min(max(1, page), pages)
    shown_ids = kept[(page - 1) * per_page : page * per_page]
    rides = {ride.id: ride for ride in _load(shown_ids)}
    rows = [
        BoardRow(
            ride=rides[ride_id],
            late=ride_id in late,
            overlaps=overlaps.get(ride_id, []),
            unassigned=ride_id in unassigned,
        )
        for ride_id in shown_ids
    ]
    return Board(
        day=day,
        rows=rows,
        counts=counts,
        total=len(facts),
        shown=len(kept),
        late=len(late),
        unassigned=len(unassigned),
        page=page,
        pages=pages,
        drivers=list(
            db.session.scalars(
                select(Driver)
                .where(Driver.organization_id.in_(orgs), Driver.is_active)
                .order_by(Driver.first_name, Driver.id)
            )
        ),
        vehicles=list(
            db.session.scalars(
                select(Vehicle)
                .where(Vehicle.organization_id.in_(orgs), Vehicle.is_active)
                .order_by(Vehicle.label, Vehicle.id)
            )
        ),
    )


def day_summary(organization_ids: set[int], day: date, *, now: datetime) -> dict[str, Any]:
    """Counts for a home page: rides of the day per status, late and unassigned, in SQL."""
    late = (
        Ride.status.in_([s.value for s in LATE_STATES])
        & (Ride.window_end_at < now)
        & Ride.picked_up_at.is_(None)
    )
    unassigned = (
        (Ride.mode == RideMode.VENDOR)
        & Ride.driver_id.is_(None)
        & Ride.status.not_in([s.value for s in RideStatus if s.terminal])
    )
    rows = db.session.execute(
        select(
            Ride.status,
            func.count(),
            func.sum(case((late, 1), else_=0)),
            func.sum(case((unassigned, 1), else_=0)),
        )
        .where(Ride.vendor_org_id.in_(organization_ids or {-1}), on_day(day))
        .group_by(Ride.status)
    ).all()
    counts = {status: n for status, n, _late, _unassigned in rows}
    return {
        "total": sum(counts.values()),
        "counts": [(s, counts[s]) for s in RideStatus if counts.get(s)],
        "late": sum(int(r[2] or 0) for r in rows),
        "unassigned": sum(int(r[3] or 0) for r in rows),
    }


def _load(ride_ids: list[int]) -> list[Ride]:
    """The page's rides with everything a board row shows, in a fixed number of queries."""
    if not ride_ids:
        return []
    return list(
        db.session.scalars(
            select(Ride)
            .where(Ride.id.in_(ride_ids))
            .options(
                selectinload(Ride.driver),
                selectinload(Ride.vehicle),
                selectinload(Ride.site),
                selectinload(Ride.referral).selectinload(Referral.client),
                selectinload(Ride.referral).selectinload(Referral.program),
            )
        )
    )


def _overlaps(busy: dict[int, list[tuple[datetime, datetime, int]]]) -> dict[int, list[int]]:
    """Ride ids whose busy times overlap another ride of the same driver (a sweep per driver)."""
    found: dict[int, list[int]] = {}
    for spans in busy.values():
        spans.sort()
        active: list[tuple[datetime, int]] = []  # (end, id) of spans still open
        for begin, finish, ride_id in spans:
            active = [(e, i) for e, i in active if e > begin]
            for _end, other in active:
                found.setdefault(ride_id, []).append(other)
                found.setdefault(other, []).append(ride_id)
            active.append((finish, ride_id))
    return found
