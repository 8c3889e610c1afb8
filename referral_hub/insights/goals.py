"""Goals: targets a coordinator sets per program or category, and where each one stands.

Operations only flush; the view commits. Targets are stored in the metric's own unit
(shares as fractions, times in hours); `target_from_input` converts what people type (a
percentage for shares).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from flask_babel import gettext as _
from sqlalchemy import or_, select
from sqlalchemy.orm import joinedload

from referral_hub.accounts.models import User
from referral_hub.core.db import utcnow
from referral_hub.core.errors import NotFound, ValidationFailed
from referral_hub.directory.models import Category, Program
from referral_hub.extensions import db
from referral_hub.insights import metrics
from referral_hub.insights.definitions import DEFINITIONS, Metric, Unit
from referral_hub.insights.metrics import Filters, GoalProgress, GroupMetrics
from referral_hub.insights.models import Comparator, Goal

# The only metric whose goal may replace each program's response target with its own hours.
WITHIN_HOURS_METRIC = "accepted_within_target_share"
MAX_WITHIN_HOURS = 24 * 30


def goal_metrics() -> list[Metric]:
    """Metrics a goal can be set on, in the order of the definitions."""
    keys = set(metrics.metric_keys())
    return [m for m in DEFINITIONS.values() if m.goal and m.key in keys]


def create_goal(
    *,
    metric: str,
    comparator: Comparator | str,
    target: float | None,
    program_id: int | None = None,
    category: str | None = None,
    within_hours: int | None = None,
    created_by: User | None = None,
) -> Goal:
    """Add an active goal for one program or one category (flushes, never commits).

    `target` is in the metric's unit: a fraction from 0 to 1 for shares, hours for times.
    """
    errors: dict[str, list[str]] = {}

    def add(field: str, message: str) -> None:
        errors.setdefault(field, []).append(message)

    definition = DEFINITIONS.get(metric)
    if definition is None or definition not in goal_metrics():
        add("metric", _("Choose a measure from the list."))
    try:
        comparator = Comparator(comparator)
    except ValueError:
        add("comparator", _("Choose “at least” or “at most”."))
    if (program_id is None) == (category is None):
        message = _("Choose either one program or one category.")
        add("program", message)
        add("category", message)
    elif (
        program_id is not None
        and db.session.scalar(select(Program.id).where(Program.id == program_id, Program.is_active))
        is None
    ):
        add("program", _("Choose a program from the list."))
    elif (
        category is not None
        and db.session.scalar(select(Category.id).where(Category.code == category)) is None
    ):
        add("category", _("Choose a category from the list."))
    if target is None:
        add("target", _("Give a target."))
    elif target < 0:
        add("target", _("The target cannot be negative."))
    elif definition is not None and definition.unit is Unit.SHARE and target > 1:
        add("target", _("Give a percentage from 0 to 100."))
    if within_hours is not None:
        if metric != WITHIN_HOURS_METRIC:
            add("within_hours", _("Hours only apply to acceptance within the response target."))
        elif not 0 < within_hours <= MAX_WITHIN_HOURS:
            add(
                "within_hours",
                _("Give a whole number of hours from 1 to %(most)d.", most=MAX_WITHIN_HOURS),
            )
    if not errors and _duplicate(metric, Comparator(comparator), program_id, category):
        add(
            "metric",
            _("An active goal on this measure already exists for it: deactivate it first."),
        )
    if errors:
        first = next(iter(errors.values()))[0]
        raise ValidationFailed(first, fields=errors)

    goal = Goal(
        program_id=program_id,
        category=category,
        metric=metric,
        comparator=Comparator(comparator),
        target=float(target),
        within_hours=within_hours,
        created_by_id=created_by.id if created_by else None,
        active=True,
    )
    db.session.add(goal)
    db.session.flush()
    return goal


def _duplicate(
    metric: str, comparator: Comparator, program_id: int | None, category: str | None
) -> bool:
    stmt = select(Goal.id).where(Goal.active, Goal.metric == metric, Goal.comparator == comparator)
    stmt = stmt.where(
        Goal.program_id == program_id if program_id is not None else Goal.category == category
    )
    return db.session.scalar(stmt.limit(1)) is not None


def deactivate_goal(goal: Goal) -> Goal:
    """Stop tracking a goal (kept for the record; flushes, never commits)."""
    goal.active = False
    goal.updated_at = utcnow()
    db.session.flush()
    return goal


def goal_or_404(goal_id: int) -> Goal:
    goal = db.session.get(Goal, goal_id)
    if goal is None:
        raise NotFound("Not found.")
    return goal


def active_goals(
    *, program_ids: Iterable[int] | None = None, categories: Iterable[str] | None = None
) -> list[Goal]:
    """Active goals, all of them or those on these programs or categories (one query)."""
    stmt = (
        select(Goal)
        .where(Goal.active)
        .options(joinedload(Goal.program))
        .order_by(Goal.category.is_(None), Goal.category, Goal.program_id, Goal.metric, Goal.id)
    )
    if program_ids is not None or categories is not None:
        stmt = stmt.where(
            or_(
                Goal.program_id.in_(list(program_ids or []) or [-1]),
                Goal.category.in_(list(categories or []) or [""]),
            )
        )
    return list(db.session.scalars(stmt).unique())


# --- progress --------------------------------------------------------------------------------


@dataclass(frozen=True)
class GoalLine:
    """A goal, what it is about in words, and where it stands over a period."""

    goal: Goal
    scope: str  # the program's name or the category's name
    metric: Metric
    progress: GoalProgress


def progress(
    goals: Sequence[Goal],
    filters: Filters,
    *,
    by_program: Sequence[GroupMetrics] | None = None,
    by_category: Sequence[GroupMetrics] | None = None,
    category_names: dict[str, str] | None = None,
) -> list[GoalLine]:
    """Where each goal stands over the period of `filters`.

    Rows already computed over exactly these filters (by program, by category) are
    reused, so a dashboard pays nothing more for its goals; goals they cannot answer (an
    hours window of their own, or rows not given) send queries of their own.
    """
    reusable = filters.program_id is None and filters.category is None
    covered = set()
    if reusable and by_program is not None:
        covered.add("program")
    if reusable and by_category is not None:
        covered.add("category")
    rows = {
        **{("program", r.key): r for r in (by_program or [])},
        **{("category", r.key): r for r in (by_category or [])},
    }
    # The rows hold every program (or category) with referrals: a missing one had none.
    nothing = GroupMetrics(key=None, label="")
    names = category_names if category_names is not None else _category_names(goals)
    lines = []
    for goal in goals:
        kind, key = ("program", goal.program_id) if goal.program_id else ("category", goal.category)
        if goal.within_hours is None and kind in covered:
            found = _from_row(goal, rows.get((kind, key), nothing))
        else:
            found = metrics.goal_progress(goal, filters)
        scope = goal.program.name if goal.program else names.get(goal.category, goal.category)
        lines.append(GoalLine(goal, scope, DEFINITIONS[goal.metric], found))
    return lines


def _from_row(goal: Goal, row: GroupMetrics) -> GoalProgress:
    value = row.value(goal.metric)
    return GoalProgress(
        goal_id=goal.id,
        metric=goal.metric,
        comparator=goal.comparator,
        target=goal.target,
        value=value,
        sample=row.sample(goal.metric),
        met=None if value is None else goal.comparator.holds(value, goal.target),
    )


def _category_names(goals: Sequence[Goal]) -> dict[str, str]:
    codes = {g.category for g in goals if g.category}
    if not codes:
        return {}
    return dict(
        db.session.execute(
            select(Category.code, Category.name).where(Category.code.in_(codes))
        ).all()
    )


# --- units -----------------------------------------------------------------------------------


def target_from_input(metric: str, number: float | None) -> float | None:
    """What a person typed (a percentage for shares) in the metric's stored unit."""
    definition = DEFINITIONS.get(metric)
    if number is None or definition is None:
        return number
    return number / 100 if definition.unit is Unit.SHARE else number
