"""Goals a coordinator sets and the printable monthly review. Routes join insights.bp."""

from __future__ import annotations

from datetime import date, timedelta

from flask import flash, redirect, render_template, request, url_for
from flask_babel import format_date
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlalchemy import select

from referral_hub.accounts.models import Role
from referral_hub.core.errors import NotFound, ValidationFailed
from referral_hub.directory.models import Program
from referral_hub.extensions import db
from referral_hub.insights import coverage as cov
from referral_hub.insights import goals as goal_ops
from referral_hub.insights import metrics
from referral_hub.insights.definitions import DEFINITIONS, REFERRAL_SCOPE_NOTE
from referral_hub.insights.forms import (
    DeactivateGoalForm,
    GoalForm,
    ReviewForm,
)
from referral_hub.insights.metrics import Filters
from referral_hub.insights.models import Comparator
from referral_hub.insights.screenings import (
    ScreeningFilters,
    unmet_need,
)
from referral_hub.insights.views import bp
from referral_hub.insights.views_coverage import coverage_tables
from referral_hub.insights.views_dashboards import (
    KEY_FIGURES,
    Audience,
    Column,
    Scope,
    Table,
    _audience_or_404,
    _category_options,
    _city_or_404,
    _city_today,
    _own_programs,
    _role_org_ids,
    display,
    t_by_category,
    t_decline_reasons,
    t_goals,
    t_outcomes,
    t_unmet_by_need,
)
from referral_hub.web.forms import apply_errors, options

REVIEW_MONTHS = 24
REVIEW_GAPS = 5


# --- routes: goals ---------------------------------------------------------------------------


def _goal_form_choices(form: GoalForm) -> None:
    programs = db.session.execute(
        select(Program.id, Program.name).where(Program.is_active).order_by(Program.name, Program.id)
    )
    form.program.choices = options(
        [("", _("No program: a category")), *((str(i), n) for i, n in programs)]
    )
    form.category.choices = options([("", _("No category: a program")), *_category_options()])
    form.metric.choices = options((m.key, str(m.title)) for m in goal_ops.goal_metrics())
    form.comparator.choices = options((c.value, c.title) for c in Comparator)


def _goals_page(form: GoalForm | None, status: int = 200):
    audience = _audience_or_404()
    if audience is Audience.RESPONDER:
        raise NotFound("Not found.")
    period = metrics.last_days(30, today=_city_today())
    scope = Scope(audience, period, ScreeningFilters(period.start, period.end))
    if audience is Audience.PROVIDER:
        scope.org_ids = _role_org_ids(Role.PROVIDER_ADMIN)
        scope.own_programs = _own_programs(scope.org_ids)
    table = t_goals(scope)
    table.note = _("Measured over the last 30 days.")
    return render_template(
        "insights/goals.html",
        audience=audience,
        form=form,
        table=table,
        deactivate_form=DeactivateGoalForm() if audience is Audience.CITY else None,
        metrics=goal_ops.goal_metrics(),
    ), status


@bp.route("/insights/goals", methods=["GET", "POST"])
@login_required
def goals():
    """Goals and where they stand; coordinators add them here."""
    audience = _audience_or_404()
    if audience is not Audience.CITY:
        if request.method == "POST":
            raise NotFound("Not found.")
        return _goals_page(None)
    form = GoalForm()
    _goal_form_choices(form)
    if not form.validate_on_submit():
        return _goals_page(form, 422 if form.is_submitted() else 200)
    metric = form.metric.data
    target = None if form.target.data is None else float(form.target.data)
    try:
        goal = goal_ops.create_goal(
            metric=metric,
            comparator=form.comparator.data,
            target=goal_ops.target_from_input(metric, target),
            program_id=int(form.program.data) if form.program.data else None,
            category=form.category.data or None,
            within_hours=form.within_hours.data,
            created_by=current_user,
        )
    except ValidationFailed as exc:
        db.session.rollback()
        apply_errors(form, exc)
        return _goals_page(form, 422)
    db.session.commit()
    flash(_("Goal added: %(measure)s.", measure=DEFINITIONS[goal.metric].title), "success")
    return redirect(url_for("insights.goals"))


