"""The public transparency page and its open data, without login.

Everything shown comes from insights.transparency, where counts are suppressed before they
leave: these views only choose the period, draw the charts and format.
"""

from __future__ import annotations

import csv
import io
from datetime import date, datetime
from zoneinfo import ZoneInfo

from flask import Response, current_app, render_template, request, url_for
from flask_babel import format_date, format_decimal, format_percent
from flask_babel import gettext as _

from referral_hub.core.api import error_response
from referral_hub.core.db import utcnow
from referral_hub.insights import transparency as public
from referral_hub.insights.charts import Series, bar_chart, line_chart
from referral_hub.insights.suppression import Published
from referral_hub.insights.views import bp

# Aggregates only, the same for every reader: shared caches may keep the downloads a while.
DATA_CACHE = "public, max-age=900"
CSV_FIELDS = (
    "table",
    "period_start",
    "period_end",
    "category_code",
    "category",
    "program",
    "program_id",
    "provider",
    "month",
    *public.COUNTS,
    "accepted_share",
    "handoff_completion",
    "accept_hours_median",
)
# A share or median that is not published (too few referrals behind it, or a count hidden).
NOT_PUBLISHED = "\u2014"
PERIOD_ERRORS = {
    "format": lambda: _("Choose the months from the lists."),
    "order": lambda: _("The first month must come before the last."),
    "length": lambda: _("Choose at most %(n)d months.", n=public.MAX_MONTHS),
    "range": lambda: _("That month is too long ago."),
}


def _city_today() -> date:
    return utcnow().astimezone(ZoneInfo(current_app.config["TIMEZONE"])).date()


def _period() -> tuple[public.Period, str | None]:
    """The requested period, or the default one and the reason the request was refused."""
    today = _city_today()
    try:
        return public.parse_period(request.args.get("start"), request.args.get("end"), today), None
    except ValueError as exc:
        return public.default_period(today), PERIOD_ERRORS[str(exc)]()


def _report(period: public.Period) -> public.Report:
    return public.build_report(period, current_app.config["TIMEZONE"])


def _month_label(code: str) -> str:
    return format_date(public.parse_month(code), "MMM y")


def _count(cell: Published) -> str:
    return cell.display if cell.hidden else format_decimal(cell.value)


def _share(value: float | None) -> str:
    return NOT_PUBLISHED if value is None else format_percent(value)


def _hours(value: float | None) -> str:
    return NOT_PUBLISHED if value is None else format_decimal(round(value, 1))


def _chart_value(cell: Published) -> float | None:
    return None if cell.hidden else float(cell.value or 0)


@bp.get("/transparency")
def transparency():
    """Activity and performance by category and program, for a chosen period."""
    period, period_error = _period()
    report = _report(period)
    period_text = _(
        "%(start)s to %(end)s",
        start=_month_label(public.month_code(period.start)),
        end=_month_label(public.month_code(period.end)),
    )
    by_category = bar_chart(
        "chart-categories",
        _("Referrals sent by category"),
        _(
            "Horizontal bars, one per category, for %(period)s. The same numbers are in the "
            "table that follows.",
            period=period_text,
        ),
        [line.category for line in report.categories],
        [_chart_value(line.counts["referrals_sent"]) for line in report.categories],
        [_count(line.counts["referrals_sent"]) for line in report.categories],
    )
    month_labels = [_month_label(line.month) for line in report.months if line.month]
    by_month = line_chart(
        "chart-months",
        _("Referrals per month"),
        _(
            "Lines for referrals sent, accepted and received in person, month by month, "
            "%(period)s. Hidden months are gaps. The same numbers are in the table that "
            "follows.",
            period=period_text,
        ),
        month_labels,
        [
            Series(
                _("Referrals sent"),
                [_chart_value(m.counts["referrals_sent"]) for m in report.months],
            ),
            Series(_("Accepted"), [_chart_value(m.counts["accepted"]) for m in report.months]),
            Series(
                _("Received in person"),
                [_chart_value(m.counts["handed_off"]) for m in report.months],
            ),
        ],
    )
    query = {"start": public.month_code(period.start), "end": public.month_code(period.end)}
    today = _city_today()
    return render_template(
        "insights/transparency.html",
        report=report,
        period=period,
        period_text=period_text,
        period_error=period_error,
        period_start=query["start"],
        period_end=query["end"],
        months=[
            (public.month_code(m), format_date(m, "MMMM y"))
            for m in public.selectable_months(today)
        ],
        chart_categories=by_category,
        chart_months=by_month,
        metrics=public.metric_definitions(),
        dictionary=public.DICTIONARY,
        count_note=public.COUNT_NOTE,
        notes=public.REPORTING_NOTES,
        rule=public.suppression_rule(),
        csv_url=url_for("insights.transparency_csv", **query),
        json_url=url_for("insights.transparency_json", **query),
        dictionary_url=url_for("insights.transparency_dictionary"),
        count=_count,
        share=_share,
        hours=_hours,
        month_label=_month_label,
    )


def _refused(message: str):
    return error_response(422, "validation_failed", message, fields={"period": [message]})


@bp.get("/transparency/data.csv")
def transparency_csv():
    """The page's tables as one CSV file (the data dictionary is at dictionary.json)."""
    period, period_error = _period()
    if period_error:
        return _refused(period_error)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_FIELDS, lineterminator="\r\n")
    writer.writeheader()
    for record in public.rows(_report(period)):
        writer.writerow({key: _csv_cell(value) for key, value in record.items()})
    name = f"referral-activity-{period.label.replace('/', '_')}.csv"
    response = Response(buffer.getvalue(), mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    response.headers["Cache-Control"] = DATA_CACHE
    return response


@bp.get("/transparency/data.json")
def transparency_json():
    """The page's tables as JSON, with the data dictionary and the metric definitions."""
    period, period_error = _period()
    if period_error:
        return _refused(period_error)
    report = _report(period)
    body = {
        "title": _("Referral activity and performance"),
        "period": {
            "start": public.month_code(period.start),
            "end": public.month_code(period.end),
            "time_zone": report.time_zone,
        },
        "generated_at": _iso(report.generated_at),
        "dictionary": public.dictionary(),
        "rows": public.rows(report),
    }
    response = current_app.json.response(body)
    response.headers["Cache-Control"] = DATA_CACHE
    return response


@bp.get("/transparency/dictionary.json")
def transparency_dictionary():
    """The data dictionary alone: fields, markers, suppression rule, metric definitions."""
    response = current_app.json.response(public.dictionary())
    response.headers["Cache-Control"] = DATA_CACHE
    return response


def _csv_cell(value: object) -> object:
    """Keep spreadsheet programs from reading a name as a formula."""
    if value is None:
        return ""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")
