"""Referral rules: clients, consent, sending, every lifecycle transition, escalation.

Each transition locks the referral row (SELECT ... FOR UPDATE on PostgreSQL), checks the
declared table in lifecycle.py, applies its effects and writes one ReferralEvent, all in the
caller's transaction. A transition that lost a race raises Conflict with the current state.
"""

from __future__ import annotations

import re
import secrets
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any

from blinker import Namespace
from flask_babel import gettext as _
from sqlalchemy import select, update
from sqlalchemy.orm.exc import StaleDataError

from referral_hub.accounts.models import Membership, Organization, Role, User
from referral_hub.core.db import lock_row, utcnow
from referral_hub.core.errors import Conflict, Forbidden, ValidationFailed
from referral_hub.directory.models import Program, ProgramSite, Site
from referral_hub.extensions import db
from referral_hub.matching.questions import SCREENER_VERSION
from referral_hub.notify.operations import notify_users
from referral_hub.referrals.lifecycle import BY_ACTION, Side, Transition
from referral_hub.referrals.models import (
    OPEN,
    Client,
    Consent,
    ConsentMethod,
    Priority,
    RecordView,
    Referral,
    ReferralEvent,
    Status,
)

# Sent in the transition's transaction when a referral ends without the client getting there;
# transport listens and calls off the rides not started (DESIGN.md section 6). A signal keeps
# the import direction one way: transport builds on referrals, never the reverse.
referral_closed = Namespace().signal("referral-closed")
# Sent at the end of send_referral, in its transaction; the client portal issues a link.
referral_sent = Namespace().signal("referral-sent")
ENDS_THE_TRIP = frozenset(
    {Status.DECLINED, Status.CANCELLED, Status.NO_SHOW, Status.ENTERED_IN_ERROR}
)
PHONE_RE = re.compile(r"^\+?[0-9]{10,15}$")


@dataclass(frozen=True)
class Actor:
    """Who acts: a user with their sides on the referral, or the system / client / a driver."""

    sides: frozenset[Side]
    user: User | None = None
    organization_id: int | None = None
    label: str | None = None

    @classmethod
    def system(cls) -> Actor:
        return cls(frozenset({Side.SYSTEM}), label="system")


# --- clients ---------------------------------------------------------------------------------


def name_key(name: str) -> str:
    """Case-, accent- and spacing-insensitive form of a name, for duplicate hints."""
    text = unicodedata.normalize("NFKD", name or "")
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    return " ".join(re.sub(r"[^a-z0-9 ]+", " ", text.lower()).split())


def normalize_phone(phone: str | None) -> str | None:
    """Digits with an optional +; a 10-digit US number gets +1. Raises on nonsense."""
    if not phone or not phone.strip():
        return None
    digits = re.sub(r"[\s().-]", "", phone.strip())
    if re.fullmatch(r"[0-9]{10}", digits):
        digits = "+1" + digits
    elif re.fullmatch(r"1[0-9]{10}", digits):
        digits = "+" + digits
    if not PHONE_RE.match(digits):
        message = _("Enter a phone number with area code, or leave it empty.")
        raise ValidationFailed(message, fields={"phone": [message]})
    return digits


def possible_duplicates(
    organization_id: int, display_name: str, birth_year: int | None, phone: str | None
) -> list[Client]:
    """Clients of the organization who may be the same person: a hint, never a merge."""
    key = name_key(display_name)
    phone = normalize_phone(phone) if phone else None
    if not key:
        return []
    stmt = select(Client).where(
        Client.organization_id == organization_id, Client.anonymized_at.is_(None)
    )
    same_name = stmt.where(Client.name_key == key)
    if birth_year:
        same_name = same_name.where(Client.birth_year.in_([birth_year, None]))
    found = {c.id: c for c in db.session.scalars(same_name.limit(10))}
    if phone:
        for client in db.session.scalars(stmt.where(Client.phone == phone).limit(10)):
            found.setdefault(client.id, client)
    return list(found.values())


