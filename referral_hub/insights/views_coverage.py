"""Coverage gaps for city staff: demand against supply by hour of the week and place, the
largest gaps in words, and each table as CSV. Routes join insights.bp."""

from __future__ import annotations

from flask import render_template, request, url_for
from flask_babel import gettext as _
from flask_login import login_required

from referral_hub.core.errors import NotFound
from referral_hub.insights import coverage as cov
from referral_hub.insights import metrics
from referral_hub.insights.forms import (
    CoverageForm,
)
from referral_hub.insights.views import bp
from referral_hub.insights.views_dashboards import (
    DEFAULT_DAYS,
    Audience,
    Column,
    Table,
    _category_options,
    _city_or_404,
    _city_today,
    _csv,
    _hour_table,
    _period_text,
    _show_period,
)
from referral_hub.web.forms import options

# --- routes: coverage gaps -------------------------------------------------------------------


def _coverage_filters(form: CoverageForm) -> cov.CoverageFilters:
    default = metrics.last_days(DEFAULT_DAYS, today=_city_today())
    form.category.choices = options([("", _("All categories")), *_category_options()])
    form.validate()
    start = default.start if form.start.errors or not form.start.data else form.start.data
    end = default.end if form.end.errors or not form.end.data else form.end.data
    if start > end:
        start, end = default.start, default.end
    _show_period(form, start, end)
    category = None if form.category.errors else form.category.data or None
    return cov.CoverageFilters(start=start, end=end, category=category)


def coverage_tables(found: cov.Coverage, *, gaps_limit: int | None = None) -> dict[str, Table]:
    """The coverage page's tables: ranked gaps, the hours of the week, travel by ZIP code."""
    chosen = found.categories.get(found.filters.category or "")
    gaps = found.gaps[:gaps_limit] if gaps_limit else found.gaps
    gap_table = Table(
        "gaps",
        _("Largest coverage gaps"),
        [
            Column("rank", _("Rank"), "count"),
            Column("category", _("Category")),
            Column("kind", _("Kind of gap")),
            Column("text", _("In words")),
            Column("screenings", _("Screenings"), "count"),
            Column("referrals", _("Referrals"), "count"),
        ],
        [
            {
                "rank": n,
                "category": g.category_name,
                "kind": g.kind.title,
                "text": g.text,
                "screenings": g.screenings,
                "referrals": g.referrals,
            }
            for n, g in enumerate(gaps, start=1)
        ],
        note=_(
            "Ranked by the screenings and referrals that fell in each gap. Opening hours are "
            "the regular weekly hours, without holidays. Travel times are estimated from "
            "straight-line distance, by car, from the centre of each ZIP code."
        ),
    )
    cells = found.heat()
    if chosen is not None:
        caption = _(
            "%(category)s: demand and opening hours by hour of the week", category=chosen.name
        )
        description = _(
            "A grid of the seven days (down) by the 24 hours (across); the darker a cell, the "
            "more screenings and referrals in that hour. A crossed cell had no site open. The "
            "table that follows has the same numbers."
        )
        columns = [
            Column("demand", _("Screenings and referrals"), "count"),
            Column("open_sites", _("Sites open"), "count"),
            Column("unserved", _("Demand when no site was open"), "count"),
        ]
        values = [
            {"demand": c.demand, "open_sites": chosen.open_sites[c.hour], "unserved": c.unserved}
            for c in cells
        ]
        matrix = "demand"
    else:
        caption = _("Demand that found no site of its kind open, by hour of the week")
        description = _(
            "A grid of the seven days (down) by the 24 hours (across); the darker a cell, the "
            "more screenings and referrals fell in that hour when no site of the kind needed "
            "was open. The table that follows has the same numbers."
        )
        columns = [
            Column("demand", _("Screenings and referrals"), "count"),
            Column("unserved", _("Demand when no site was open"), "count"),
        ]
        values = [{"demand": c.demand, "unserved": c.unserved} for c in cells]
        matrix = "unserved"
    hours = _hour_table("hours", caption, values, columns, matrix)
    hours.chart = cov.heat_map(
        "chart-coverage-hours",
        caption,
        description,
        [c.value for c in cells],
        [c.closed for c in cells],
    )
    hours.note = _("A screening counts once for each need asked for.")
    travel = Table(
        "travel",
        _("Travel to the nearest site, by ZIP code (estimated)"),
        [
            Column("zip", _("ZIP code")),
            Column("category", _("Need")),
            Column("screenings", _("Screenings"), "count"),
            Column("minutes", _("Minutes by car (estimated)"), "hours"),
            Column("minutes_low", _("At least"), "hours"),
            Column("minutes_high", _("At most"), "hours"),
            Column("distance_km", _("Straight-line km"), "hours"),
        ],
        [
            {
                "zip": t.zip,
                "category": t.category_name,
                "screenings": t.screenings,
                "minutes": t.minutes,
                "minutes_low": t.minutes_low,
                "minutes_high": t.minutes_high,
                "distance_km": t.distance_km,
            }
            for t in found.travel
        ],
        note=_(
            "Estimated, not routed: straight-line distance from the centre of the ZIP code "
            "to the nearest site offering the need, times a detour factor, at city speeds. "
            "A dash means no site offers it, or the ZIP code is unknown."
        ),
    )
    supply = Table(
        "supply",
        _("Supply and demand by category"),
        [
            Column("code", _("Code"), hidden=True),
            Column("category", _("Category")),
            Column("sites", _("Sites"), "count"),
            Column("open_hours", _("Hours a week with a site open"), "count"),
            Column("screenings", _("Screenings"), "count"),
            Column("referrals", _("Referrals"), "count"),
        ],
        [
            {
                "code": c.code,
                "category": c.name,
                "sites": len(c.sites),
                "open_hours": c.open_hours,
                "screenings": sum(c.screenings),
                "referrals": sum(c.referrals),
            }
            for c in found.categories.values()
        ],
        note=_("Sites of active programs; a week has 168 hours."),
    )
    return {"gaps": gap_table, "supply": supply, "hours": hours, "travel": travel}


@bp.get("/insights/coverage")
@login_required
def coverage():
    """Coverage gaps: when and where people needed a kind of program and none was open."""
    _city_or_404()
    form = CoverageForm(request.args)
    filters = _coverage_filters(form)
    found = cov.coverage(filters)
    query = {"start": filters.start.isoformat(), "end": filters.end.isoformat()}
    if filters.category:
        query["category"] = filters.category
    tables = coverage_tables(found)
    for name, table in tables.items():
        table.csv_url = url_for("insights.coverage_csv", table=name, **query)
    return render_template(
        "insights/coverage.html",
        audience=Audience.CITY,
        form=form,
        found=found,
        tables=tables,
        threshold=cov.TRAVEL_GAP_MINUTES,
        period_text=_period_text(filters.start, filters.end),
    )


@bp.get("/insights/coverage.csv")
@login_required
def coverage_csv():
    """One table of the coverage page as CSV (?table=gaps|hours|travel and its filters)."""
    _city_or_404()
    filters = _coverage_filters(CoverageForm(request.args))
    table = coverage_tables(cov.coverage(filters)).get(request.args.get("table", ""))
    if table is None:
        raise NotFound("Not found.")
    return _csv(table, filters.start, filters.end)
