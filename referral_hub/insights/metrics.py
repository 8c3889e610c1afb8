"""Referral metrics, aggregated in the database.

Each public function sends a fixed number of queries, whatever the number of referrals:
counts, shares, rides and percentiles in one GROUP BY on PostgreSQL (percentile_cont);
SQLite, without percentile_cont, takes one more per duration (row numbers over a window).
Nothing loops over referrals in Python; what comes back is one small row per group, ready
for a table or a chart.

The definitions of what is counted live in insights/definitions.py; change both together.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import (
    Date,
    Float,
    Integer,
    Select,
    and_,
    case,
    cast,
    exists,
    func,
    literal,
    select,
    tuple_,
    type_coerce,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import aliased
from sqlalchemy.sql.functions import FunctionElement

from referral_hub.accounts.models import Membership, Organization, Role
from referral_hub.core.db import city_tz, utcnow
from referral_hub.directory.models import Category, Program, Site, program_categories
from referral_hub.extensions import db
from referral_hub.insights import tallies
from referral_hub.insights.definitions import DEFINITIONS
from referral_hub.insights.localtime import sqlite_local
from referral_hub.insights.models import Comparator, Goal, ReferralDayCode, ReferralDayTally
from referral_hub.referrals.lifecycle import REASON_TITLES
from referral_hub.referrals.models import Referral, Status

# --- filters and groupings -----------------------------------------------------------------


class Dimension(enum.StrEnum):
    """What a table of metrics is broken down by."""

    PROGRAM = "program"
    ORGANIZATION = "organization"  # the provider
    CATEGORY = "category"  # a referral counts once in each category of its program
    REFERRING_ORG = "referring_org"
    ROLE = "role"  # the referring user's role in the referring organization
    ZIP = "zip"  # of the program's site the referral was sent to
    WEEK = "week"  # Monday-to-Sunday weeks in the city's time zone, by date sent

    @property
    def title(self) -> str:
        return str(DIMENSION_TITLES[self])


DIMENSION_TITLES = {
    Dimension.PROGRAM: _l("Program"),
    Dimension.ORGANIZATION: _l("Organization"),
    Dimension.CATEGORY: _l("Category"),
    Dimension.REFERRING_ORG: _l("Referring organization"),
    Dimension.ROLE: _l("Role of the referring person"),
    Dimension.ZIP: _l("ZIP code"),
    Dimension.WEEK: _l("Week"),
}


@dataclass(frozen=True)
class Filters:
    """Which referrals count. Dates are days in the city's time zone, both ends included."""

    start: date | None = None  # on the date sent
    end: date | None = None
    program_id: int | None = None
    organization_id: int | None = None  # the provider organization
    category: str | None = None  # a category code
    referring_org_id: int | None = None
    role: Role | str | None = None  # of the referring user in the referring organization
    zip: str | None = None  # the site's ZIP code (5 digits)
    week: date | None = None  # any day of a week: narrows the range to that week

    def days(self) -> tuple[date | None, date | None]:
        """The first and last day of the range (city time), either end open (None)."""
        start, end = self.start, self.end
        if self.week is not None:
            monday = self.week - timedelta(days=self.week.weekday())
            start = max(start, monday) if start else monday
            end = min(end, monday + timedelta(days=6)) if end else monday + timedelta(days=6)
        return start, end

    def bounds(self, tz: ZoneInfo) -> tuple[datetime | None, datetime | None]:
        """The range as UTC instants [low, high)."""
        start, end = self.days()
        low = start_of_day(start, tz) if start else None
        high = start_of_day(end + timedelta(days=1), tz) if end else None
        return low, high


def last_days(days: int = 30, today: date | None = None, **filters: Any) -> Filters:
    """Filters for the last `days` days up to today (city time)."""
    today = today or utcnow().astimezone(city_tz()).date()
    return Filters(start=today - timedelta(days=days - 1), end=today, **filters)


def start_of_day(day: date, tz: ZoneInfo) -> datetime:
    """Midnight at the start of a day in the city, as a UTC instant."""
    return datetime.combine(day, time(0), tz).astimezone(UTC)


# --- results -------------------------------------------------------------------------------