def create_client(
    organization: Organization,
    user: User | None,
    *,
    display_name: str,
    phone: str | None = None,
    preferred_language: str = "en",
    birth_year: int | None = None,
    sms_ok: bool = False,
    quiet_hours_start: time | None = None,
    quiet_hours_end: time | None = None,
    neutral_sender: bool = False,
) -> Client:
    """Record a client with the minimum personal data."""
    errors: dict[str, list[str]] = {}
    if not (display_name or "").strip():
        errors["display_name"] = [_("Give a name the person chooses to be called by.")]
    try:
        phone = normalize_phone(phone)
    except ValidationFailed as exc:
        errors.update(exc.fields)
    year = utcnow().year
    if birth_year is not None and not year - 120 <= birth_year <= year:
        errors["birth_year"] = [_("Enter a year between %(a)d and %(b)d.", a=year - 120, b=year)]
    if sms_ok and not phone:
        errors["sms_ok"] = [_("Text messages need a phone number.")]
    if errors:
        raise ValidationFailed(_("Please correct the marked fields."), fields=errors)
    client = Client(
        organization_id=organization.id,
        created_by_id=user.id if user else None,
        display_name=display_name.strip(),
        name_key=name_key(display_name),
        phone=phone,
        preferred_language=preferred_language or "en",
        birth_year=birth_year,
        sms_ok=sms_ok,
        quiet_hours_start=quiet_hours_start,
        quiet_hours_end=quiet_hours_end,
        neutral_sender=neutral_sender,
    )
    db.session.add(client)
    db.session.flush()
    return client


def record_view(
    user: User, client: Client, *, referral: Referral | None = None, context: str = "page"
) -> None:
    """Log that a user opened a client's record (who, when, which); never the contents."""
    membership = user.primary_membership
    db.session.add(
        RecordView(
            client_id=client.id,
            referral_id=referral.id if referral else None,
            user_id=user.id,
            organization_id=membership.organization_id if membership else None,
            context=context,
            created_at=utcnow(),
        )
    )
    db.session.flush()


# --- consent ---------------------------------------------------------------------------------


def record_consent(
    client: Client,
    program: Program,
    user: User,
    *,
    method: ConsentMethod | str,
    purpose: str | None = None,
    expires_at: datetime | None = None,
    override_reason: str | None = None,
) -> Consent:
    """Record the client's consent to share a referral with a program's organization."""
    method = ConsentMethod(method)
    if method == ConsentMethod.EMERGENCY_OVERRIDE:
        if Role.COORDINATOR not in user.roles and Role.ADMIN not in user.roles:
            raise Forbidden(_("Only a coordinator can record an emergency override."))
        if not (override_reason or "").strip():
            message = _("An emergency override needs a reason.")
            raise ValidationFailed(message, fields={"override_reason": [message]})
    if expires_at is not None and expires_at <= utcnow():
        message = _("The consent would already have expired.")
        raise ValidationFailed(message, fields={"expires_at": [message]})
    consent = Consent(
        client_id=client.id,
        program_id=program.id,
        organization_id=program.organization_id,
        method=method,
        purpose=purpose or "referral for services",
        override_reason=(override_reason or "").strip() or None,
        recorded_by_id=user.id,
        given_at=utcnow(),
        expires_at=expires_at,
    )
    db.session.add(consent)
    db.session.flush()
    return consent


def consent_is_valid(consent: Consent | None, client: Client, program: Program) -> bool:
    if consent is None or consent.revoked_at is not None:
        return False
    if consent.expires_at is not None and consent.expires_at <= utcnow():
        return False
    return consent.client_id == client.id and consent.program_id == program.id


def revoke_consent(consent: Consent, user: User | None) -> list[Referral]:
    """Revoke a consent; the open referrals that rest on it are cancelled with that reason."""
    if consent.revoked_at is not None:
        return []
    consent.revoked_at = utcnow()
    consent.revoked_by_id = user.id if user else None
    cancelled = []
    for referral in db.session.scalars(
        select(Referral).where(Referral.consent_id == consent.id, Referral.status.in_(OPEN))
    ):
        perform(
            referral,
            "cancel",
            Actor(frozenset({Side.CLIENT, Side.COORDINATOR}), user=user, label="consent"),
            reason_code="consent_revoked",
        )
        cancelled.append(referral)
    db.session.flush()
    return cancelled


# --- sending ---------------------------------------------------------------------------------


