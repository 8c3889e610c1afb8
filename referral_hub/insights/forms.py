"""Forms of the insights pages: dashboard and coverage filters, the monthly review's month,
goals. Choices are filled by the views; rules about goals live in insights/goals.py."""

from __future__ import annotations

from datetime import timedelta

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, DateField, DecimalField, IntegerField, SelectField
from wtforms.validators import InputRequired, NumberRange, Optional, ValidationError

# Longer ranges make every dashboard query scan more than anyone can read in one page.
MAX_RANGE_DAYS = 731


class _PeriodForm(FlaskForm):
    """From and to dates (city time, both included); a GET form, so no CSRF token."""

    class Meta:
        csrf = False

    start = DateField(_l("From"), validators=[Optional()])
    end = DateField(_l("To"), validators=[Optional()])

    def validate_end(self, field) -> None:
        if field.data and self.start.data and not self.start.errors:
            if field.data < self.start.data:
                raise ValidationError(_l("The end date must not come before the start date."))
            if field.data - self.start.data > timedelta(days=MAX_RANGE_DAYS):
                raise ValidationError(_l("Choose at most two years."))


class DashboardForm(_PeriodForm):
    category = SelectField(_l("Category"), choices=[], validators=[Optional()])
    program = SelectField(_l("Program"), choices=[], validators=[Optional()])
    organization = SelectField(_l("Your organization"), choices=[], validators=[Optional()])
    weeks = BooleanField(_l("Show week by week"))


class CoverageForm(_PeriodForm):
    category = SelectField(_l("Category"), choices=[], validators=[Optional()])


class ReviewForm(FlaskForm):
    class Meta:
        csrf = False

    month = SelectField(_l("Month"), choices=[], validators=[Optional()])


class GoalForm(FlaskForm):
    program = SelectField(
        _l("Program"),
        choices=[],
        validators=[Optional()],
        description=_l("Choose a program, or a category below, not both."),
    )
    category = SelectField(_l("Category"), choices=[], validators=[Optional()])
    metric = SelectField(_l("Measure"), choices=[], validators=[InputRequired()])
    comparator = SelectField(_l("The measure should be"), choices=[], validators=[InputRequired()])
    target = DecimalField(
        _l("Target"),
        places=None,
        validators=[InputRequired(_l("Give a target.")), NumberRange(min=0)],
        description=_l(
            "A percentage for shares (90 for 90%), hours for times, a number for counts."
        ),
    )
    within_hours = IntegerField(
        _l("Within how many hours (optional)"),
        validators=[Optional(), NumberRange(min=1, max=24 * 30)],
        description=_l(
            "Only for “accepted within the response target”: replaces each program's own "
            "response target, for example 4."
        ),
    )


class DeactivateGoalForm(FlaskForm):
    """Only the CSRF token: the goal is in the address."""