@dataclass(frozen=True)
class GroupMetrics:
    """Every referral metric for one group (or for everything, with key None)."""

    key: Any  # program id, organization id, category code, role, ZIP, Monday of the week
    label: str
    sent: int = 0
    accepted: int = 0
    accepted_in_target: int = 0
    declined: int = 0
    handed_off: int = 0
    no_show: int = 0
    escalated: int = 0
    completed: int = 0
    accept_hours_median: float | None = None
    accept_hours_p90: float | None = None
    handoff_hours_median: float | None = None
    rides_picked_up: int = 0  # outbound, with a planned window
    rides_on_time: int = 0

    @property
    def accepted_share(self) -> float | None:
        return _share(self.accepted, self.sent)

    @property
    def accepted_within_target_share(self) -> float | None:
        return _share(self.accepted_in_target, self.sent)

    @property
    def handoff_completion(self) -> float | None:
        return _share(self.handed_off, self.accepted)

    @property
    def no_show_share(self) -> float | None:
        return _share(self.no_show, self.accepted)

    @property
    def escalation_share(self) -> float | None:
        return _share(self.escalated, self.sent)

    @property
    def ride_on_time_share(self) -> float | None:
        return _share(self.rides_on_time, self.rides_picked_up)

    def value(self, metric: str) -> float | None:
        """The value of a metric (a key of insights.definitions) for this group."""
        return getattr(self, _VALUE[metric])

    def sample(self, metric: str) -> int:
        """How many referrals (or rides) the value of this metric rests on."""
        return getattr(self, _SAMPLE[metric])


# metric key -> attribute of GroupMetrics holding its value, and the one holding its base.
_VALUE = {
    "referrals_sent": "sent",
    "accepted_share": "accepted_share",
    "accepted_within_target_share": "accepted_within_target_share",
    "accept_hours_median": "accept_hours_median",
    "accept_hours_p90": "accept_hours_p90",
    "handoff_completion": "handoff_completion",
    "handoff_hours_median": "handoff_hours_median",
    "no_show_share": "no_show_share",
    "ride_on_time_share": "ride_on_time_share",
    "escalations": "escalated",
    "escalation_share": "escalation_share",
}
_SAMPLE = {
    "referrals_sent": "sent",
    "accepted_share": "sent",
    "accepted_within_target_share": "sent",
    "accept_hours_median": "accepted",
    "accept_hours_p90": "accepted",
    "handoff_completion": "accepted",
    "handoff_hours_median": "handed_off",
    "no_show_share": "accepted",
    "ride_on_time_share": "rides_picked_up",
    "escalations": "sent",
    "escalation_share": "sent",
}


@dataclass(frozen=True)
class Breakdown:
    """One slice of a distribution (a decline reason, an outcome) within one group."""

    key: Any
    label: str
    code: str | None
    title: str
    count: int
    share: float  # of the group's total


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


# --- SQL building blocks -------------------------------------------------------------------


class hours_between(FunctionElement):
    """Hours from the first timestamp to the second, as a float, on every backend."""

    type = Float()
    inherit_cache = True
    name = "hours_between"


@compiles(hours_between)
def _hours_between_pg(element, compiler, **kw) -> str:
    start, end = (compiler.process(clause, **kw) for clause in element.clauses)
    # date_part is double precision; EXTRACT is numeric since PostgreSQL 14, and several
    # times slower over a dashboard's hundred thousand rows.
    return f"(date_part('epoch', {end} - {start}) / 3600.0)"


@compiles(hours_between, "sqlite")
def _hours_between_sqlite(element, compiler, **kw) -> str:
    start, end = (compiler.process(clause, **kw) for clause in element.clauses)
    # Whole seconds: exact, where julianday's floating days would blur ties.
    seconds = "CAST(strftime('%s', {}) AS INTEGER)"
    return f"(({seconds.format(end)} - {seconds.format(start)}) / 3600.0)"


def _dialect() -> str:
    return db.session.get_bind().dialect.name


def _week_start(column, low: datetime | None, high: datetime | None):
    """Monday of the week (city time) of a UTC timestamp column, as a date."""
    tz = city_tz()
    if _dialect() == "postgresql":
        return cast(func.date_trunc("week", func.timezone(tz.key, column)), Date)
    # SQLite: over the range _bounded gives whenever there are referrals.
    low = low or utcnow()
    local = sqlite_local(column, low, high or low)
    return type_coerce(func.date(local, "weekday 0", "-6 days"), Date())