def send_referral(
    *,
    client: Client,
    program: Program,
    user: User,
    organization: Organization,
    consent: Consent | None,
    site: Site | None = None,
    priority: Priority | str = Priority.ROUTINE,
    note: str | None = None,
    answers: dict[str, Any] | None = None,
    rerouted_from: Referral | None = None,
) -> Referral:
    """Create a referral and send it: consent checked, response deadline set, slot held."""
    errors: dict[str, list[str]] = {}
    if not program.is_active or not program.accepts_responder_referrals:
        errors["program_id"] = [_("This program does not take referrals right now.")]
    if site is not None and not db.session.scalar(
        select(ProgramSite.id).where(
            ProgramSite.program_id == program.id, ProgramSite.site_id == site.id
        )
    ):
        errors["site_id"] = [_("The program is not offered at this site.")]
    if not consent_is_valid(consent, client, program):
        errors["consent"] = [_("Record the person's consent for this program first.")]
    if errors:
        raise ValidationFailed(_("The referral cannot be sent yet."), fields=errors)
    referral = Referral(
        client=client,
        program=program,
        site=site,
        provider_org_id=program.organization_id,
        referring_org_id=organization.id,
        referring_user_id=user.id,
        consent=consent,
        rerouted_from=rerouted_from,
        status=Status.DRAFT,
        priority=Priority(priority),
        note=(note or "").strip() or None,
        answers=answers or {},
        screener_version=SCREENER_VERSION,
    )
    db.session.add(referral)
    db.session.flush()
    sides = frozenset({Side.REFERRER})
    perform(referral, "send", Actor(sides, user=user, organization_id=organization.id))
    if rerouted_from is not None:
        _event(
            rerouted_from,
            "reroute",
            None,
            None,
            Actor(sides, user=user, organization_id=organization.id),
            data={"to_referral_id": referral.id},
        )
    referral_sent.send(referral, user=user)
    return referral


def reroute(
    referral: Referral, program: Program, user: User, *, consent: Consent, site: Site | None = None
) -> Referral:
    """Send the same person to the next program after a decline or an expiry (once)."""
    referral = lock(referral.id) or referral
    expired = referral.status == Status.CANCELLED and referral.reason_code == "expired"
    if referral.status != Status.DECLINED and not expired:
        raise Conflict(
            _("Only a declined or expired referral can be re-routed."), status=referral.status.value
        )
    already = db.session.scalar(select(Referral.id).where(Referral.rerouted_from_id == referral.id))
    if already is not None:
        raise Conflict(
            _("This referral was already re-routed."),
            status=referral.status.value,
            rerouted_to=already,
        )
    if program.id == referral.program_id:
        message = _("Choose another program.")
        raise ValidationFailed(message, fields={"program_id": [message]})
    return send_referral(
        client=referral.client,
        program=program,
        user=user,
        organization=referral.referring_org,
        consent=consent,
        site=site,
        priority=referral.priority,
        note=referral.note,
        answers=dict(referral.answers),
        rerouted_from=referral,
    )


# --- transitions -----------------------------------------------------------------------------


def lock(referral_id: int) -> Referral | None:
    """Load a referral for change, holding its row lock until the transaction ends."""
    return lock_row(db.session, Referral, referral_id)


def perform(
    referral: Referral,
    action: str,
    actor: Actor,
    *,
    expected_version: int | None = None,
    **supplied: Any,
) -> Referral:
    """Apply one declared transition; Conflict when the state or version no longer fits."""
    transition = BY_ACTION.get(action)
    if transition is None:
        raise ValidationFailed(_("Unknown action."), fields={"action": [_("Unknown action.")]})
    if not transition.sides & actor.sides:
        raise Forbidden(_("You cannot do this to this referral."))
    current = lock(referral.id) or referral
    if expected_version is not None and current.version != expected_version:
        raise Conflict(
            _("Someone else changed this referral first. Reload and try again."),
            status=current.status.value,
            version=current.version,
        )
    if current.status not in transition.sources:
        raise Conflict(
            _(
                "This referral is now “%(status)s”: it cannot be changed that way.",
                status=current.status.title,
            ),
            status=current.status.value,
            version=current.version,
        )
    values = _check_supplied(transition, current, supplied)
    before = current.status
    target = _apply(transition, current, values)
    if target is not None:
        current.status = target
    data = {
        k: (v.isoformat() if isinstance(v, datetime) else v)
        for k, v in values.items()
        if k in ("appointment_at", "outcome", "at")
    }
    _event(
        current,
        action,
        before,
        current.status,
        actor,
        reason_code=values.get("reason_code"),
        data=data,
    )
    try:
        db.session.flush()
    except StaleDataError as exc:
        # SQLite has no row locks: the version column catches the writer that lost the race.
        raise Conflict(
            _("Someone else changed this referral first. Reload and try again."),
            status=before.value,
        ) from exc
    if current.status != before and current.status in ENDS_THE_TRIP:
        referral_closed.send(current)
    _notify(current, action)
    return current


