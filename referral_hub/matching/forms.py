"""The screener form, built from the question definitions."""

from __future__ import annotations

from functools import cache

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    HiddenField,
    IntegerField,
    RadioField,
    SelectField,
    SelectMultipleField,
    StringField,
    widgets,
)
from wtforms.validators import NumberRange, Optional

from referral_hub.geo.base import Mode
from referral_hub.matching.questions import QUESTIONS, QType
from referral_hub.web.forms import options

# Answered first, on one screen: the questions that decide most programs.
FIRST_QUESTIONS = ("needs", "age", "location", "language")


class MultiCheckboxField(SelectMultipleField):
    widget = widgets.ListWidget(prefix_label=False)
    option_widget = widgets.CheckboxInput()


def _field(question):
    label, help_text = question.label, question.help
    if question.type == QType.INTEGER:
        return IntegerField(
            label,
            description=help_text,
            validators=[Optional(), NumberRange(min=question.minimum, max=question.maximum)],
        )
    if question.type == QType.YES_NO:
        return RadioField(
            label,
            description=help_text,
            default="",
            validate_choice=True,
            choices=options([("yes", _l("Yes")), ("no", _l("No")), ("", _l("Not asked"))]),
        )
    if question.type == QType.ONE_OF:
        return SelectField(
            label,
            description=help_text,
            default="",
            choices=options(
                [("", _l("Not asked")), *[(o.value, o.label) for o in question.options]]
            ),
        )
    if question.type == QType.MANY_OF:
        return MultiCheckboxField(
            label,
            description=help_text,
            choices=options((o.value, o.label) for o in question.options),
        )
    return StringField(label, description=help_text)


@cache
def screener_form_class() -> type[FlaskForm]:
    """A form class with one field per screener question (built once)."""
    attrs = {q.code: _field(q) for q in QUESTIONS}
    attrs["lat"] = HiddenField()
    attrs["lon"] = HiddenField()
    attrs["mode"] = SelectField(
        _l("Travel by"), default=Mode.DRIVE.value, choices=options((m.value, m.title) for m in Mode)
    )
    return type("ScreenerForm", (FlaskForm,), attrs)


def answers_from(form: FlaskForm) -> dict:
    """The filled-in answers, by question code, as clean_answers expects them."""
    answers = {}
    for question in QUESTIONS:
        if question.type == QType.LOCATION:
            continue
        value = form[question.code].data
        if value not in (None, "", []):
            answers[question.code] = value
    return answers