@bp.post("/insights/goals/<int:goal_id>/deactivate")
@login_required
def deactivate_goal(goal_id: int):
    """Stop tracking a goal (coordinators and administrators)."""
    _city_or_404()
    goal = goal_ops.goal_or_404(goal_id)
    if DeactivateGoalForm().validate_on_submit():
        goal_ops.deactivate_goal(goal)
        db.session.commit()
        flash(_("Goal deactivated."), "success")
    return redirect(url_for("insights.goals"))


# --- routes: the monthly review ------------------------------------------------------------


def _month_bounds(month: date) -> tuple[date, date]:
    following = (month.replace(day=28) + timedelta(days=4)).replace(day=1)
    return month, following - timedelta(days=1)


def _months(today: date) -> list[date]:
    first = today.replace(day=1)
    found = [first]
    for _n in range(REVIEW_MONTHS - 1):
        found.append((found[-1] - timedelta(days=1)).replace(day=1))
    return found


def _parse_month(text: str | None, latest: date) -> date | None:
    """The first day of a "YYYY-MM" month from 2000 to `latest`; None for anything else."""
    try:
        year, month = (int(part) for part in (text or "").split("-"))
        found = date(year, month, 1)
    except ValueError:
        return None
    return found if date(2000, 1, 1) <= found <= latest else None


@bp.get("/insights/review")
@login_required
def review():
    """A printable review of one month (?month=YYYY-MM, default the last full month)."""
    _city_or_404()
    months = _months(_city_today())
    month = _parse_month(request.args.get("month"), months[0]) or months[1]
    if month not in months:
        months.append(month)
    form = ReviewForm(formdata=None, month=month.strftime("%Y-%m"))
    form.month.choices = options((m.strftime("%Y-%m"), format_date(m, "MMMM y")) for m in months)
    if request.args.get("month") and request.args["month"] != form.month.data:
        form.month.errors = [_("Choose a month from the list.")]
    start, end = _month_bounds(month)
    before_start, before_end = _month_bounds((start - timedelta(days=1)).replace(day=1))
    filters = Filters(start=start, end=end)
    scope = Scope(Audience.CITY, filters, ScreeningFilters(start, end), month=month)
    this, before = scope.summary(None)[0], metrics.overall(Filters(before_start, before_end))
    totals = Table(
        "totals",
        _("The month at a glance"),
        [
            Column("title", _("Measure")),
            Column("value", _("This month"), "value"),
            Column("before", _("Month before"), "value"),
        ],
        [
            {
                "metric": key,
                "title": str(DEFINITIONS[key].title),
                "value": this.value(key),
                "before": before.value(key),
            }
            for key in KEY_FIGURES
        ],
    )
    found = cov.coverage(cov.CoverageFilters(start, end), limit=REVIEW_GAPS)
    gaps = coverage_tables(found)["gaps"]
    unmet_all = unmet_need(scope.screenings)[0]
    query = {"start": start.isoformat(), "end": end.isoformat()}
    tables = {
        "by_category": t_by_category(scope),
        "goals": t_goals(scope),
        "decline_reasons": t_decline_reasons(scope),
        "outcomes": t_outcomes(scope),
        "unmet_by_need": t_unmet_by_need(scope),
    }
    for name, table in tables.items():
        table.csv_url = url_for("insights.dashboard_csv", table=name, **query)
    gaps.csv_url = url_for("insights.coverage_csv", table="gaps", **query)
    return render_template(
        "insights/review.html",
        audience=Audience.CITY,
        form=form,
        month=month,
        month_label=format_date(month, "MMMM y"),
        totals=totals,
        this=this,
        tables=tables,
        gaps=gaps,
        unmet=unmet_all,
        generated=format_date(_city_today(), "long"),
        scope_note=REFERRAL_SCOPE_NOTE,
        definitions=list(
            dict.fromkeys(
                [DEFINITIONS[k] for k in KEY_FIGURES]
                + [m for table in tables.values() for m in table.definitions]
            )
        ),
        share=lambda value: display("share", value),
    )