def _bounded(filters: Filters, by: Dimension | None) -> Filters:
    """Weeks on SQLite need a finite range: fill open ends from the first and last referral."""
    if by is not Dimension.WEEK or _dialect() == "postgresql" or filters.week is not None:
        return filters
    if filters.start is not None and filters.end is not None:
        return filters
    first, last = db.session.execute(
        select(func.min(Referral.sent_at), func.max(Referral.sent_at))
    ).one()
    if first is None:
        return filters
    tz = city_tz()
    return replace(
        filters,
        start=filters.start or first.astimezone(tz).date(),
        end=filters.end or last.astimezone(tz).date(),
    )


def _shared_grouping(by: Dimension | None, source) -> tuple[Any, Any, list] | None:
    """(key, label, joins) of a grouping that referrals and the daily tallies both hold;
    `source` is Referral or a tally model (they name these columns alike)."""
    label = literal(None, type_=Category.name.type)
    if by is None:
        return literal("all"), label, []
    if by is Dimension.PROGRAM:
        return source.program_id, Program.name, [(Program, Program.id == source.program_id)]
    if by in (Dimension.ORGANIZATION, Dimension.REFERRING_ORG):
        provider = by is Dimension.ORGANIZATION
        org = aliased(Organization, name="provider" if provider else "referring")
        column = source.provider_org_id if provider else source.referring_org_id
        return column, org.name, [(org, org.id == column)]
    if by is Dimension.CATEGORY:
        joins = [
            (program_categories, program_categories.c.program_id == source.program_id),
            (Category, Category.id == program_categories.c.category_id),
        ]
        return Category.code, Category.name, joins
    return None


def _shared_filters(filters: Filters, source) -> list:
    """The filters that referrals and the daily tallies both hold, over `source`."""
    clauses = []
    if filters.program_id is not None:
        clauses.append(source.program_id == filters.program_id)
    if filters.organization_id is not None:
        clauses.append(source.provider_org_id == filters.organization_id)
    if filters.referring_org_id is not None:
        clauses.append(source.referring_org_id == filters.referring_org_id)
    if filters.category is not None:
        clauses.append(source.program_id.in_(_category_programs(filters.category)))
    return clauses


def _select(
    filters: Filters,
    by: Dimension | None,
    columns: list,
    *,
    group: bool = True,
    program: bool = False,
) -> Select:
    """SELECT key, label, columns FROM referrals, filtered.

    `key` and `label` identify the group; label is NULL where Python names the group.
    """
    low, high = filters.bounds(city_tz())
    need_site = filters.zip is not None or by is Dimension.ZIP
    label = literal(None, type_=Category.name.type)
    joins: list[tuple[Any, Any, bool]] = []
    shared = _shared_grouping(by, Referral)
    if shared is not None:
        key, label, inner = shared
        joins += [(target, on, False) for target, on in inner]
        program = program and by is not Dimension.PROGRAM  # joined once, as the grouping
    elif by is Dimension.ROLE:
        key = Membership.role
        joins.append(
            (
                Membership,
                and_(
                    Membership.user_id == Referral.referring_user_id,
                    Membership.organization_id == Referral.referring_org_id,
                ),
                True,
            )
        )
    elif by is Dimension.ZIP:
        key = func.substr(Site.postal_code, 1, 5)
    else:
        key = _week_start(Referral.sent_at, low, high)

    stmt = select(key.label("key"), label.label("label"), *columns).select_from(Referral)
    if program:
        stmt = stmt.join(Program, Program.id == Referral.program_id)
    if need_site:
        stmt = stmt.outerjoin(Site, Site.id == Referral.site_id)
    for target, on, outer in joins:
        stmt = stmt.join(target, on, isouter=outer)

    stmt = stmt.where(Referral.sent_at.is_not(None), Referral.status != Status.ENTERED_IN_ERROR)
    if low is not None:
        stmt = stmt.where(Referral.sent_at >= low)
    if high is not None:
        stmt = stmt.where(Referral.sent_at < high)
    stmt = stmt.where(*_shared_filters(filters, Referral))
    if filters.role is not None:
        member = aliased(Membership, name="referring_member")
        stmt = stmt.where(
            exists().where(
                member.user_id == Referral.referring_user_id,
                member.organization_id == Referral.referring_org_id,
                member.role == Role(filters.role),
            )
        )
    if filters.zip is not None:
        stmt = stmt.where(func.substr(Site.postal_code, 1, 5) == filters.zip)
    if group:
        stmt = stmt.group_by(key, label) if by is not None else stmt.group_by(key)
    return stmt


