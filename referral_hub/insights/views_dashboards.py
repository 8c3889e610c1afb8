"""Insights pages for staff: the dashboard for each audience, and each of its tables as CSV.

Routes join insights.bp (create_app imports this module); coverage gaps live in
views_coverage, goals and the monthly review in views_goals, which build on the tables
here. Numbers come from insights.metrics, insights.screenings and insights.goals; this
module chooses which tables each audience sees and lays the numbers out as tables and
charts. Each table is built by one function, so the page and its CSV download always hold
the same rows. Other roles get 404, as for anything they may not see.
"""

from __future__ import annotations

import csv
import enum
import io
import statistics
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from functools import cached_property
from typing import Any

from flask import Response, render_template, request, url_for
from flask_babel import format_date, format_decimal, format_percent, ngettext
from flask_babel import gettext as _
from flask_login import current_user, login_required
from markupsafe import Markup
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from referral_hub.accounts.models import Organization, Role
from referral_hub.core.db import city_tz, utcnow
from referral_hub.core.errors import NotFound
from referral_hub.directory.models import Category, Program
from referral_hub.directory.models import program_categories as pc
from referral_hub.extensions import db
from referral_hub.insights import coverage as cov
from referral_hub.insights import goals as goal_ops
from referral_hub.insights import metrics
from referral_hub.insights.charts import PALETTE, Series, bar_chart, line_chart
from referral_hub.insights.definitions import DEFINITIONS, REFERRAL_SCOPE_NOTE, Metric, Unit
from referral_hub.insights.forms import (
    DashboardForm,
)
from referral_hub.insights.metrics import Dimension, Filters, GroupMetrics
from referral_hub.insights.screenings import (
    HOURS_IN_WEEK,
    WEEKDAYS,
    NeedDimension,
    ScreeningFilters,
    unmet_need,
)
from referral_hub.insights.views import bp
from referral_hub.policies import CITY_WIDE_READ
from referral_hub.web.forms import options

DEFAULT_DAYS = 90
# A category median is shown when at least this many programs had referrals, so that
# a provider cannot work out another program's figure from its own and the median.
MIN_PROGRAMS_FOR_MEDIAN = 3
DASH = "—"


class Audience(enum.StrEnum):
    CITY = "city"  # coordinators and administrators: everything, city-wide
    PROVIDER = "provider"  # provider administrators: their programs against the median
    RESPONDER = "responder"  # responder teams: what happened to their referrals


def audience_of(user) -> Audience | None:
    """The dashboard a user gets; the widest view wins when they hold several roles."""
    roles = user.roles
    if roles & CITY_WIDE_READ:
        return Audience.CITY
    if Role.PROVIDER_ADMIN in roles:
        return Audience.PROVIDER
    if Role.RESPONDER in roles:
        return Audience.RESPONDER
    return None


def _audience_or_404() -> Audience:
    found = audience_of(current_user)
    if found is None:
        raise NotFound("Not found.")
    return found


def _city_or_404() -> None:
    if audience_of(current_user) is not Audience.CITY:
        raise NotFound("Not found.")


def _role_org_ids(role: Role) -> list[int]:
    return sorted(m.organization_id for m in current_user.memberships if m.role == role)


def _city_today() -> date:
    return utcnow().astimezone(city_tz()).date()


# --- tables ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    key: str
    title: str
    kind: str = "text"  # text, count, share, hours, or value (unit of the row's "metric")
    metric: str | None = None  # a key of insights.definitions
    hidden: bool = False  # codes for machines: in the CSV, not on the page


@dataclass
class Table:
    """One table of a page, its chart, and what the numbers mean."""

    name: str
    caption: str
    columns: list[Column]
    rows: list[dict[str, Any]]
    chart: Markup | None = None
    note: str | None = None
    matrix: str | None = None  # hour-of-week tables: the column shown in a 7 x 24 grid
    csv_url: str | None = None

    @property
    def shown(self) -> list[Column]:
        return [c for c in self.columns if not c.hidden]

    @property
    def definitions(self) -> list[Metric]:
        keys = dict.fromkeys(c.metric for c in self.columns if c.metric)
        return [DEFINITIONS[k] for k in keys]

    def cell(self, column: Column, row: dict[str, Any]) -> str:
        return display(column.kind, row.get(column.key), row.get("metric"))

    def csv_rows(self) -> list[dict[str, Any]]:
        return [{c.key: _raw(c, row) for c in self.columns} for row in self.rows]


