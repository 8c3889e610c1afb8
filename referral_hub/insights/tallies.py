"""Daily referral tallies and hourly screening tallies, rewritten from the rows they count in
the transaction that changes those.

The dashboards count referrals by day, program and organization over months; adding up
`referral_day_tallies` (one row per day, program, provider and referring organization) is
a few thousand rows where the referrals are hundreds of thousands. The tallies are never
edited by hand: each flush that adds, changes or deletes a referral or a ride rewrites the
tallies of every (day, program) it touched, from `referrals` and `rides` themselves, so a
tally cannot drift from what it counts. `rebuild()` rewrites them all (after a bulk load,
or to check them: it gives the same rows).

Two transactions rewriting the same (day, program) on PostgreSQL take turns on an advisory
transaction lock; the second rewrite is a new statement under READ COMMITTED and so counts
what the first committed. SQLite has one writer at a time anyway.

Durations (time to accept, time to handoff) and "accepted within target", which depends on
each program's current target, are not tallied: insights.metrics reads them from the
referrals that have them.

Screenings (insights.screenings) are tallied the same way, per hour of the week of each day
and referring organization, once each and once per need asked for; a new screening record
rewrites its hour.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, timedelta

from sqlalchemy import (
    Connection,
    Date,
    Integer,
    and_,
    case,
    cast,
    delete,
    event,
    func,
    insert,
    inspect,
    literal,
    not_,
    null,
    select,
    true,
)
from sqlalchemy.orm import Session
from sqlalchemy.sql import Subquery

from referral_hub.core.db import UTCDateTime, city_tz, utcnow
from referral_hub.insights.localtime import local_date
from referral_hub.insights.models import (
    ReferralDayCode,
    ReferralDayTally,
    ScreeningHourTally,
    ScreeningRecord,
)
from referral_hub.referrals.models import Referral, Status
from referral_hub.transport.models import Leg, Ride

TALLIED = (
    "sent",
    "accepted",
    "declined",
    "handed_off",
    "no_show",
    "escalated",
    "completed",
    "rides_picked_up",
    "rides_on_time",
)
CODED = {Status.DECLINED: Referral.reason_code, Status.COMPLETED: Referral.outcome}
GROUP = ("day", "program_id", "provider_org_id", "referring_org_id")


def day_of(moment: datetime) -> date:
    """The day (city time) a referral sent at this moment is tallied under."""
    return moment.astimezone(city_tz()).date()


def ride_counts(*where) -> Subquery:
    """Per referral (of those `where` selects), outbound rides picked up, and those picked
    up within their planned window: what "rides on time" counts."""
    on_time = Ride.picked_up_at.between(Ride.window_start_at, Ride.window_end_at)
    stmt = select(
        Ride.referral_id,
        func.count().label("picked_up"),
        func.count(case((on_time, 1))).label("on_time"),
    )
    if where:
        stmt = stmt.join(Referral, Referral.id == Ride.referral_id).where(*where)
    return (
        stmt.where(
            Ride.leg == Leg.OUTBOUND,
            Ride.picked_up_at.is_not(None),
            Ride.window_start_at.is_not(None),
            Ride.window_end_at.is_not(None),
        )
        .group_by(Ride.referral_id)
        .subquery("ride_counts")
    )


def _counted(where, day_column) -> tuple[list, list]:
    """(tally columns, code columns) over the referrals `where` selects, by GROUP."""
    rides = ride_counts(where)
    now = literal(utcnow(), UTCDateTime())
    keys = [day_column, Referral.program_id, Referral.provider_org_id, Referral.referring_org_id]
    status = Referral.status
    tally = (
        select(
            *keys,
            func.count().label("sent"),
            func.count(Referral.accepted_at),
            func.count(case((status == Status.DECLINED, 1))),
            func.count(Referral.handed_off_at),
            func.count(case((status == Status.NO_SHOW, 1))),
            func.count(Referral.escalated_at),
            func.count(case((status == Status.COMPLETED, 1))),
            cast(func.coalesce(func.sum(rides.c.picked_up), 0), Integer),
            cast(func.coalesce(func.sum(rides.c.on_time), 0), Integer),
            now,
            now,
        )
        .select_from(Referral)
        .outerjoin(rides, rides.c.referral_id == Referral.id)
        .where(where)
        .group_by(*keys)
    )
    code = case(*[(status == s, column) for s, column in CODED.items()])
    codes = (
        select(*keys, status, code, func.count(), now, now)
        .where(where, status.in_(list(CODED)))
        .group_by(*keys, status, code)
    )
    return tally, codes


def _write(connection: Connection, tally, codes) -> None:
    stamps = ("created_at", "updated_at")
    connection.execute(insert(ReferralDayTally).from_select([*GROUP, *TALLIED, *stamps], tally))
    connection.execute(
        insert(ReferralDayCode).from_select([*GROUP, "status", "code", "count", *stamps], codes)
    )


def _sent(low: datetime | None = None, high: datetime | None = None):
    clauses = [Referral.sent_at.is_not(None), Referral.status != Status.ENTERED_IN_ERROR]
    if low is not None:
        clauses += [Referral.sent_at >= low, Referral.sent_at < high]
    return and_(*clauses)


def rewrite(connection: Connection, keys: Iterable[tuple[date, int]]) -> None:
    """Rewrite the tallies of these (day, program) pairs from the referrals."""
    tz = city_tz()
    postgres = connection.dialect.name == "postgresql"
    for day, program_id in sorted(set(keys)):  # one order everywhere: no deadlock
        if postgres:
            connection.execute(select(func.pg_advisory_xact_lock(program_id, day.toordinal())))
        low = datetime.combine(day, datetime.min.time(), tz)
        high = datetime.combine(day + timedelta(days=1), datetime.min.time(), tz)
        for model in (ReferralDayTally, ReferralDayCode):
            connection.execute(
                delete(model).where(model.day == day, model.program_id == program_id)
            )
        where = and_(_sent(low, high), Referral.program_id == program_id)
        _write(connection, *_counted(where, literal(day, Date())))


def rebuild(connection: Connection) -> None:
    """Rewrite every tally from the referrals and screenings (after a bulk load, which no
    flush saw)."""
    rebuild_screenings(connection)
    for model in (ReferralDayTally, ReferralDayCode):
        connection.execute(delete(model))
    first_last = select(func.min(Referral.sent_at), func.max(Referral.sent_at))
    low, high = connection.execute(first_last).one()
    if low is None:
        return
    day = local_date(connection.dialect.name, Referral.sent_at, low, high)
    _write(connection, *_counted(_sent(), day))


# --- screenings --------------------------------------------------------------------------------

SCREENING_GROUP = ("day", "hour_of_week", "referring_org_id", "need")
SCREENING_COUNTS = ("screenings", "no_eligible", "none_open", "no_capacity")


def needs_rows(dialect: str):
    """The needs of a screening record as rows (a table-valued function of its JSON list)."""
    if dialect == "postgresql":
        return func.jsonb_array_elements_text(ScreeningRecord.needs).table_valued("value")
    return func.json_each(ScreeningRecord.needs).table_valued("value")


def _write_screenings(connection: Connection, where, day_column) -> None:
    """Tally the screening records `where` selects: once each (need NULL), and once for
    each need they named ("" when none)."""
    r = ScreeningRecord
    now = literal(utcnow(), UTCDateTime())
    counts = [
        func.count(),
        func.count(case((not_(r.any_eligible), 1))),
        func.count(case((r.any_eligible & not_(r.any_open), 1))),
        func.count(case((r.any_open & not_(r.any_capacity), 1))),
    ]
    keys = [day_column, r.hour_of_week, r.referring_org_id]
    needs = needs_rows(connection.dialect.name).alias("need")
    need = func.coalesce(needs.c.value, "")
    columns = [*SCREENING_GROUP, *SCREENING_COUNTS, "created_at", "updated_at"]
    every = select(*keys, null(), *counts, now, now).where(where).group_by(*keys)
    by_need = (
        select(*keys, need, *counts, now, now)
        .select_from(r)
        .outerjoin(needs, true())  # a screening that named no need counts under ""
        .where(where)
        .group_by(*keys, need)
    )
    for stmt in (every, by_need):
        connection.execute(insert(ScreeningHourTally).from_select(columns, stmt))


def rewrite_screenings(connection: Connection, keys: Iterable[tuple[date, int]]) -> None:
    """Rewrite the screening tallies of these (day, hour of the week) pairs."""
    tz = city_tz()
    postgres = connection.dialect.name == "postgresql"
    t = ScreeningHourTally
    for day, hour_of_week in sorted(set(keys)):
        if postgres:  # one bigint key: apart from the referral tallies' pairs of int keys
            connection.execute(
                select(func.pg_advisory_xact_lock(day.toordinal() * 168 + hour_of_week))
            )
        low = datetime.combine(day, datetime.min.time(), tz)
        high = datetime.combine(day + timedelta(days=1), datetime.min.time(), tz)
        connection.execute(delete(t).where(t.day == day, t.hour_of_week == hour_of_week))
        r = ScreeningRecord
        where = and_(r.created_at >= low, r.created_at < high, r.hour_of_week == hour_of_week)
        _write_screenings(connection, where, literal(day, Date()))


def rebuild_screenings(connection: Connection) -> None:
    """Rewrite every screening tally from the records (after a bulk load)."""
    connection.execute(delete(ScreeningHourTally))
    r = ScreeningRecord
    low, high = connection.execute(select(func.min(r.created_at), func.max(r.created_at))).one()
    if low is None:
        return
    day = local_date(connection.dialect.name, r.created_at, low, high)
    _write_screenings(connection, true(), day)


# --- keeping them in step ---------------------------------------------------------------------


def _keys_of(obj: Referral) -> set[tuple[date, int]]:
    """The (day, program) pairs a changed referral counts under, now and before the change."""
    state = inspect(obj)
    sent = state.attrs.sent_at.history
    program = state.attrs.program_id.history
    sent_values = {*sent.added, *sent.unchanged, *sent.deleted} or {obj.sent_at}
    programs = {*program.added, *program.unchanged, *program.deleted} or {obj.program_id}
    return {
        (day_of(s), p) for s in sent_values for p in programs if s is not None and p is not None
    }


@event.listens_for(Session, "after_flush")
def _keep_in_step(session: Session, flush_context) -> None:
    """Rewrite the tallies a flush touched, in its transaction."""
    keys: set[tuple[date, int]] = set()
    ride_referrals: set[int] = set()
    hours: set[tuple[date, int]] = set()
    for obj in (*session.new, *session.dirty, *session.deleted):
        if isinstance(obj, ScreeningRecord):
            hours.add((day_of(obj.created_at), obj.hour_of_week))
        elif isinstance(obj, Referral):
            keys |= _keys_of(obj)
        elif isinstance(obj, Ride):
            history = inspect(obj).attrs.referral_id.history
            found = {*history.added, *history.unchanged, *history.deleted} or {obj.referral_id}
            ride_referrals |= found - {None}
    if not (keys or ride_referrals or hours):
        return
    connection = session.connection()
    if ride_referrals:
        rows = connection.execute(
            select(Referral.sent_at, Referral.program_id).where(
                Referral.id.in_(ride_referrals), Referral.sent_at.is_not(None)
            )
        )
        keys |= {(day_of(sent_at), program_id) for sent_at, program_id in rows}
    if keys:
        rewrite(connection, keys)
    if hours:
        rewrite_screenings(connection, hours)