# Groupings and filters the daily tallies can answer: their rows carry the day, program,
# provider and referring organization. A role or a ZIP code is read from the referrals.
_TALLY_DIMENSIONS = frozenset(
    {
        None,
        Dimension.PROGRAM,
        Dimension.ORGANIZATION,
        Dimension.CATEGORY,
        Dimension.REFERRING_ORG,
        Dimension.WEEK,
    }
)


def _tallied(filters: Filters, by: Dimension | None) -> bool:
    return by in _TALLY_DIMENSIONS and filters.role is None and filters.zip is None


def _tally_select(filters: Filters, by: Dimension | None, table, columns: list) -> Select:
    """SELECT key, label, columns FROM a table of daily tallies, filtered: the counterpart
    of _select for what the tallies hold (see _tallied)."""
    shared = _shared_grouping(by, table)
    if shared is not None:
        key, label, stmt_joins = shared
    else:  # the week
        label, stmt_joins = literal(None, type_=Category.name.type), []
        if _dialect() == "postgresql":
            key = cast(func.date_trunc("week", table.day), Date)
        else:
            key = type_coerce(func.date(table.day, "weekday 0", "-6 days"), Date())
    stmt = select(key.label("key"), label.label("label"), *columns).select_from(table)
    for target, on in stmt_joins:
        stmt = stmt.join(target, on)
    first, last = filters.days()
    if first is not None:
        stmt = stmt.where(table.day >= first)
    if last is not None:
        stmt = stmt.where(table.day <= last)
    stmt = stmt.where(*_shared_filters(filters, table))
    return stmt.group_by(key, label) if by is not None else stmt.group_by(key)


def _category_programs(code: str) -> Select:
    return (
        select(program_categories.c.program_id)
        .join(Category, Category.id == program_categories.c.category_id)
        .where(Category.code == code)
    )


def _percentiles(base: Select, wanted: dict[str, float]) -> dict[Any, dict[str, float]]:
    """Per key, continuous percentiles of the column `value`, for backends without
    percentile_cont (SQLite): row numbers over a window, then the two rows around each
    position, in one query.

    `base` selects `key` and `value` for every row, NULL values already left out.
    """
    rows = base.subquery("observations")
    ranked = select(
        rows.c.key,
        rows.c.value,
        (func.row_number().over(partition_by=rows.c.key, order_by=rows.c.value) - 1).label("rn"),
        func.count().over(partition_by=rows.c.key).label("n"),
    ).subquery("ranked")
    columns = []
    for name, p in wanted.items():
        # Linear interpolation between the rows around position p * (n - 1), exactly as
        # percentile_cont; CAST truncates, and positions are never negative.
        position = p * (ranked.c.n - 1)
        low = cast(position, Integer)
        fraction = position - low
        columns.append(
            func.sum(
                case(
                    (ranked.c.rn == low, ranked.c.value * (1 - fraction)),
                    (ranked.c.rn == low + 1, ranked.c.value * fraction),
                    else_=0.0,
                )
            ).label(name)
        )
    stmt = select(ranked.c.key, *columns).group_by(ranked.c.key)
    return {
        row.key: {name: float(getattr(row, name)) for name in wanted}
        for row in db.session.execute(stmt)
    }


# --- public functions ----------------------------------------------------------------------

_ACCEPT_METRICS = frozenset({"accept_hours_median", "accept_hours_p90"})
_HANDOFF_METRICS = frozenset({"handoff_hours_median"})
_RIDE_METRICS = frozenset({"ride_on_time_share"})
_TIMED_METRICS = _ACCEPT_METRICS | _HANDOFF_METRICS | {"accepted_within_target_share"}