KIND_OF_UNIT = {Unit.COUNT: "count", Unit.SHARE: "share", Unit.HOURS: "hours"}


def display(kind: str, value: Any, metric: str | None = None) -> str:
    """A cell as people read it: "1,234", "87.5%", "3.5", or a dash when unknown."""
    if value is None or value == "":
        return DASH
    if kind == "value" and metric in DEFINITIONS:
        kind = KIND_OF_UNIT[DEFINITIONS[metric].unit]
        if kind == "hours":  # beside other units: say which
            return _("%(hours)s hours", hours=format_decimal(round(value, 1)))
    if kind == "count":
        return format_decimal(value)
    if kind == "share":
        return format_percent(value, "#,##0.#%")
    if kind == "hours":
        return format_decimal(round(value, 1))
    return str(value)


def _raw(column: Column, row: dict[str, Any]) -> Any:
    value = row.get(column.key)
    if value is None:
        return ""
    kind = column.kind
    if kind == "value":
        kind = KIND_OF_UNIT.get(DEFINITIONS[row["metric"]].unit, "count")
    if kind == "share":
        return round(value, 4)
    if kind == "hours":
        return round(value, 2)
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value  # a spreadsheet would read it as a formula
    return value


def _metric_column(key: str) -> Column:
    definition = DEFINITIONS[key]
    title = str(definition.title)
    if definition.unit is Unit.HOURS:
        title = _("%(title)s (hours)", title=title)
    return Column(key, title, KIND_OF_UNIT[definition.unit], key)


def _metric_values(row: GroupMetrics, keys: Sequence[str]) -> dict[str, Any]:
    return {key: row.value(key) for key in keys}


def _pct(values: Sequence[float | None]) -> list[float | None]:
    return [None if v is None else v * 100 for v in values]


CITY_METRICS = (
    "referrals_sent",
    "accepted_share",
    "accepted_within_target_share",
    "accept_hours_median",
    "accept_hours_p90",
    "handoff_completion",
    "no_show_share",
    "ride_on_time_share",
    "escalations",
)
KEY_FIGURES = (
    "referrals_sent",
    "accepted_share",
    "accept_hours_median",
    "accept_hours_p90",
    "handoff_completion",
    "handoff_hours_median",
    "no_show_share",
    "ride_on_time_share",
    "escalations",
)
PROVIDER_METRICS = (
    "referrals_sent",
    "accepted_share",
    "accept_hours_median",
    "handoff_completion",
    "no_show_share",
    "escalation_share",
)
RESPONDER_METRICS = (
    "referrals_sent",
    "accepted_share",
    "accept_hours_median",
    "handoff_completion",
    "no_show_share",
)


# --- what one page counts, and the queries behind it (each sent once) --------------------


@dataclass
class Scope:
    audience: Audience
    filters: Filters  # the referrals that count
    screenings: ScreeningFilters
    weeks: bool = False
    org_ids: list[int] = field(default_factory=list)  # the provider's, or the team
    own_programs: list[Program] = field(default_factory=list)
    month: date | None = None  # the monthly review
    _summaries: dict[Any, list[GroupMetrics]] = field(default_factory=dict, repr=False)

    @cached_property
    def city_wide(self) -> Filters:
        """The filters without the provider's own organization or program (for medians)."""
        return replace(self.filters, program_id=None, organization_id=None)

    @cached_property
    def period(self) -> Filters:
        """Only the dates: goals are measured over the period, whatever else is filtered."""
        return Filters(start=self.filters.start, end=self.filters.end)

    def summary(self, by: Dimension | None, filters: Filters | None = None) -> list[GroupMetrics]:
        filters = filters or self.filters
        key = (by, filters)
        if key not in self._summaries:
            # The whole and each program: every dashboard shows both, read in one go.
            together = [None, Dimension.PROGRAM] if by in (None, Dimension.PROGRAM) else [by]
            for grouping, rows in metrics.summaries(filters, together).items():
                self._summaries[(grouping, filters)] = rows
        return self._summaries[key]

    def goal_lines(self) -> list[goal_ops.GoalLine]:
        if self.audience is Audience.PROVIDER:
            codes = {c.code for p in self.own_programs for c in p.categories}
            found = goal_ops.active_goals(
                program_ids=[p.id for p in self.own_programs], categories=codes
            )
            city_wide = self.city_wide
        else:
            found = goal_ops.active_goals()
            city_wide = self.filters
        if not found:
            return []
        reusable = city_wide.category is None and city_wide.program_id is None
        by_program = self.summary(Dimension.PROGRAM, city_wide) if reusable else None
        by_category = (
            self.summary(Dimension.CATEGORY, city_wide)
            if reusable and any(g.category for g in found)
            else None
        )
        return goal_ops.progress(found, self.period, by_program=by_program, by_category=by_category)