def note_event(
    referral: Referral, action: str, actor: Actor, *, data: dict[str, Any] | None = None
) -> ReferralEvent:
    """Log a notable action that is not a transition (a ride booked, a ride no-show)."""
    return _event(referral, action, referral.status, referral.status, actor, data=data)


def _check_supplied(
    transition: Transition, referral: Referral, supplied: dict[str, Any]
) -> dict[str, Any]:
    values = {k: v for k, v in supplied.items() if v not in (None, "")}
    errors: dict[str, list[str]] = {}
    for name in transition.requires:
        if name not in values:
            errors[name] = [_("This is required.")]
    code = values.get("reason_code") or values.get("outcome")
    if transition.reasons and code is not None and code not in transition.reasons:
        key = "outcome" if "outcome" in transition.requires else "reason_code"
        errors[key] = [_("Choose one of the listed reasons.")]
    appointment = values.get("appointment_at")
    if appointment is not None:
        if not isinstance(appointment, datetime) or appointment.tzinfo is None:
            errors["appointment_at"] = [_("Give a date and time.")]
        elif appointment < utcnow() - timedelta(minutes=5):
            errors["appointment_at"] = [_("The appointment cannot be in the past.")]
    code = values.get("code")
    if (
        transition.action == "hand_off"
        and code is not None
        and str(code).strip() != (referral.handoff_code or "")
    ):
        errors["code"] = [_("This code does not match the client's code.")]
    if errors:
        raise ValidationFailed(_("Please correct the marked fields."), fields=errors)
    return values


def _apply(transition: Transition, referral: Referral, values: dict[str, Any]) -> Status | None:
    """Effects of each action; returns the state to move to (None: stay)."""
    now = utcnow()
    action = transition.action
    if action == "send":
        referral.sent_at = now
        hours = referral.program.response_target_hours
        referral.response_due_at = now + timedelta(hours=hours)
        referral.handoff_code = f"{secrets.randbelow(10**6):06d}"
        referral.holds_slot = _hold_slot(referral.program_id)
    elif action == "accept":
        referral.accepted_at = now
        if values.get("appointment_at"):
            referral.appointment_at = values["appointment_at"]
    elif action == "schedule":
        referral.appointment_at = values["appointment_at"]
    elif action == "resume":
        return Status.ACCEPTED if referral.accepted_at else Status.SENT
    elif action == "arrive":
        referral.arrived_at = values.get("at") or now
    elif action == "hand_off":
        referral.handed_off_at = values.get("at") or now
        referral.handed_off_to = str(values["handed_off_to"]).strip()[:120]
        referral.arrived_at = referral.arrived_at or referral.handed_off_at
        referral.holds_slot = False  # the slot is now used, not released
    elif action == "complete":
        referral.outcome = values["outcome"]
    if "reason_code" in values:
        referral.reason_code = values["reason_code"]
    if "note" in values and action in (
        "decline",
        "hold",
        "cancel",
        "no_show",
        "complete",
        "enter_in_error",
    ):
        referral.reason_note = str(values["note"]).strip()[:500]
    if "reason_note" in values:
        referral.reason_note = str(values["reason_note"]).strip()[:500]
    if "provider_notes" in values:
        referral.provider_notes = str(values["provider_notes"])
    target = transition.target
    if action == "expire":
        referral.reason_code = "expired"
    if target is not None and target.terminal:
        referral.closed_at = now
        if referral.holds_slot:
            _release_slot(referral.program_id)
            referral.holds_slot = False
    return target


def _hold_slot(program_id: int) -> bool:
    """Take one open slot if the program tracks them and has one (atomic in SQL)."""
    result = db.session.execute(
        update(Program)
        .where(Program.id == program_id, Program.open_slots.is_not(None), Program.open_slots > 0)
        .values(open_slots=Program.open_slots - 1)
    )
    return result.rowcount == 1


