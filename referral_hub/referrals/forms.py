"""Forms for the referral pages: refer a person, take a lifecycle action, re-route, filter.

Forms only check the shape of input; the rules (consent, phone numbers, what each action
requires) are the operations' and come back as field errors.
"""

from __future__ import annotations

from functools import cache

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DateTimeLocalField,
    HiddenField,
    IntegerField,
    RadioField,
    SelectField,
    StringField,
    TelField,
    TextAreaField,
)
from wtforms.validators import (
    DataRequired,
    InputRequired,
    Length,
    NumberRange,
    Optional,
    ValidationError,
)
from wtforms.widgets import HiddenInput

from referral_hub.referrals.lifecycle import BY_ACTION, REASON_TITLES, Transition
from referral_hub.referrals.models import ConsentMethod, Priority
from referral_hub.web.forms import options
from referral_hub.web.i18n import LANGUAGE_NAMES

# The languages client messages are written in (DESIGN.md section 9).
CLIENT_LANGUAGES = ("en", "es", "so", "hmn")
# Browsers send minutes, or seconds when the input has a step.
DATETIME_LOCAL = ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"]

CONSENT_METHODS = {
    ConsentMethod.VERBAL: _l("Said yes out loud"),
    ConsentMethod.SIGNED: _l("Signed a form"),
}
OVERRIDE_TITLE = _l("Emergency override (no consent: the person cannot give it now)")
PRIORITY_TITLES = {Priority.URGENT: _l("Urgent"), Priority.ROUTINE: _l("Routine")}


def consent_method_choices(override: bool = False):
    pairs = [(m.value, t) for m, t in CONSENT_METHODS.items()]
    if override:
        pairs.append((ConsentMethod.EMERGENCY_OVERRIDE.value, OVERRIDE_TITLE))
    return options(pairs)


class ReferForm(FlaskForm):
    """The person, their consent and the referral; hidden fields carry the chosen program."""

    step = HiddenField(default="send")
    program_id = HiddenField(validators=[DataRequired()])
    site_id = HiddenField()
    answers = HiddenField(default="{}")
    # Set only after a duplicate hint: "new" or the id of an existing client.
    client_choice = StringField(validators=[Optional(), Length(max=20)])

    display_name = StringField(
        _l("Name"),
        validators=[DataRequired(), Length(max=120)],
        description=_l("A name they choose to give. It does not have to be a legal name."),
    )
    phone = TelField(_l("Phone (optional)"), validators=[Optional(), Length(max=40)])
    preferred_language = SelectField(
        _l("Preferred language"),
        choices=lambda: options((c, LANGUAGE_NAMES[c]) for c in CLIENT_LANGUAGES),
        default="en",
    )
    birth_year = IntegerField(
        _l("Birth year (optional)"),
        validators=[Optional()],
        description=_l("Helps tell two people with the same name apart."),
    )
    sms_ok = BooleanField(_l("Text messages are OK"))
    neutral_sender = BooleanField(_l("Texts should not name the program (neutral sender)"))

    consent_method = RadioField(
        _l("How did the person agree?"), choices=consent_method_choices, default="verbal"
    )
    # The label names the program and its organization; the view sets it.
    consent = BooleanField()
    override_reason = StringField(
        _l("Reason for the emergency override"), validators=[Optional(), Length(max=500)]
    )

    priority = RadioField(
        _l("Priority"),
        default="routine",
        choices=lambda: options((p.value, t) for p, t in PRIORITY_TITLES.items()),
    )
    note = TextAreaField(
        _l("Note for the provider (optional)"),
        validators=[Optional(), Length(max=2000)],
        description=_l("What the program should know to help. No diagnoses or case details."),
    )

    def validate_consent(self, field):
        if not field.data and self.consent_method.data != ConsentMethod.EMERGENCY_OVERRIDE:
            raise ValidationError(_l("Ask the person and tick this box to record their consent."))


class RerouteForm(FlaskForm):
    """Consent for the next program, which the label names."""

    program_id = HiddenField(validators=[DataRequired()])
    consent_method = RadioField(
        _l("How did the person agree?"), choices=consent_method_choices, default="verbal"
    )
    consent = BooleanField(
        validators=[
            DataRequired(_l("Ask the person and tick this box to record their consent.")),
        ]
    )


class ListForm(FlaskForm):
    """Filters of the referral list; a GET form, so no CSRF token."""

    class Meta:
        csrf = False

    status = SelectField(_l("Status"), choices=[], validate_choice=False)
    program_id = SelectField(_l("Program"), choices=[], validate_choice=False)
    escalated = BooleanField(_l("Escalated only"))
    page = IntegerField(validators=[Optional(), NumberRange(min=1)], default=1)


# --- lifecycle actions ----------------------------------------------------------------------

# Optional fields an action offers beyond what the lifecycle table requires.
EXTRA_FIELDS: dict[str, tuple[str, ...]] = {
    "accept": ("appointment_at",),
    "decline": ("note",),
    "hold": ("note",),
    "cancel": ("note",),
    "no_show": ("note",),
    "hand_off": ("code", "at"),
    "complete": ("note", "provider_notes"),
}


def action_fields(transition: Transition) -> tuple[str, ...]:
    """The input fields of an action's form, required ones first."""
    return (*transition.requires, *EXTRA_FIELDS.get(transition.action, ()))


def _reason_choices(transition: Transition):
    def choices():
        return options(
            [("", _l("Choose…")), *((code, REASON_TITLES[code]) for code in transition.reasons)]
        )

    return choices


def _field(name: str, transition: Transition):
    """One unbound field; ids carry the action because several forms share a page."""
    ident = f"{transition.action}-{name}"
    optional = [Optional()]
    if name in ("reason_code", "outcome"):
        label = _l("Outcome") if name == "outcome" else _l("Reason")
        return SelectField(label, choices=_reason_choices(transition), default="", id=ident)
    if name == "appointment_at":
        return DateTimeLocalField(
            _l("Appointment (city time)"), format=DATETIME_LOCAL, validators=optional, id=ident
        )
    if name == "at":
        return DateTimeLocalField(
            _l("When (city time, if not now)"), format=DATETIME_LOCAL, validators=optional, id=ident
        )
    if name == "handed_off_to":
        return StringField(_l("Received by (staff name)"), validators=[Length(max=120)], id=ident)
    if name == "code":
        return StringField(
            _l("The client's 6-digit code (optional)"),
            validators=[Optional(), Length(max=8)],
            id=ident,
            render_kw={"inputmode": "numeric", "autocomplete": "off"},
        )
    if name == "provider_notes":
        return TextAreaField(
            _l("Internal notes (only your organization sees them)"),
            validators=[Optional(), Length(max=4000)],
            id=ident,
        )
    if name == "reason_note":
        return StringField(_l("Why"), validators=[Length(max=500)], id=ident)
    return TextAreaField(_l("Note (optional)"), validators=[Optional(), Length(max=500)], id=ident)


@cache
def action_form_class(action: str) -> type[FlaskForm]:
    """A form class per action: the referral's version plus the fields the action takes."""
    transition = BY_ACTION[action]
    attrs = {"expected_version": IntegerField(validators=[InputRequired()], widget=HiddenInput())}
    for name in action_fields(transition):
        attrs[name] = _field(name, transition)
    return type(f"{transition.action.title().replace('_', '')}Form", (FlaskForm,), attrs)