# --- the tables of each audience ----------------------------------------------------------


def t_key_figures(scope: Scope) -> Table:
    row = scope.summary(None)[0]
    rows = [
        {
            "metric": key,
            "title": str(DEFINITIONS[key].title),
            "value": row.value(key),
            "sample": row.sample(key),
            "definition": _(
                "%(definition)s (version %(version)d)",
                definition=DEFINITIONS[key].definition,
                version=DEFINITIONS[key].version,
            ),
        }
        for key in KEY_FIGURES
    ]
    return Table(
        "key_figures",
        _("Key figures"),
        [
            Column("metric", _("Key"), hidden=True),
            Column("title", _("Measure")),
            Column("value", _("Value"), "value"),
            Column("sample", _("Based on"), "count"),
            Column("definition", _("Definition")),
        ],
        rows,
    )


def _by_group(scope: Scope, by: Dimension, name: str, caption: str, keys: Sequence[str]) -> Table:
    rows = [{"key": r.key, "label": r.label, **_metric_values(r, keys)} for r in scope.summary(by)]
    columns = [Column("label", by.title), *[_metric_column(k) for k in keys]]
    return Table(name, caption, columns, rows)


def t_by_category(scope: Scope) -> Table:
    keys = RESPONDER_METRICS if scope.audience is Audience.RESPONDER else CITY_METRICS
    table = _by_group(scope, Dimension.CATEGORY, "by_category", _("By category"), keys)
    table.chart = bar_chart(
        "chart-by-category",
        _("Referrals sent by category"),
        _("Horizontal bars, one per category; the table that follows has the same numbers."),
        [r["label"] for r in table.rows],
        [r["referrals_sent"] for r in table.rows],
        [display("count", r["referrals_sent"]) for r in table.rows],
    )
    table.note = _("A referral counts in every category of its program.")
    return table


def t_by_program(scope: Scope) -> Table:
    table = _by_group(scope, Dimension.PROGRAM, "by_program", _("By program"), CITY_METRICS)
    values = [r["handoff_completion"] for r in table.rows]
    table.chart = bar_chart(
        "chart-by-program",
        _("Handoff completion by program"),
        _(
            "Horizontal bars, one per program: the percentage of accepted referrals handed off "
            "in person. The table that follows has the same numbers."
        ),
        [r["label"] for r in table.rows],
        _pct(values),
        [display("share", v) for v in values],
        color=PALETTE[1],
    )
    return table


def t_by_week(scope: Scope) -> Table:
    rows = scope.summary(Dimension.WEEK)
    keys = RESPONDER_METRICS if scope.audience is Audience.RESPONDER else CITY_METRICS
    table = Table(
        "by_week",
        _("Week by week"),
        [Column("label", _("Week starting")), *[_metric_column(k) for k in keys]],
        [{"key": r.key, "label": r.label, **_metric_values(r, keys)} for r in rows],
    )
    table.chart = line_chart(
        "chart-by-week",
        _("Referrals week by week"),
        _(
            "Lines for referrals sent, accepted and handed off in person, week by week. "
            "The table that follows has the referrals sent and the shares."
        ),
        [format_date(r.key, "d MMM") for r in rows],
        [
            Series(_("Referrals sent"), [r.sent for r in rows]),
            Series(_("Accepted"), [r.accepted for r in rows]),
            Series(_("Handed off in person"), [r.handed_off for r in rows]),
        ],
    )
    return table