def _release_slot(program_id: int) -> None:
    db.session.execute(
        update(Program)
        .where(Program.id == program_id, Program.open_slots.is_not(None))
        .values(open_slots=Program.open_slots + 1)
    )


def _event(
    referral: Referral,
    action: str,
    before: Status | None,
    after: Status | None,
    actor: Actor,
    *,
    reason_code: str | None = None,
    data: dict[str, Any] | None = None,
) -> ReferralEvent:
    event = ReferralEvent(
        referral_id=referral.id,
        action=action,
        from_status=before,
        to_status=after,
        actor_user_id=actor.user.id if actor.user else None,
        actor_org_id=actor.organization_id,
        actor_label=actor.label,
        reason_code=reason_code,
        data=data or {},
        created_at=utcnow(),
    )
    db.session.add(event)
    return event


# --- notifications ---------------------------------------------------------------------------

STAFF_TEMPLATES = {
    "send": "referral_new",
    "accept": "referral_accepted",
    "decline": "referral_declined",
    "hand_off": "referral_handed_off",
    "no_show": "referral_no_show",
    "cancel": "referral_cancelled",
    "expire": "referral_cancelled",
}


def provider_staff(organization_id: int) -> list[User]:
    return list(
        db.session.scalars(
            select(User)
            .join(Membership, Membership.user_id == User.id)
            .where(
                Membership.organization_id == organization_id,
                Membership.role.in_([Role.PROVIDER_STAFF, Role.PROVIDER_ADMIN]),
                User.is_active,
            )
        )
    )


def coordinators() -> list[User]:
    return list(
        db.session.scalars(
            select(User)
            .join(Membership, Membership.user_id == User.id)
            .where(Membership.role == Role.COORDINATOR, User.is_active)
            .distinct()
        )
    )


def _notify(referral: Referral, action: str) -> None:
    template = STAFF_TEMPLATES.get(action)
    if template is None:
        return
    if action == "send":
        recipients: Iterable[User] = provider_staff(referral.provider_org_id)
    else:
        recipients = [referral.referring_user] if referral.referring_user else []
    notify_users(
        recipients,
        template,
        # The code, not its title: each recipient reads it in their own language.
        params={
            "program_name": referral.program.name,
            "referral_id": referral.id,
            "due_at": referral.response_due_at,
            "priority": referral.priority.value,
            "reason": referral.reason_code,
        },
        referral_id=referral.id,
        dedupe_key=f"referral:{referral.id}:{action}",
    )


# --- escalation and expiry (the worker) ------------------------------------------------------


@dataclass
class SweepReport:
    escalated: list[int] = field(default_factory=list)
    expired: list[int] = field(default_factory=list)


def escalate_overdue(now: datetime | None = None, *, expire_after_hours: int = 72) -> SweepReport:
    """Escalate referrals past their response deadline (once), expire long-unanswered ones."""
    now = now or utcnow()
    report = SweepReport()
    overdue = select(Referral.id).where(
        Referral.status == Status.SENT, Referral.response_due_at < now
    )
    for referral_id in db.session.scalars(overdue.where(Referral.escalated_at.is_(None))):
        referral = lock(referral_id)
        if referral is None or referral.status != Status.SENT or referral.escalated_at:
            continue  # another worker got there first
        referral.escalated_at = now
        _event(referral, "escalate", Status.SENT, Status.SENT, Actor.system())
        recipients = [
            *coordinators(),
            *([referral.referring_user] if referral.referring_user else []),
        ]
        notify_users(
            {u.id: u for u in recipients}.values(),
            "referral_escalated",
            params={
                "program_name": referral.program.name,
                "referral_id": referral.id,
                "hours": referral.program.response_target_hours,
            },
            referral_id=referral.id,
            dedupe_key=f"referral:{referral.id}:escalate",
        )
        report.escalated.append(referral.id)
    cutoff = now - timedelta(hours=expire_after_hours)
    for referral_id in db.session.scalars(
        select(Referral.id).where(Referral.status == Status.SENT, Referral.response_due_at < cutoff)
    ):
        referral = lock(referral_id)
        if referral is not None and referral.status == Status.SENT:
            perform(referral, "expire", Actor.system())
            report.expired.append(referral.id)
    db.session.flush()
    return report
