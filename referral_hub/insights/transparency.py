"""Public transparency: referral activity and performance by category, program and month.

Everything is counted in the database; only aggregates leave it, and every count passes
small-cell suppression (insights.suppression) before it leaves this module. The report
never holds a client, a referral or a person: the finest cell is one program in one period.

Reporting rules, also stated on the page:

* A referral counts in the month it was sent (city time zone); referrals entered in error
  are left out. Accepted, handed off and completed count what happened since, so they are
  nested: sent >= accepted >= handed off >= completed.
* Each program is reported under one category, so categories add up to the total: a
  sensitive category (victim services, diversion) if it has one, else the first of its
  categories by code.
* Sensitive programs are never named: a category's sensitive programs are reported together
  as one line, or, when the category has nothing else, only in the category's own line.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from flask_babel import lazy_gettext as _l
from sqlalchemy import ColumnElement, and_, case, func, select

from referral_hub.accounts.models import Organization
from referral_hub.core.db import utcnow
from referral_hub.directory.models import Category, Program, program_categories
from referral_hub.directory.operations import SENSITIVE_CATEGORIES
from referral_hub.extensions import db
from referral_hub.insights.suppression import (
    AtLeast,
    Mark,
    Published,
    Relation,
    exposed,
    publish,
    suppress,
)
from referral_hub.matching.questions import CATEGORY_OPTIONS
from referral_hub.referrals.models import Referral, Status

# The nested counts, in funnel order (each one is at most the one before it).
COUNTS = ("referrals_sent", "accepted", "handed_off", "completed")
DEFAULT_MONTHS = 12
MAX_MONTHS = 36
# A median is published only over at least this many accepted referrals (the same floor
# as a count: a median of a few values says too much about each of them).
MEDIAN_MIN_COUNT = 11
ALL = "all"
SENSITIVE_GROUP = "not-named"
CATEGORY_LABELS = {o.value: o.label for o in CATEGORY_OPTIONS}


# -- metric definitions --------------------------------------------------------------------


@dataclass(frozen=True)
class MetricDefinition:
    key: str
    title: object
    definition: object
    unit: str  # "count", "share" (a fraction from 0 to 1) or "hours"
    version: int = 1


PUBLIC_METRICS: tuple[MetricDefinition, ...] = (
    MetricDefinition(
        "referrals_sent",
        _l("Referrals sent"),
        _l("Referrals a responder sent to a program in the period."),
        "count",
    ),
    MetricDefinition(
        "accepted",
        _l("Accepted"),
        _l("Of the referrals sent in the period, those the program has accepted."),
        "count",
    ),
    MetricDefinition(
        "handed_off",
        _l("Received in person"),
        _l(
            "Of the referrals sent in the period, those where the program confirmed it "
            "received the person in person (the warm handoff)."
        ),
        "count",
    ),
    MetricDefinition(
        "completed",
        _l("Completed"),
        _l(
            "Of the referrals sent in the period, those received in person for which the "
            "program has recorded an outcome."
        ),
        "count",
    ),
    MetricDefinition(
        "accepted_share",
        _l("Accepted share"),
        _l(
            "Accepted divided by referrals sent. Referrals still waiting for an answer count "
            "as not accepted."
        ),
        "share",
    ),
    MetricDefinition(
        "handoff_completion",
        _l("Handoff completion"),
        _l("Referrals received in person divided by referrals accepted."),
        "share",
    ),
    MetricDefinition(
        "accept_hours_median",
        _l("Median hours to accept"),
        _l(
            "Half of the accepted referrals were accepted within this many hours of being "
            "sent (hours on the clock, nights and weekends included). Published only over "
            "at least 11 accepted referrals."
        ),
        "hours",
    ),
)


def metric_definitions() -> tuple[MetricDefinition, ...]:
    """The definitions published beside the figures and in the downloads.

    The seam for insights.definitions: once it holds these keys, return its entries here
    (same key, title, definition, unit, version) so the public page and the dashboards
    read one text.
    """
    return PUBLIC_METRICS


# -- the period ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    """Whole calendar months, `start` to `end` inclusive (both the first of a month)."""

    start: date
    end: date

    @property
    def months(self) -> list[date]:
        months, month = [], self.start
        while month <= self.end:
            months.append(month)
            month = _next_month(month)
        return months

    @property
    def label(self) -> str:
        return f"{month_code(self.start)}/{month_code(self.end)}"


def month_code(month: date) -> str:
    return f"{month.year:04d}-{month.month:02d}"


def parse_month(text: str) -> date:
    """'2025-03' -> date(2025, 3, 1); ValueError otherwise."""
    year, _sep, month = text.strip().partition("-")
    if len(year) != 4 or len(month) != 2:
        raise ValueError(text)
    return date(int(year), int(month), 1)


def default_period(today: date) -> Period:
    """The last twelve months, this month included."""
    end = today.replace(day=1)
    return Period(_add_months(end, 1 - DEFAULT_MONTHS), end)


def selectable_months(today: date) -> list[date]:
    """Months a reader may choose, newest first."""
    end = today.replace(day=1)
    return [_add_months(end, -n) for n in range(MAX_MONTHS * 2)]


def parse_period(start: str | None, end: str | None, today: date) -> Period:
    """The period a reader asked for; ValueError (with a message key) when it is not valid."""
    fallback = default_period(today)
    try:
        first = parse_month(start) if start else fallback.start
        last = parse_month(end) if end else fallback.end
    except ValueError:
        raise ValueError("format") from None
    this_month = today.replace(day=1)
    if last > this_month:
        last = this_month
    if first > last:
        raise ValueError("order")
    if len(Period(first, last).months) > MAX_MONTHS:
        raise ValueError("length")
    if first < _add_months(this_month, 1 - MAX_MONTHS * 2):
        raise ValueError("range")
    return Period(first, last)


def _next_month(month: date) -> date:
    return _add_months(month, 1)


def _add_months(month: date, n: int) -> date:
    index = month.year * 12 + month.month - 1 + n
    return date(index // 12, index % 12 + 1, 1)


def _month_starts_utc(period: Period, tz: ZoneInfo) -> list[datetime]:
    """Where each month begins, in UTC, plus where the last one ends."""
    starts = [*period.months, _next_month(period.end)]
    return [datetime(m.year, m.month, 1, tzinfo=tz).astimezone(UTC) for m in starts]


# -- the report ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Line:
    """One published line: a category, a program (or a category's unnamed programs), a
    month, or everything. Counts are already suppressed."""

    table: str  # "summary" | "by_category" | "by_program" | "by_month"
    category_code: str
    category: str
    counts: Mapping[str, Published]
    program: str | None = None
    program_slug: str | None = None
    provider: str | None = None
    month: str | None = None
    accept_hours_median: float | None = None
    not_named: bool = False

    @property
    def accepted_share(self) -> float | None:
        return _share(self.counts["accepted"], self.counts["referrals_sent"])

    @property
    def handoff_completion(self) -> float | None:
        return _share(self.counts["handed_off"], self.counts["accepted"])


@dataclass
class Report:
    period: Period
    time_zone: str
    generated_at: datetime
    summary: Line
    categories: list[Line]
    programs: dict[str, list[Line]]  # by category code
    months: list[Line]  # every category together, one line per month
    category_months: list[Line]  # category x month

    def months_of(self, category_code: str) -> list[Line]:
        """One category's lines, month by month."""
        return [line for line in self.category_months if line.category_code == category_code]

    def lines(self) -> Iterable[Line]:
        """Every line, in the order the downloads list them."""
        yield self.summary
        yield from self.categories
        for category in self.categories:
            yield from self.programs.get(category.category_code, [])
        yield from self.months
        yield from self.category_months


def _share(numerator: Published, denominator: Published) -> float | None:
    """A share only from shown counts: it then reveals nothing the counts do not."""
    if numerator.hidden or denominator.hidden or not denominator.value:
        return None
    return numerator.value / denominator.value


@dataclass(frozen=True)
class _Group:
    """A line of the program table: one named program, or a category's sensitive ones."""

    key: str
    category: str
    name: str | None
    slug: str | None
    provider: str | None
    program_ids: tuple[int, ...]
    active: bool


def reporting_category(codes: Iterable[str]) -> str:
    """The one category a program is reported under: sensitive first, then by code."""
    ordered = sorted(codes)
    sensitive = [code for code in ordered if code in SENSITIVE_CATEGORIES]
    return (sensitive or ordered or [""])[0]


def _groups() -> tuple[dict[str, str], list[_Group]]:
    """Categories (code -> name) and the program lines, from the directory."""
    category_rows = db.session.execute(
        select(program_categories.c.program_id, Category.code, Category.name).join(
            Category, Category.id == program_categories.c.category_id
        )
    ).all()
    codes: dict[int, list[str]] = defaultdict(list)
    names: dict[str, str] = {}
    for program_id, code, name in category_rows:
        codes[program_id].append(code)
        names[code] = name
    programs = db.session.execute(
        select(
            Program.id,
            Program.slug,
            Program.name,
            Program.sensitive,
            Program.is_active,
            Organization.name,
        )
        .join(Organization, Organization.id == Program.organization_id)
        .order_by(Program.name, Program.id)
    ).all()
    groups: list[_Group] = []
    hidden: dict[str, list[int]] = defaultdict(list)
    for program_id, slug, name, sensitive, active, provider in programs:
        category = reporting_category(codes.get(program_id, ()))
        if sensitive or category in SENSITIVE_CATEGORIES:
            hidden[category].append(program_id)
        else:
            groups.append(
                _Group(str(program_id), category, name, slug, provider, (program_id,), active)
            )
    for category, ids in hidden.items():
        groups.append(_Group(SENSITIVE_GROUP, category, None, None, None, tuple(ids), True))
    categories = {
        code: category_title(code, names.get(code)) for code in {g.category for g in groups}
    }
    return categories, groups


def category_title(code: str, stored: str | None = None) -> str:
    """A category's name in the reader's language when we have one."""
    if code in CATEGORY_LABELS:
        return str(CATEGORY_LABELS[code])
    if not code:
        return str(_l("Programs without a category"))
    return stored or code


def _count_rows(period: Period, tz: ZoneInfo) -> dict[tuple[int, int], dict[str, int]]:
    """(program id, month index) -> the nested counts, computed in the database."""
    bounds = _month_starts_utc(period, tz)
    month = case(
        *[(Referral.sent_at < bound, index) for index, bound in enumerate(bounds[1:])],
        else_=len(bounds) - 1,
    )
    accepted = Referral.accepted_at.is_not(None)
    handed_off = and_(accepted, Referral.handed_off_at.is_not(None))
    completed = and_(handed_off, Referral.status == Status.COMPLETED)
    flags = (
        select(
            Referral.program_id.label("program_id"),
            month.label("month"),
            case((accepted, 1), else_=0).label("accepted"),
            case((handed_off, 1), else_=0).label("handed_off"),
            case((completed, 1), else_=0).label("completed"),
        )
        .where(
            Referral.sent_at >= bounds[0],
            Referral.sent_at < bounds[-1],
            Referral.status != Status.ENTERED_IN_ERROR,
        )
        .subquery()
    )
    rows = db.session.execute(
        select(
            flags.c.program_id,
            flags.c.month,
            func.count().label("referrals_sent"),
            func.sum(flags.c.accepted),
            func.sum(flags.c.handed_off),
            func.sum(flags.c.completed),
        ).group_by(flags.c.program_id, flags.c.month)
    ).all()
    return {
        (program_id, index): dict(zip(COUNTS, (int(v or 0) for v in counts), strict=True))
        for program_id, index, *counts in rows
    }


def _hours_between(start: ColumnElement, end: ColumnElement) -> ColumnElement:
    """Hours from start to end, on SQLite and PostgreSQL."""
    if db.session.get_bind().dialect.name == "sqlite":
        return (func.julianday(end) - func.julianday(start)) * 24.0
    return func.extract("epoch", end - start) / 3600.0


def _medians(period: Period, tz: ZoneInfo, group_of: Mapping[int, Hashable]) -> dict:
    """Median hours from sent to accepted per group of programs, computed in the database.

    `group_of` maps program ids to any group key; groups with fewer than MEDIAN_MIN_COUNT
    accepted referrals are left out of the answer.
    """
    if not group_of:
        return {}
    bounds = _month_starts_utc(period, tz)
    keys = list(dict.fromkeys(group_of.values()))
    index_of = {key: n for n, key in enumerate(keys)}
    by_group: dict[int, list[int]] = defaultdict(list)
    for program_id, key in group_of.items():
        by_group[index_of[key]].append(program_id)
    group = case(*[(Referral.program_id.in_(ids), n) for n, ids in by_group.items()], else_=-1)
    hours = _hours_between(Referral.sent_at, Referral.accepted_at)
    ranked = (
        select(
            group.label("grp"),
            hours.label("hours"),
            func.row_number().over(partition_by=group, order_by=hours).label("rn"),
            func.count().over(partition_by=group).label("n"),
        )
        .where(
            Referral.sent_at >= bounds[0],
            Referral.sent_at < bounds[-1],
            Referral.status != Status.ENTERED_IN_ERROR,
            Referral.accepted_at.is_not(None),
            Referral.program_id.in_(list(group_of)),
        )
        .subquery()
    )
    # The middle row (odd n) or the two middle rows (even n): 2 * rn between n and n + 2.
    rows = db.session.execute(
        select(ranked.c.grp, func.avg(ranked.c.hours))
        .where(
            ranked.c.n >= MEDIAN_MIN_COUNT,
            ranked.c.rn * 2 >= ranked.c.n,
            ranked.c.rn * 2 <= ranked.c.n + 2,
        )
        .group_by(ranked.c.grp)
    ).all()
    return {
        keys[grp]: max(0.0, float(value))
        for grp, value in rows
        if value is not None and 0 <= grp < len(keys)
    }


def build_report(period: Period, time_zone: str, now: datetime | None = None) -> Report:
    """The suppressed public report for a period."""
    tz = ZoneInfo(time_zone)
    categories, groups = _groups()
    counts = _count_rows(period, tz)
    n_months = len(period.months)

    # True counts of every published cell, per measure; they stay inside this function.
    per_group: dict[tuple[str, str], dict[str, int]] = {}
    per_category_month: dict[tuple[str, int], dict[str, int]] = defaultdict(_zeros)
    for g in groups:
        totals = _zeros()
        for program_id in g.program_ids:
            for index in range(n_months):
                row = counts.get((program_id, index))
                if row:
                    _add(totals, row)
                    _add(per_category_month[(g.category, index)], row)
        per_group[(g.category, g.key)] = totals
    listed = [g for g in groups if g.active or per_group[(g.category, g.key)]["referrals_sent"]]
    used = sorted({g.category for g in listed}, key=lambda code: (categories[code], code))

    by_category = {g.category: [] for g in listed}
    for g in listed:
        by_category[g.category].append(g)
    values, relations, orders = _layout(used, by_category, per_group, per_category_month, n_months)
    marks = suppress(values, relations, orders)
    if exposed(marks, relations):  # suppress() guarantees this; never publish otherwise
        raise RuntimeError("suppression left a hidden count exposed")
    cells = publish(values, marks)
    del values  # nothing below may read a true count

    def line_counts(*key: object) -> dict[str, Published]:
        return {measure: cells[(measure, *key)] for measure in COUNTS}

    def median(value: float | None, published: Mapping[str, Published]) -> float | None:
        accepted = published["accepted"]
        if value is None or accepted.mark is not Mark.SHOWN:
            return None
        return value if (accepted.value or 0) >= MEDIAN_MIN_COUNT else None

    group_medians = _medians(
        period,
        tz,
        {pid: (g.category, g.key) for g in listed for pid in g.program_ids},
    )
    category_medians = _medians(
        period, tz, {pid: g.category for g in listed for pid in g.program_ids}
    )
    overall = _medians(period, tz, {pid: ALL for g in listed for pid in g.program_ids})

    summary_counts = line_counts(ALL)
    summary = Line(
        "summary",
        ALL,
        str(_l("All categories")),
        summary_counts,
        accept_hours_median=median(overall.get(ALL), summary_counts),
    )
    category_lines, program_lines = [], {}
    for code in used:
        published = line_counts("cat", code)
        category_lines.append(
            Line(
                "by_category",
                code,
                categories[code],
                published,
                accept_hours_median=median(category_medians.get(code), published),
            )
        )
        members = by_category[code]
        if not _program_table(members):
            continue
        ordered = sorted(members, key=lambda g: (g.key == SENSITIVE_GROUP, g.name or "", g.key))
        program_lines[code] = []
        for g in ordered:
            published = line_counts("group", code, g.key)
            program_lines[code].append(
                Line(
                    "by_program",
                    code,
                    categories[code],
                    published,
                    program=g.name,
                    program_slug=g.slug,
                    provider=g.provider,
                    accept_hours_median=median(group_medians.get((code, g.key)), published),
                    not_named=g.key == SENSITIVE_GROUP,
                )
            )
    month_lines = [
        Line("by_month", ALL, str(_l("All categories")), line_counts("month", index), month=m)
        for index, m in enumerate(month_code(m) for m in period.months)
    ]
    category_month_lines = [
        Line(
            "by_month",
            code,
            categories[code],
            line_counts("cm", code, index),
            month=month_code(m),
        )
        for code in used
        for index, m in enumerate(period.months)
    ]
    return Report(
        period=period,
        time_zone=time_zone,
        generated_at=now or utcnow(),
        summary=summary,
        categories=category_lines,
        programs=program_lines,
        months=month_lines,
        category_months=category_month_lines,
    )


def _layout(
    used: Sequence[str],
    by_category: Mapping[str, Sequence[_Group]],
    per_group: Mapping[tuple[str, str], Mapping[str, int]],
    per_category_month: Mapping[tuple[str, int], Mapping[str, int]],
    n_months: int,
) -> tuple[dict[tuple, int], list[Relation], list[AtLeast]]:
    """Every published cell with its true count, the sums a reader can check, the orders.

    Keys are (measure, "cat", code), (measure, "group", code, line), (measure, "cm", code,
    month), (measure, "month", month) and (measure, "all").
    """
    values: dict[tuple, int] = {}
    relations: list[Relation] = []
    orders: list[AtLeast] = []
    for measure in COUNTS:
        for code in used:
            members = by_category[code]
            values[(measure, "cat", code)] = sum(per_group[(code, g.key)][measure] for g in members)
            for index in range(n_months):
                values[(measure, "cm", code, index)] = per_category_month[(code, index)][measure]
            relations.append(
                Relation(
                    (measure, "cat", code),
                    tuple((measure, "cm", code, index) for index in range(n_months)),
                )
            )
            # A program table only where it says more than the category line: not when the
            # category's only line is its unnamed sensitive programs.
            if _program_table(members):
                for g in members:
                    values[(measure, "group", code, g.key)] = per_group[(code, g.key)][measure]
                relations.append(
                    Relation(
                        (measure, "cat", code),
                        tuple((measure, "group", code, g.key) for g in members),
                    )
                )
        for index in range(n_months):
            values[(measure, "month", index)] = sum(
                values[(measure, "cm", code, index)] for code in used
            )
        values[(measure, ALL)] = sum(values[(measure, "cat", code)] for code in used)
        if used:
            relations.append(
                Relation((measure, ALL), tuple((measure, "cat", code) for code in used))
            )
            for index in range(n_months):
                relations.append(
                    Relation(
                        (measure, "month", index),
                        tuple((measure, "cm", code, index) for code in used),
                    )
                )
        relations.append(
            Relation((measure, ALL), tuple((measure, "month", index) for index in range(n_months)))
        )
    for key in values:
        if key[0] == COUNTS[0]:
            for larger, smaller in itertools.pairwise(COUNTS):
                orders.append(AtLeast((larger, *key[1:]), (smaller, *key[1:])))

    return values, relations, orders


def _program_table(members: Sequence[_Group]) -> bool:
    return any(g.key != SENSITIVE_GROUP for g in members)


def _zeros() -> dict[str, int]:
    return dict.fromkeys(COUNTS, 0)


def _add(into: dict[str, int], row: Mapping[str, int]) -> None:
    for measure in COUNTS:
        into[measure] += row[measure]


# -- open data -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Field:
    name: str
    kind: str
    description: object


DICTIONARY: tuple[Field, ...] = (
    Field(
        "table",
        "string",
        _l(
            "Which table the line belongs to: summary (everything), by_category, by_program "
            "or by_month."
        ),
    ),
    Field("period_start", "string", _l("First month of the period, as YYYY-MM.")),
    Field("period_end", "string", _l("Last month of the period, as YYYY-MM (included).")),
    Field(
        "category_code",
        "string",
        _l("The category's code, or 'all' for every category together."),
    ),
    Field("category", "string", _l("The category's name.")),
    Field(
        "program",
        "string",
        _l(
            "The program's name on by_program lines. Empty on the line that groups a "
            "category's sensitive programs (victim services, diversion), which are never "
            "named."
        ),
    ),
    Field("program_id", "string", _l("The program's identifier in the public directory.")),
    Field("provider", "string", _l("The organization that runs the program.")),
    Field("month", "string", _l("The month on by_month lines, as YYYY-MM.")),
    Field("referrals_sent", "count", _l("See the metric definition.")),
    Field("accepted", "count", _l("See the metric definition.")),
    Field("handed_off", "count", _l("See the metric definition.")),
    Field("completed", "count", _l("See the metric definition.")),
    Field(
        "accepted_share",
        "number",
        _l("From 0 to 1; empty when either count is hidden."),
    ),
    Field(
        "handoff_completion",
        "number",
        _l("From 0 to 1; empty when either count is hidden."),
    ),
    Field(
        "accept_hours_median",
        "number",
        _l("Hours, one decimal; empty under 11 accepted referrals or when hidden."),
    ),
)

COUNT_NOTE = _l(
    'A count is a whole number, or "<11" when it is from 1 to 10, or "*" when it is hidden '
    "so that a small count cannot be worked out from the totals (it may then be 0 or 11 "
    "and more)."
)


def suppression_rule() -> dict[str, str]:
    """The rule in words, for the page and the downloads."""
    return {
        "rule": str(
            _l(
                "Counts from 1 to 10 are never published. Where a hidden count could be "
                "worked out by subtracting the published counts from a published total, "
                "more counts are hidden too. Zero is published as 0."
            )
        ),
        "<11": str(_l("From 1 to 10.")),
        "*": str(_l("Hidden so that a small count cannot be worked out: 0, or 11 and more.")),
    }


def rows(report: Report) -> list[dict[str, object]]:
    """The report as flat records, the same for CSV and JSON."""
    records = []
    for line in report.lines():
        record: dict[str, object] = {
            "table": line.table,
            "period_start": month_code(report.period.start),
            "period_end": month_code(report.period.end),
            "category_code": line.category_code,
            "category": line.category,
            "program": line.program,
            "program_id": line.program_slug,
            "provider": line.provider,
            "month": line.month,
        }
        for measure in COUNTS:
            record[measure] = line.counts[measure].as_data()
        record["accepted_share"] = _round(line.accepted_share, 3)
        record["handoff_completion"] = _round(line.handoff_completion, 3)
        record["accept_hours_median"] = _round(line.accept_hours_median, 1)
        records.append(record)
    return records


def dictionary() -> dict[str, object]:
    """The data dictionary: fields, counts, suppression and metric definitions."""
    return {
        "fields": [
            {"name": f.name, "type": f.kind, "description": str(f.description)} for f in DICTIONARY
        ],
        "counts": str(COUNT_NOTE),
        "suppression": suppression_rule(),
        "metrics": [
            {
                "key": m.key,
                "title": str(m.title),
                "definition": str(m.definition),
                "unit": m.unit,
                "version": m.version,
            }
            for m in metric_definitions()
        ],
        "notes": [str(note) for note in REPORTING_NOTES],
    }


REPORTING_NOTES = (
    _l(
        "A referral counts in the month it was sent, in the city's time zone. Referrals "
        "entered in error are left out."
    ),
    _l(
        "Accepted, received in person and completed count what has happened so far to the "
        "referrals sent in the period; recent months keep growing."
    ),
    _l(
        "Each program is counted under one category, so the categories add up to the "
        "total: its victim services or diversion category if it has one, otherwise the "
        "first of its categories by code."
    ),
    _l(
        "Victim services, diversion and other sensitive programs are never named: they are "
        "reported together, one line per category."
    ),
)


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)