def _breakdown_table(
    name: str, caption: str, label: str, rows: list[tuple[str | None, str, int]]
) -> Table:
    """(code, title, count) rows, largest first, with each one's share of the total."""
    total = sum(count for _code, _title, count in rows) or 1
    ordered = sorted(rows, key=lambda r: (-r[2], r[1]))
    table = Table(
        name,
        caption,
        [
            Column("code", _("Code"), hidden=True),
            Column("title", label),
            Column("count", _("Referrals"), "count"),
            Column("share", _("Share"), "share"),
        ],
        [
            {"code": code or "", "title": title, "count": count, "share": count / total}
            for code, title, count in ordered
        ],
    )
    metric = "decline_reasons" if name == "decline_reasons" else "outcomes"
    table.columns[3] = Column("share", _("Share"), "share", metric)
    table.chart = bar_chart(
        f"chart-{name.replace('_', '-')}",
        caption,
        _("Horizontal bars, one per line of the table that follows, with the same numbers."),
        [r["title"] for r in table.rows],
        [r["count"] for r in table.rows],
        color=PALETTE[2] if name == "decline_reasons" else PALETTE[5],
    )
    return table


def _breakdowns(scope: Scope, which: Callable) -> list[tuple[str | None, str, int]]:
    """Decline reasons or outcomes of the audience's referrals, merged by code."""
    merged: dict[str | None, list] = {}

    def add(items) -> None:
        for b in items:
            merged.setdefault(b.code, [b.code, b.title, 0])[2] += b.count

    if scope.audience is Audience.PROVIDER:
        for org_id in scope.org_ids:
            add(which(replace(scope.filters, organization_id=org_id), None))
    elif scope.audience is Audience.RESPONDER:
        # Reasons and outcomes of sensitive programs stay with the provider (DESIGN §8).
        sensitive = set(db.session.scalars(select(Program.id).where(Program.sensitive)))
        add(b for b in which(scope.filters, Dimension.PROGRAM) if b.key not in sensitive)
    else:
        add(which(scope.filters, None))
    return [tuple(v) for v in merged.values()]


def t_decline_reasons(scope: Scope) -> Table:
    table = _breakdown_table(
        "decline_reasons",
        _("Decline reasons"),
        _("Reason"),
        _breakdowns(scope, metrics.decline_reasons),
    )
    if scope.audience is Audience.RESPONDER:
        table.note = _("Referrals to sensitive programs are left out.")
    return table


def t_outcomes(scope: Scope) -> Table:
    table = _breakdown_table(
        "outcomes", _("Outcomes"), _("Outcome"), _breakdowns(scope, metrics.outcomes)
    )
    if scope.audience is Audience.RESPONDER:
        table.note = _("Referrals to sensitive programs are left out.")
    return table


def t_unmet_by_need(scope: Scope) -> Table:
    found = unmet_need(scope.screenings, NeedDimension.CATEGORY)
    table = Table(
        "unmet_by_need",
        _("Unmet need by what people asked for"),
        [
            Column("key", _("Code"), hidden=True),
            Column("label", _("Need")),
            Column("screenings", _("Screenings"), "count"),
            Column("no_eligible", _("No program they qualified for"), "count"),
            Column("none_open", _("None open at that hour"), "count"),
            Column("no_capacity", _("Open, but not taking referrals"), "count"),
            Column(
                "unmet_share",
                str(DEFINITIONS["unmet_need_share"].title),
                "share",
                "unmet_need_share",
            ),
        ],
        [
            {
                "key": r.key or "",
                "label": r.label,
                "screenings": r.screenings,
                "no_eligible": r.no_eligible,
                "none_open": r.none_open,
                "no_capacity": r.no_capacity,
                "unmet_share": r.unmet_share,
            }
            for r in found
        ],
        note=_(
            "A screening counts once for each need asked for. The program filter does not "
            "apply to screenings."
        ),
    )
    table.chart = bar_chart(
        "chart-unmet-by-need",
        _("Screenings that found no program available, by need"),
        _("Horizontal bars, one per need; the table that follows has the same numbers."),
        [r.label for r in found],
        [r.unmet for r in found],
        color=PALETTE[3],
    )
    return table


def t_unmet_by_hour(scope: Scope) -> Table:
    found = unmet_need(scope.screenings, NeedDimension.HOUR_OF_WEEK)
    table = _hour_table(
        "unmet_by_hour",
        _("Unmet need by hour of the week"),
        [
            {"screenings": r.screenings, "unmet": r.unmet, "unmet_share": r.unmet_share}
            for r in found
        ],
        [
            Column("screenings", _("Screenings"), "count"),
            Column("unmet", _("Found no program available"), "count"),
            Column(
                "unmet_share",
                str(DEFINITIONS["unmet_need_share"].title),
                "share",
                "unmet_need_share",
            ),
        ],
        matrix="unmet",
    )
    table.chart = cov.heat_map(
        "chart-unmet-by-hour",
        _("Screenings that found no program available, by hour of the week"),
        _(
            "A grid of the seven days (down) by the 24 hours (across); the darker a cell, "
            "the more screenings in that hour found no program available. The table that "
            "follows has the same numbers."
        ),
        [r.unmet for r in found],
    )
    return table


