"""What the referral page is built from: the action forms the lifecycle table allows, the
values they hand to `perform`, and the timeline.

No routes here (they all live in views.py); these helpers never commit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from referral_hub import policies
from referral_hub.accounts.models import Organization
from referral_hub.core.db import city_tz
from referral_hub.extensions import db
from referral_hub.referrals.forms import action_fields, action_form_class
from referral_hub.referrals.lifecycle import BY_ACTION, REASON_TITLES, Side, Transition, available
from referral_hub.referrals.models import Referral, ReferralEvent, Status

# Actions the event log holds beyond the lifecycle table.
EVENT_TITLES = {
    "escalate": _l("Escalated: not answered in time"),
    "reroute": _l("Re-routed to another program"),
    "ride_booked": _l("Ride booked"),
    "client_link": _l("Client link issued"),
    "client_confirmed": _l("The client confirmed"),
    "client_reschedule_requested": _l("The client asked for another time"),
    "client_reply": _l("The client replied by text message"),
    "client_check_locked": _l("Client link locked after failed checks"),
    "client_sms_stopped": _l("The client stopped text messages"),
    "client_sms_started": _l("The client allowed text messages again"),
    "ride_no_show": _l("Client was not at the ride's pickup"),
}
ACTOR_LABELS = {
    "system": _l("System"),
    "client": _l("The client"),
    "consent": _l("Consent revoked"),
    "driver": _l("Driver"),
    "dispatcher": _l("Dispatcher"),
    "ride": _l("Ride"),
}


def city_to_utc(moment: datetime | None) -> datetime | None:
    """A wall-clock time typed in the city's time zone, as an aware UTC datetime."""
    if moment is None:
        return None
    return moment.replace(tzinfo=city_tz()).astimezone(UTC)


def acting_sides(user, referral: Referral) -> frozenset[Side]:
    """The user's sides on the referral; pages never act as the system."""
    return frozenset(policies.referral_sides(user, referral) - {Side.SYSTEM})


@dataclass
class ActionForm:
    transition: Transition
    form: FlaskForm
    fields: tuple[str, ...]


def action_forms(
    referral: Referral, sides: frozenset[Side], kept: dict[str, FlaskForm] | None = None
) -> list[ActionForm]:
    """A form per action the sides may take now; a submitted form is kept with its errors."""
    kept = kept or {}
    found = []
    for transition in available(referral.status, set(sides)):
        form = kept.get(transition.action)
        if form is None:
            form = action_form_class(transition.action)(formdata=None)
            if "handed_off_to" in form:
                form.handed_off_to.data = current_user.name
        form.expected_version.data = referral.version  # a re-render answers the current state
        found.append(ActionForm(transition, form, action_fields(transition)))
    return found


def action_values(form: FlaskForm) -> dict[str, Any]:
    """The submitted fields as `perform` takes them: city times converted to UTC."""
    values: dict[str, Any] = {}
    for field in form:
        if field.name in ("csrf_token", "expected_version"):
            continue
        value = field.data
        if isinstance(value, datetime):
            value = city_to_utc(value)
        elif isinstance(value, str):
            value = value.strip()
        values[field.name] = value
    return values


# --- timeline -------------------------------------------------------------------------------


@dataclass
class Entry:
    at: datetime
    title: str
    who: str
    organization: str | None
    reason: str | None
    appointment_at: datetime | None
    outcome: str | None
    to_referral_id: int | None
    change: str | None


def timeline(referral: Referral, view: dict[str, Any], sides: set[Side]) -> list[Entry]:
    """Every event, oldest first; details the viewer may not see are left out.

    Coordinators get the full record: each actor's organization and every state change. On a
    sensitive program the referring side sees the provider as an organization, never the
    names of its staff.
    """
    events = db.session.scalars(
        select(ReferralEvent)
        .where(ReferralEvent.referral_id == referral.id)
        .options(selectinload(ReferralEvent.actor_user))
        .order_by(ReferralEvent.id)
    ).all()
    full = Side.COORDINATOR in sides
    hide_staff = referral.program.sensitive and not sides & {Side.PROVIDER, Side.COORDINATOR}
    withheld = set(view["withheld"])
    return [_entry(event, full, hide_staff, withheld, referral) for event in events]


def _entry(
    event: ReferralEvent, full: bool, hide_staff: bool, withheld: set[str], referral: Referral
) -> Entry:
    transition = BY_ACTION.get(event.action)
    title = transition.label if transition else EVENT_TITLES.get(event.action, event.action)
    by_provider = event.actor_org_id is not None and event.actor_org_id == referral.provider_org_id
    if hide_staff and by_provider:
        who = referral.provider_org.name
    elif event.actor_user is not None:
        who = event.actor_user.name
    else:
        who = ACTOR_LABELS.get(event.actor_label or "", event.actor_label or "")
    organization = None
    if full and event.actor_org_id:
        organization = db.session.get(Organization, event.actor_org_id)  # identity-mapped
    data = event.data or {}
    appointment = data.get("appointment_at") if "appointment_at" not in withheld else None
    outcome = data.get("outcome") if "outcome" not in withheld else None
    change = None
    if full and event.from_status and event.to_status and event.from_status != event.to_status:
        change = f"{Status(event.from_status).title} → {Status(event.to_status).title}"
    reason = event.reason_code
    return Entry(
        at=event.created_at,
        title=str(title),
        who=str(who),
        organization=organization.name if organization else None,
        reason=str(REASON_TITLES.get(reason, reason)) if reason else None,
        appointment_at=datetime.fromisoformat(appointment) if appointment else None,
        outcome=str(REASON_TITLES.get(outcome, outcome)) if outcome else None,
        to_referral_id=data.get("to_referral_id"),
        change=change,
    )
