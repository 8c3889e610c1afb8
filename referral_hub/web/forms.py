"""Form helpers shared by every HTML page."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import SelectField
from wtforms.fields.choices import SelectChoice

from referral_hub.core.errors import ValidationFailed


def apply_errors(form: FlaskForm, exc: ValidationFailed) -> None:
    """Show an operation's field errors beside the form's fields; the rest above the form."""
    placed = False
    for name, messages in exc.fields.items():
        field = getattr(form, name, None)
        if field is not None and hasattr(field, "errors"):
            field.errors = [*list(field.errors or []), *messages]
            placed = True
        else:
            form.form_errors.extend(messages)
    if not placed and not exc.fields:
        form.form_errors.append(exc.message)


def options(pairs) -> list[SelectChoice]:
    """Select choices from (value, label) pairs (WTForms 3.3 deprecates bare tuples)."""
    return [SelectChoice(value=value, label=label) for value, label in pairs]


class LanguageForm(FlaskForm):
    """The language switcher at the foot of every page."""

    lang = SelectField(_l("Language"), choices=[])