def _hour_table(
    name: str, caption: str, values: list[dict], columns: list[Column], matrix: str
) -> Table:
    rows = [
        {"hour_of_week": h, "day": str(WEEKDAYS[h // 24]), "hour": f"{h % 24:02d}:00", **v}
        for h, v in zip(range(HOURS_IN_WEEK), values, strict=True)
    ]
    return Table(
        name,
        caption,
        [
            Column("hour_of_week", _("Hour of the week"), "count", hidden=True),
            Column("day", _("Day")),
            Column("hour", _("Hour")),
            *columns,
        ],
        rows,
        matrix=matrix,
    )


def t_goals(scope: Scope) -> Table:
    lines = scope.goal_lines()
    status = {True: _("Met"), False: _("Not met"), None: _("Not measured yet")}
    return Table(
        "goals",
        _("Goals"),
        [
            Column("scope", _("Program or category")),
            Column("title", _("Measure")),
            Column("comparator", _("Should be")),
            Column("target", _("Target"), "value"),
            Column("value", _("Now"), "value"),
            Column("sample", _("Based on"), "count"),
            Column("status", _("Status")),
        ],
        [
            {
                "goal_id": line.goal.id,
                "metric": line.goal.metric,
                "scope": line.scope,
                "title": str(line.metric.title),
                "comparator": line.goal.comparator.title,
                "target": line.goal.target,
                "value": line.progress.value,
                "sample": line.progress.sample,
                "status": status[line.progress.met],
                "met": line.progress.met,
                "within_hours": line.goal.within_hours,
            }
            for line in lines
        ],
        note=_("Measured over the chosen period."),
    )


def t_own_programs(scope: Scope) -> Table:
    """The provider's programs, then each of their categories' median over every program."""
    city = scope.summary(Dimension.PROGRAM, scope.city_wide)
    by_id = {r.key: r for r in city}
    categories_of: dict[int, list[tuple[str, str]]] = defaultdict(list)
    for program_id, code, name in db.session.execute(
        select(pc.c.program_id, Category.code, Category.name)
        .join(Category, Category.id == pc.c.category_id)
        .order_by(Category.name)
    ):
        categories_of[program_id].append((code, name))
    rows = []
    for program in scope.own_programs:
        if scope.filters.program_id not in (None, program.id):
            continue
        codes = {code for code, _name in categories_of[program.id]}
        if scope.filters.category and scope.filters.category not in codes:
            continue
        row = by_id.get(program.id) or GroupMetrics(key=program.id, label=program.name)
        rows.append(
            {
                "label": program.name,
                "categories": ", ".join(name for _c, name in categories_of[program.id]),
                "median": False,
                **_metric_values(row, PROVIDER_METRICS),
            }
        )
    shown = {code: name for p in scope.own_programs for code, name in categories_of[p.id]}
    if scope.filters.category:
        shown = {c: n for c, n in shown.items() if c == scope.filters.category}
    for code, name in sorted(shown.items(), key=lambda item: item[1]):
        members = [
            by_id[pid]
            for pid, cats in categories_of.items()
            if pid in by_id and code in {c for c, _n in cats}
        ]
        values = {}
        for key in PROVIDER_METRICS:
            known = [v for m in members if (v := m.value(key)) is not None]
            values[key] = (
                statistics.median(known) if len(known) >= MIN_PROGRAMS_FOR_MEDIAN else None
            )
        rows.append(
            {
                "label": ngettext(
                    "Median of programs in %(category)s (%(num)d program)",
                    "Median of programs in %(category)s (%(num)d programs)",
                    len(members),
                    category=name,
                ),
                "categories": name,
                "median": True,
                "short": _("Median: %(category)s", category=name),
                **values,
            }
        )
    table = Table(
        "own_programs",
        _("Your programs and the median of their categories"),
        [
            Column("label", _("Program")),
            Column("categories", _("Categories")),
            *[_metric_column(k) for k in PROVIDER_METRICS],
        ],
        rows,
        note=_(
            "A category's median is taken over every program in it with referrals in the "
            "period, yours included, and shown when at least %(n)d programs had referrals. "
            "Other programs and providers are never named.",
            n=MIN_PROGRAMS_FOR_MEDIAN,
        ),
    )
    values = [r["accepted_share"] for r in rows]
    table.chart = bar_chart(
        "chart-own-programs",
        _("Accepted share: your programs and the category medians"),
        _("Horizontal bars, one per line of the table that follows, with the same numbers."),
        [r.get("short", r["label"]) for r in rows],
        _pct(values),
        [display("share", v) for v in values],
    )
    return table


def t_what_happened(scope: Scope) -> Table:
    row = scope.summary(None)[0]
    steps = [
        ("sent", _("Sent"), row.sent),
        ("accepted", _("Accepted"), row.accepted),
        ("declined", _("Declined"), row.declined),
        ("handed_off", _("Handed off in person"), row.handed_off),
        ("no_show", _("Did not arrive"), row.no_show),
        ("completed", _("Completed"), row.completed),
        ("escalated", _("Escalated (not answered in time)"), row.escalated),
    ]
    table = Table(
        "what_happened",
        _("What happened to your referrals"),
        [
            Column("step", _("Key"), hidden=True),
            Column("title", _("Step")),
            Column("count", _("Referrals"), "count"),
            Column("share", _("Share of those sent"), "share"),
        ],
        [
            {"step": key, "title": title, "count": n, "share": n / row.sent if row.sent else None}
            for key, title, n in steps
        ],
        note=_("A referral counts in every step it reached."),
    )
    table.chart = bar_chart(
        "chart-what-happened",
        table.caption,
        _("Horizontal bars, one per step; the table that follows has the same numbers."),
        [r["title"] for r in table.rows],
        [r["count"] for r in table.rows],
    )
    return table


TABLES: dict[Audience, dict[str, Callable[[Scope], Table]]] = {
    Audience.CITY: {
        "key_figures": t_key_figures,
        "by_category": t_by_category,
        "by_program": t_by_program,
        "by_week": t_by_week,
        "decline_reasons": t_decline_reasons,
        "outcomes": t_outcomes,
        "unmet_by_need": t_unmet_by_need,
        "unmet_by_hour": t_unmet_by_hour,
        "goals": t_goals,
    },
    Audience.PROVIDER: {
        "own_programs": t_own_programs,
        "by_week": t_by_week,
        "decline_reasons": t_decline_reasons,
        "outcomes": t_outcomes,
        "goals": t_goals,
    },
    Audience.RESPONDER: {
        "what_happened": t_what_happened,
        "by_category": t_by_category,
        "by_week": t_by_week,
        "decline_reasons": t_decline_reasons,
        "outcomes": t_outcomes,
    },
}


# --- parsing the filters -------------------------------------------------------------------


def _category_options() -> list[tuple[str, str]]:
    return [
        (code, name)
        for code, name in db.session.execute(
            select(Category.code, Category.name).order_by(Category.name)
        )
    ]


def _own_programs(org_ids: Sequence[int]) -> list[Program]:
    return list(
        db.session.scalars(
            select(Program)
            .where(Program.organization_id.in_(list(org_ids) or [-1]))
            .options(selectinload(Program.categories))
            .order_by(Program.name, Program.id)
        )
    )


def _dashboard_scope(audience: Audience, form: DashboardForm) -> Scope:
    """Fill the form's choices for this audience, validate, and turn it into a Scope.

    A wrong filter is shown beside its field and ignored.
    """
    default = metrics.last_days(DEFAULT_DAYS, today=_city_today())
    org_ids: list[int] = []
    own: list[Program] = []
    if audience is Audience.CITY:
        categories = _category_options()
        programs = [
            (str(p_id), name)
            for p_id, name in db.session.execute(
                select(Program.id, Program.name).order_by(Program.name, Program.id)
            )
        ]
    elif audience is Audience.PROVIDER:
        org_ids = _role_org_ids(Role.PROVIDER_ADMIN)
        own = _own_programs(org_ids)
        codes = {c.code: c.name for p in own for c in p.categories}
        categories = sorted(codes.items(), key=lambda item: item[1])
        programs = [(str(p.id), p.name) for p in own]
    else:
        categories = _category_options()
        programs = []
        teams = _role_org_ids(Role.RESPONDER)
        names = dict(
            db.session.execute(
                select(Organization.id, Organization.name).where(Organization.id.in_(teams))
            ).all()
        )
        form.organization.choices = options((str(t), names.get(t, str(t))) for t in teams)
    form.category.choices = options([("", _("All categories")), *categories])
    form.program.choices = options([("", _("All programs")), *programs])
    form.validate()
    start = default.start if form.start.errors or not form.start.data else form.start.data
    end = default.end if form.end.errors or not form.end.data else form.end.data
    if start > end:
        start, end = default.start, default.end
    _show_period(form, start, end)
    category = None if form.category.errors else form.category.data or None
    program = None if form.program.errors or not form.program.data else int(form.program.data)
    filters = Filters(start=start, end=end, category=category, program_id=program)
    if audience is Audience.PROVIDER and len(org_ids) == 1:
        filters = replace(filters, organization_id=org_ids[0])
    if audience is Audience.RESPONDER:
        choice = form.organization.data if not form.organization.errors else None
        team = int(choice) if choice else (_role_org_ids(Role.RESPONDER) or [-1])[0]
        org_ids = [team]
        filters = replace(filters, referring_org_id=team)
    screenings = ScreeningFilters(
        start=start,
        end=end,
        category=category,
        referring_org_id=filters.referring_org_id,
    )
    return Scope(
        audience,
        filters,
        screenings,
        weeks=bool(form.weeks.data),
        org_ids=org_ids,
        own_programs=own,
    )


def _show_period(form, start: date, end: date) -> None:
    """Fill empty date fields with the period shown; a wrong entry stays as typed."""
    if not form.start.raw_data or not form.start.raw_data[0]:
        form.start.data = start
    if not form.end.raw_data or not form.end.raw_data[0]:
        form.end.data = end


def _period_text(start: date, end: date) -> str:
    return _(
        "From %(start)s to %(end)s.",
        start=format_date(start, "long"),
        end=format_date(end, "long"),
    )


def _query(scope: Scope) -> dict[str, str]:
    """The filters as a query string, for the CSV links and the other pages."""
    found = {"start": scope.filters.start.isoformat(), "end": scope.filters.end.isoformat()}
    if scope.filters.category:
        found["category"] = scope.filters.category
    if scope.filters.program_id:
        found["program"] = str(scope.filters.program_id)
    if scope.audience is Audience.RESPONDER and scope.filters.referring_org_id:
        found["organization"] = str(scope.filters.referring_org_id)
    if scope.weeks:
        found["weeks"] = "y"
    return found


def _names(audience: Audience, scope: Scope) -> list[str]:
    names = list(TABLES[audience])
    # A provider's weeks are those of its one organization (Filters holds one).
    if not scope.weeks or (scope.audience is Audience.PROVIDER and len(scope.org_ids) != 1):
        names.remove("by_week")
    return names


# --- routes: the dashboard -----------------------------------------------------------------


@bp.get("/insights")
@login_required
def dashboard():
    """The dashboard of the signed-in user's audience, for the chosen period and filters."""
    audience = _audience_or_404()
    form = DashboardForm(request.args)
    scope = _dashboard_scope(audience, form)
    query = _query(scope)
    tables = []
    for name in _names(audience, scope):
        table = TABLES[audience][name](scope)
        table.csv_url = url_for("insights.dashboard_csv", table=name, **query)
        tables.append(table)
    return render_template(
        "insights/dashboard.html",
        audience=audience,
        form=form,
        scope=scope,
        tables=tables,
        scope_note=REFERRAL_SCOPE_NOTE,
        period_text=_period_text(scope.filters.start, scope.filters.end),
    )


@bp.get("/insights/data.csv")
@login_required
def dashboard_csv():
    """One table of the dashboard as CSV (?table=by_category and the page's filters)."""
    audience = _audience_or_404()
    scope = _dashboard_scope(audience, DashboardForm(request.args))
    name = request.args.get("table", "")
    if name not in _names(audience, scope):
        raise NotFound("Not found.")
    return _csv(TABLES[audience][name](scope), scope.filters.start, scope.filters.end)


def _csv(table: Table, start: date, end: date) -> Response:
    buffer = io.StringIO()
    writer = csv.DictWriter(
        buffer, fieldnames=[c.key for c in table.columns], lineterminator="\r\n"
    )
    writer.writeheader()
    writer.writerows(table.csv_rows())
    response = Response(buffer.getvalue(), mimetype="text/csv")
    name = f"{table.name}-{start.isoformat()}-{end.isoformat()}.csv"
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    return response