def summary(
    filters: Filters | None = None,
    by: Dimension | None = None,
    *,
    within_hours: int | None = None,
    metrics: set[str] | frozenset[str] | None = None,
) -> list[GroupMetrics]:
    """Every referral metric per group (one row with key None when `by` is None).

    `within_hours` replaces each program's response target in "accepted within target";
    `metrics` (keys of insights.definitions) skips the work the caller does not need.
    """
    return summaries(filters, [by], within_hours=within_hours, metrics=metrics)[by]


def summaries(
    filters: Filters | None,
    groupings: Sequence[Dimension | None],
    *,
    within_hours: int | None = None,
    metrics: set[str] | frozenset[str] | None = None,
) -> dict[Dimension | None, list[GroupMetrics]]:
    """summary() for several groupings of the same referrals, with fewer queries.

    Counts come from the daily tallies where they can answer (insights.tallies), else from
    the referrals; durations and "accepted within target" from the accepted referrals. On
    PostgreSQL everything and everyone's percentiles come from one scan per grouping, and
    the durations of the whole and per program from a single GROUPING SETS scan; SQLite,
    without percentile_cont, takes one more query per duration and grouping.
    """
    filters = filters or Filters()
    wanted = set(metrics) if metrics is not None else set(_VALUE)
    plan = _Plan(wanted, within_hours, _dialect() == "postgresql")
    found: dict[Dimension | None, list[GroupMetrics]] = {}
    groups: dict[Dimension | None, dict[Any, dict[str, Any]]] = {}
    timed: list[Dimension | None] = []
    for by in dict.fromkeys(groupings):
        bounded = _bounded(filters, by)
        if _tallied(bounded, by):
            groups[by] = plan.tallies(bounded, by)
            if wanted & _TIMED_METRICS:
                timed.append(by)
        else:
            groups[by] = plan.counts(bounded, by)
    shared = [by for by in timed if by in (None, Dimension.PROGRAM)] if plan.postgres else []
    if len(shared) == 2 and groups[None] and groups[Dimension.PROGRAM]:
        plan.timing_sets(filters, groups[None], groups[Dimension.PROGRAM])
        timed = [by for by in timed if by not in shared]
    for by in timed:
        if groups[by]:
            plan.timing(_bounded(filters, by), by, groups[by])
    for by, values in groups.items():
        if not plan.postgres and values:
            plan.sqlite_percentiles(_bounded(filters, by), by, values)
        if not values:
            found[by] = [_empty()] if by is None else []
            continue
        found[by] = _ordered(
            by,
            [
                GroupMetrics(
                    **{
                        **{k: v for k, v in row.items() if k != "key"},
                        "key": _key(by, key),
                        "label": _label(by, key, row["label"]),
                    }
                )
                for key, row in values.items()
            ],
        )
    return found


