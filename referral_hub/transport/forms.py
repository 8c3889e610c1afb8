"""Forms for the ride pages: book a leg, and one small form per ride action.

Forms only check the shape of input; whether a ride can be planned (site hours, time left,
the place) is the operations' rule and comes back as field errors.
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
    TextAreaField,
)
from wtforms.validators import AnyOf, InputRequired, Length, NumberRange, Optional
from wtforms.widgets import HiddenInput

from referral_hub.referrals.forms import DATETIME_LOCAL
from referral_hub.transport.lifecycle import RIDE_BY_ACTION, RIDE_REASON_TITLES
from referral_hub.transport.models import Leg, RideMode
from referral_hub.web.forms import options

# When a leg is for, per leg: the view keeps the appointment choice only when there is one.
WHEN_TITLES = {
    Leg.OUTBOUND: {
        "appointment": _l("In time for the appointment"),
        "now": _l("Now"),
        "at": _l("Arrive by a time"),
    },
    Leg.RETURN: {
        "appointment": _l("When the appointment starts"),
        "now": _l("Now"),
        "at": _l("Pick up at a time"),
        "will_call": _l("When the client calls (will-call)"),
    },
}


class BookForm(FlaskForm):
    """One leg of the trip; the view fills the vendor and "when" choices and the place label."""

    leg = HiddenField(default=Leg.OUTBOUND.value, validators=[AnyOf([leg.value for leg in Leg])])
    mode = RadioField(
        _l("How"),
        default=RideMode.VENDOR.value,
        choices=lambda: options((m.value, m.title) for m in RideMode),
    )
    vendor_org_id = SelectField(_l("Transport vendor"), choices=[], validate_choice=False)
    # The id "location" is what screen.js fills from the phone.
    place = StringField(
        _l("Pickup place"),
        id="location",
        validators=[Optional(), Length(max=200)],
        description=_l("An address, a ZIP code, a landmark or lat,lon."),
    )
    lat = HiddenField(id="lat")
    lon = HiddenField(id="lon")
    when = RadioField(_l("When"), choices=[], validate_choice=False)
    at = DateTimeLocalField(_l("Time (city time)"), format=DATETIME_LOCAL, validators=[Optional()])
    wheelchair = BooleanField(_l("Uses a wheelchair"))
    service_animal = BooleanField(_l("Travels with a service animal"))
    companions = IntegerField(
        _l("Companions travelling along"),
        default=0,
        validators=[Optional(), NumberRange(min=0, max=6)],
    )
    driver_notes = TextAreaField(
        _l("Notes for the driver (optional)"),
        validators=[Optional(), Length(max=500)],
        description=_l("Where to wait, what helps. No case details."),
    )
    booking_reference = StringField(
        _l("Booking reference (rideshare)"), validators=[Optional(), Length(max=80)]
    )


@cache
def ride_action_form_class(action: str) -> type[FlaskForm]:
    """A form class per ride action: the ride's version, and a reason when one is required."""
    transition = RIDE_BY_ACTION[action]
    attrs: dict = {
        "expected_version": IntegerField(validators=[InputRequired()], widget=HiddenInput())
    }
    if "reason_code" in transition.requires:
        reasons = transition.reasons

        def choices():
            return options(
                [("", _l("Choose…")), *((code, RIDE_REASON_TITLES[code]) for code in reasons)]
            )

        attrs["reason_code"] = SelectField(
            _l("Reason"), choices=choices, default="", id=f"{action}-reason_code"
        )
    return type(f"Ride{action.title().replace('_', '')}Form", (FlaskForm,), attrs)
