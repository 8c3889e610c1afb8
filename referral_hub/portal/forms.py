"""Forms of the client's page: each answer names the referral version the page showed.

Forms only check the shape of input; which answers fit the referral, and what a preference
may hold, are the operations' rules. The page writes the CSRF token and the version as plain
hidden inputs (several forms share a page, and ids must stay unique).
"""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import IntegerField, RadioField, SelectField, StringField
from wtforms.validators import InputRequired, Length
from wtforms.widgets import HiddenInput

PREFERENCE_LEGENDS = (_l("First choice"), _l("Second choice"), _l("Third choice"))


class AnswerForm(FlaskForm):
    """An answer to the referral as the page showed it (its version)."""

    version = IntegerField(widget=HiddenInput(), validators=[InputRequired()])


class ConfirmForm(AnswerForm):
    """The client will be there: nothing to fill in."""


class RescheduleForm(AnswerForm):
    """Up to three times that suit the client: a day, a part of the day, or both ("" is any:
    also what a choice left out of the request means)."""

    day_1 = SelectField(_l("Day"), choices=[], default="")
    part_1 = SelectField(_l("Time of day"), choices=[], default="")
    day_2 = SelectField(_l("Day"), choices=[], default="")
    part_2 = SelectField(_l("Time of day"), choices=[], default="")
    day_3 = SelectField(_l("Day"), choices=[], default="")
    part_3 = SelectField(_l("Time of day"), choices=[], default="")

    def rows(self) -> list[tuple[object, SelectField, SelectField]]:
        """(legend, day, part) per choice, for the page."""
        return [
            (legend, self[f"day_{n}"], self[f"part_{n}"])
            for n, legend in enumerate(PREFERENCE_LEGENDS, start=1)
        ]

    def pairs(self) -> list[tuple[str | None, str | None]]:
        """The (ISO day, day part) the client chose, empty ones included."""
        return [(day.data or None, part.data or None) for _legend, day, part in self.rows()]


class CancelForm(AnswerForm):
    """Cancelling needs a reason, chosen from the client's short list."""

    reason = RadioField(
        _l("Why do you want to cancel?"),
        choices=[],
        validators=[InputRequired(message=_l("Choose a reason."))],
    )


class CheckForm(FlaskForm):
    """The second check: the birth year or the phone's last four digits."""

    answer = StringField(validators=[InputRequired(), Length(max=12)])