class _Plan:
    """The columns and queries of summaries() for one set of wanted metrics."""

    def __init__(self, wanted: set[str], within_hours: int | None, postgres: bool) -> None:
        self.wanted, self.within_hours, self.postgres = wanted, within_hours, postgres
        target_hours = (
            literal(within_hours) if within_hours is not None else Program.response_target_hours
        )
        to_accept = hours_between(Referral.sent_at, Referral.accepted_at)
        # (hours, the timestamp that must be set, {field: percentile})
        self.percentiles = []
        if wanted & _ACCEPT_METRICS:
            self.percentiles.append(
                (
                    to_accept,
                    Referral.accepted_at,
                    {"accept_hours_median": 0.5, "accept_hours_p90": 0.9},
                )
            )
        if wanted & _HANDOFF_METRICS:
            self.percentiles.append(
                (
                    hours_between(Referral.sent_at, Referral.handed_off_at),
                    Referral.handed_off_at,
                    {"handoff_hours_median": 0.5},
                )
            )
        self.timed_columns = [
            func.count(case((to_accept <= target_hours, 1))).label("accepted_in_target")
        ]
        self.spread: list[tuple[str, list[str]]] = []  # (column, its percentiles, in order)
        if postgres:
            # Ordered-set aggregates skip NULLs; all the percentiles of one duration come
            # from a single sort (an array of fractions).
            for n, (hours, _set, wanted_ps) in enumerate(self.percentiles):
                names = list(wanted_ps)
                fractions = postgresql.array([literal(wanted_ps[name]) for name in names])
                self.timed_columns.append(
                    func.percentile_cont(fractions).within_group(hours).label(f"pct{n}")
                )
                self.spread.append((f"pct{n}", names))

    def tallies(self, filters: Filters, by: Dimension | None) -> dict[Any, dict[str, Any]]:
        t = ReferralDayTally
        names = list(_TALLIED_COUNTS)
        if self.wanted & _RIDE_METRICS:
            names += ["rides_picked_up", "rides_on_time"]
        counted = [func.sum(getattr(t, name)).label(name) for name in names]
        return {
            row.key: {
                name: value if name in ("key", "label") else int(value or 0)
                for name, value in row._mapping.items()
            }
            for row in db.session.execute(_tally_select(filters, by, t, counted))
        }

    def counts(self, filters: Filters, by: Dimension | None) -> dict[Any, dict[str, Any]]:
        """Everything from the referrals themselves, in one scan (a role, a ZIP code)."""
        status = Referral.status
        columns = [
            func.count().label("sent"),
            func.count(Referral.accepted_at).label("accepted"),
            func.count(case((status == Status.DECLINED, 1))).label("declined"),
            func.count(Referral.handed_off_at).label("handed_off"),
            func.count(case((status == Status.NO_SHOW, 1))).label("no_show"),
            func.count(Referral.escalated_at).label("escalated"),
            func.count(case((status == Status.COMPLETED, 1))).label("completed"),
            *self.timed_columns,
        ]
        ride_counts = tallies.ride_counts() if self.wanted & _RIDE_METRICS else None
        if ride_counts is not None:
            columns += [
                cast(func.coalesce(func.sum(c), 0), Integer).label(name)
                for name, c in (
                    ("rides_picked_up", ride_counts.c.picked_up),
                    ("rides_on_time", ride_counts.c.on_time),
                )
            ]
        stmt = _select(filters, by, columns, program=self.within_hours is None)
        if ride_counts is not None:
            stmt = stmt.outerjoin(ride_counts, ride_counts.c.referral_id == Referral.id)
        return {row.key: _spread(row, self.spread) for row in db.session.execute(stmt)}

    def _timed(self, filters: Filters, by: Dimension | None, group: bool = True) -> Select:
        # Durations and the share within target rest on accepted referrals only (the
        # lifecycle hands off accepted referrals only): ix_referrals_accepted_sent_at.
        return _select(
            filters, by, self.timed_columns, program=self.within_hours is None, group=group
        ).where(Referral.accepted_at.is_not(None))

    def timing(self, filters: Filters, by: Dimension | None, groups: dict) -> None:
        for row in db.session.execute(self._timed(filters, by)):
            if row.key in groups:
                groups[row.key].update(_spread(row, self.spread))

    def timing_sets(self, filters: Filters, whole: dict, per_program: dict) -> None:
        """PostgreSQL: the durations of everything and of each program in one scan."""
        stmt = (
            self._timed(filters, None, group=False)
            .with_only_columns(
                Referral.program_id.label("key"),
                func.grouping(Referral.program_id).label("whole"),
                *self.timed_columns,
            )
            .group_by(func.grouping_sets(tuple_(), tuple_(Referral.program_id)))
        )
        for row in db.session.execute(stmt):
            values = _spread(row, self.spread)
            del values["whole"]
            target = whole.get("all") if row.whole else per_program.get(row.key)
            if target is not None:
                target.update(values)

    def sqlite_percentiles(self, filters: Filters, by: Dimension | None, groups: dict) -> None:
        for hours, required, wanted_ps in self.percentiles:
            found = _percentiles(
                _select(filters, by, [hours.label("value")], group=False).where(
                    required.is_not(None)
                ),
                wanted_ps,
            )
            for key, values in found.items():
                if key in groups:
                    groups[key].update(values)


_TALLIED_COUNTS = tuple(name for name in tallies.TALLIED if not name.startswith("rides_"))


def _spread(row, spread: list[tuple[str, list[str]]]) -> dict[str, Any]:
    """A result row as a dict, each array of percentiles spread over its fields."""
    values = dict(row._mapping)
    for column, names in spread:
        found = values.pop(column) or [None] * len(names)
        values.update(zip(names, found, strict=True))
    return values


