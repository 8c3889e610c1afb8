"""Forms for signing in, the account page and administration."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    EmailField,
    HiddenField,
    IntegerField,
    PasswordField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import URL, DataRequired, Email, EqualTo, Length, NumberRange, Optional

from referral_hub.accounts.models import ORG_KIND_TITLES, ROLE_TITLES
from referral_hub.web.forms import options
from referral_hub.web.i18n import LANGUAGE_NAMES


def language_choices():
    return options([("", _l("Same as my browser")), *LANGUAGE_NAMES.items()])


class LoginForm(FlaskForm):
    email = EmailField(_l("E-mail"), validators=[DataRequired(), Length(max=254)])
    password = PasswordField(_l("Password"), validators=[DataRequired(), Length(max=200)])
    next = HiddenField()


class ProfileForm(FlaskForm):
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=200)])
    locale = SelectField(_l("Language"), choices=language_choices, validate_choice=True)


class PasswordForm(FlaskForm):
    current_password = PasswordField(_l("Current password"), validators=[DataRequired()])
    new_password = PasswordField(_l("New password"), validators=[DataRequired(), Length(max=200)])
    confirm = PasswordField(
        _l("Repeat the new password"),
        validators=[DataRequired(), EqualTo("new_password", message=_l("The passwords differ."))],
    )


class TokenForm(FlaskForm):
    name = StringField(_l("Token name"), validators=[DataRequired(), Length(max=100)])
    expires_in_days = IntegerField(
        _l("Expires after (days)"), validators=[Optional(), NumberRange(min=1, max=3650)]
    )


class OrganizationForm(FlaskForm):
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=200)])
    slug = StringField(
        _l("Short name"),
        validators=[DataRequired(), Length(max=80)],
        description=_l("Lower-case letters, digits and hyphens; used in links."),
    )
    kind = SelectField(
        _l("Kind"), choices=lambda: options((k.value, t) for k, t in ORG_KIND_TITLES.items())
    )
    phone = StringField(_l("Phone"), validators=[Optional(), Length(max=40)])
    website = StringField(_l("Website"), validators=[Optional(), URL(), Length(max=300)])
    description = TextAreaField(_l("Description"), validators=[Optional(), Length(max=2000)])
    is_active = BooleanField(_l("Active"), default=True)


class UserCreateForm(FlaskForm):
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=200)])
    email = EmailField(_l("E-mail"), validators=[DataRequired(), Email(), Length(max=254)])
    organization_id = SelectField(_l("Organization"), coerce=int, choices=[])
    role = SelectField(
        _l("Role"), choices=lambda: options((r.value, t) for r, t in ROLE_TITLES.items())
    )
    password = PasswordField(
        _l("Initial password"),
        validators=[Optional(), Length(max=200)],
        description=_l("At least 12 characters. Leave empty to set it later."),
    )
    locale = SelectField(_l("Language"), choices=language_choices)


class UserEditForm(FlaskForm):
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=200)])
    email = EmailField(_l("E-mail"), validators=[DataRequired(), Email(), Length(max=254)])
    locale = SelectField(_l("Language"), choices=language_choices)
    is_active = BooleanField(_l("Active (can sign in)"))


class MembershipForm(FlaskForm):
    organization_id = SelectField(_l("Organization"), coerce=int, choices=[])
    role = SelectField(
        _l("Role"), choices=lambda: options((r.value, t) for r, t in ROLE_TITLES.items())
    )


class ConfirmForm(FlaskForm):
    """An empty form: a button whose POST carries the CSRF token."""