def overall(filters: Filters | None = None, **kwargs: Any) -> GroupMetrics:
    """Every referral metric over all the filtered referrals."""
    return summary(filters, None, **kwargs)[0]


def decline_reasons(filters: Filters | None = None, by: Dimension | None = None) -> list[Breakdown]:
    """Declined referrals per group and reason, with each reason's share of the group."""
    return _breakdown(filters or Filters(), by, Status.DECLINED, Referral.reason_code)


def outcomes(filters: Filters | None = None, by: Dimension | None = None) -> list[Breakdown]:
    """Completed referrals per group and recorded outcome, with each one's share."""
    return _breakdown(filters or Filters(), by, Status.COMPLETED, Referral.outcome)


def _breakdown(filters: Filters, by: Dimension | None, status: Status, column) -> list[Breakdown]:
    filters = _bounded(filters, by)
    if _tallied(filters, by):
        c = ReferralDayCode
        counted = (
            _tally_select(filters, by, c, [c.code.label("code"), func.sum(c.count).label("count")])
            .where(c.status == status.value)
            .group_by(c.code)
            .subquery("counted")
        )
    else:
        counted = (
            _select(filters, by, [column.label("code"), func.count().label("count")])
            .where(Referral.status == status)
            .group_by(column)
            .subquery("counted")
        )
    stmt = select(
        counted,
        # PostgreSQL sums integers as numeric: back to an integer.
        cast(func.sum(counted.c.count).over(partition_by=counted.c.key), Integer).label("total"),
    )
    rows = [
        Breakdown(
            key=_key(by, row.key),
            label=_label(by, row.key, row.label),
            code=row.code,
            title=str(REASON_TITLES.get(row.code, row.code or _("Not given"))),
            count=int(row.count),
            share=row.count / row.total,
        )
        for row in db.session.execute(stmt)
    ]
    # Groups in their order; within a group, the most frequent first (sorting is stable).
    return _ordered(by, sorted(rows, key=lambda r: (-r.count, r.code or "")))


@dataclass(frozen=True)
class GoalProgress:
    goal_id: int
    metric: str
    comparator: Comparator
    target: float
    value: float | None  # None: nothing to measure yet
    sample: int  # referrals (or rides) the value rests on
    met: bool | None


def goal_progress(goal: Goal, filters: Filters | None = None) -> GoalProgress:
    """Where a goal stands over a period (default: the last 30 days) within its scope."""
    scope = replace(
        filters or last_days(30),
        program_id=goal.program_id,
        category=goal.category,
    )
    row = overall(scope, within_hours=goal.within_hours, metrics={goal.metric})
    value = row.value(goal.metric)
    met = None if value is None else goal.comparator.holds(value, goal.target)
    return GoalProgress(
        goal_id=goal.id,
        metric=goal.metric,
        comparator=goal.comparator,
        target=goal.target,
        value=value,
        sample=row.sample(goal.metric),
        met=met,
    )


def metric_keys() -> list[str]:
    """Keys of the metrics a GroupMetrics row carries (the goal-able ones)."""
    return [key for key in DEFINITIONS if key in _VALUE]


# --- labels and order ----------------------------------------------------------------------


def _empty() -> GroupMetrics:
    return GroupMetrics(key=None, label=_("All referrals"))


def _key(by: Dimension | None, key: Any) -> Any:
    if by is None:
        return None
    if by is Dimension.ROLE and key is not None:
        return Role(key)
    if by is Dimension.WEEK and isinstance(key, datetime):
        return key.date()
    return key


def _label(by: Dimension | None, key: Any, label: str | None) -> str:
    if by is None:
        return _("All referrals")
    if label is not None:
        return label
    if by is Dimension.ROLE:
        return Role(key).title if key is not None else _("Unknown role")
    if by is Dimension.ZIP:
        return key or _("No site given")
    if by is Dimension.WEEK:
        return _key(by, key).isoformat()
    return str(key)


def _ordered(by: Dimension | None, rows: list) -> list:
    if by is Dimension.WEEK:
        return sorted(rows, key=lambda r: r.key)
    return sorted(rows, key=lambda r: (r.key is None, r.label.casefold(), str(r.key)))
