"""Client links and what the client's page shows (DESIGN.md sections 8 and 9).

A link is a random token of which only the hash is stored. It lives while the referral is
open (at least until some days after its appointment) and for CLIENT_LINK_DAYS_AFTER days
after the referral closes; cancelling the referral revokes it. Unknown, expired, revoked and
locked tokens all look alike to the caller.

The client answers through the link (confirm, ask for another time, cancel); each answer
names the referral version the page showed, so a replayed or stale form changes nothing. On a
sensitive program the page first asks a second check, locked after some failures.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from flask import current_app
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select, update
from sqlalchemy.orm.attributes import flag_modified
from sqlalchemy.orm.exc import StaleDataError

from referral_hub.accounts.models import User
from referral_hub.core.db import utcnow
from referral_hub.core.errors import AppError, Conflict, ValidationFailed
from referral_hub.core.security import new_token, token_hash, tokens_equal
from referral_hub.directory.models import Site
from referral_hub.extensions import db
from referral_hub.notify.operations import notify_users
from referral_hub.portal.models import ClientLink
from referral_hub.referrals import operations as referral_ops
from referral_hub.referrals.lifecycle import CANCEL_REASONS, Side, available
from referral_hub.referrals.models import Referral, ReferralEvent, Status
from referral_hub.transport.operations import RideSummary, ride_summary, rides_for_referral

DEFAULT_DAYS_AFTER = 14
LINK_PREFIX = "c_"  # tells a client link from a driver link (d_) at a glance
# A cancelled referral (or one entered in error) has no page to show: its links are revoked.
REVOKED_WITH = frozenset({Status.CANCELLED, Status.ENTERED_IN_ERROR})

# The referral's state as the client reads it: plain words, no staff vocabulary.
CLIENT_STATUS = {
    Status.DRAFT: _l("Your referral has not been sent yet."),
    Status.SENT: _l("We asked the program to see you. They will answer soon."),
    Status.ACCEPTED: _l("The program expects you."),
    Status.ON_HOLD: _l("Your referral is paused for now. The program will contact you."),
    Status.EN_ROUTE: _l("You are on your way."),
    Status.ARRIVED: _l("You have arrived."),
    Status.HANDED_OFF: _l("The program has welcomed you."),
    Status.COMPLETED: _l("This referral is complete."),
    Status.DECLINED: _l("The program cannot see you. Your responder will help you find another."),
    Status.NO_SHOW: _l("You were not seen at the appointment. Call to ask for another time."),
    Status.CANCELLED: _l("This referral was cancelled."),
    Status.ENTERED_IN_ERROR: _l("This referral was cancelled."),
}
NEUTRAL_LABEL = _l("Your appointment")


def days_after() -> timedelta:
    return timedelta(days=current_app.config.get("CLIENT_LINK_DAYS_AFTER", DEFAULT_DAYS_AFTER))


def link_expiry(referral: Referral, now: datetime) -> datetime:
    """Some days after the referral closed or, while it is open, after its appointment."""
    if referral.closed_at is not None:
        return referral.closed_at + days_after()
    return max(referral.appointment_at or now, now) + days_after()


def live_until(link: ClientLink) -> datetime:
    """When a link stops working: an appointment set after it was issued extends it; once the
    referral closes, the days count from the closing."""
    referral = link.referral
    if referral.closed_at is not None:
        return referral.closed_at + days_after()
    if referral.appointment_at is not None:
        return max(link.expires_at, referral.appointment_at + days_after())
    return link.expires_at


def create_link(
    referral: Referral, user: User | None, now: datetime | None = None, *, revoke: bool = False
) -> str:
    """Issue a link and return its token (the only time it exists in plain text).

    Earlier links keep working unless `revoke` is set: a client may hold the one texted at
    sending and also scan a fresh QR code.
    """
    now = now or utcnow()
    if referral.status in REVOKED_WITH:
        raise Conflict(_("This referral was cancelled: it has no client page."))
    expires_at = link_expiry(referral, now)
    if expires_at <= now:
        raise Conflict(_("This referral closed too long ago to share it with the client."))
    if revoke:
        revoke_links(referral, now)
    token = new_token(LINK_PREFIX)
    db.session.add(
        ClientLink(
            referral_id=referral.id,
            token_hash=token_hash(token),
            expires_at=expires_at,
            created_by_id=user.id if user else None,
        )
    )
    db.session.flush()
    return token


def issue_link(referral: Referral, user: User | None, *, revoke: bool = False) -> str:
    """A fresh link on demand (responder screen, CLI), noted on the referral's log."""
    token = create_link(referral, user, revoke=revoke)
    membership = user.primary_membership if user else None
    actor = referral_ops.Actor(
        frozenset(),
        user=user,
        organization_id=membership.organization_id if membership else None,
        label=None if user else "system",
    )
    referral_ops.note_event(referral, "client_link", actor, data={"revoked_older": revoke})
    return token


def revoke_links(referral: Referral, now: datetime | None = None) -> int:
    """Stop every live link of the referral; returns how many were stopped."""
    now = now or utcnow()
    links = db.session.scalars(
        select(ClientLink).where(
            ClientLink.referral_id == referral.id, ClientLink.revoked_at.is_(None)
        )
    ).all()
    for link in links:
        link.revoked_at = now
    db.session.flush()
    return len(links)


def link_for_token(token: str, now: datetime | None = None) -> ClientLink | None:
    """The live link for a token, or None (unknown, revoked or expired: all look alike)."""
    now = now or utcnow()
    if not token or len(token) > 100:
        return None
    link = db.session.scalar(select(ClientLink).where(ClientLink.token_hash == token_hash(token)))
    if link is None or link.revoked_at is not None or link.locked_at is not None:
        return None
    if live_until(link) <= now:
        return None
    return link


def client_url(token: str) -> str:
    """The full address of a client page, from BASE_URL (works outside a request too)."""
    path = current_app.url_map.bind("").build("portal.page", {"token": token})
    return current_app.config["BASE_URL"].rstrip("/") + path


@referral_ops.referral_sent.connect
def link_on_send(referral: Referral, user: User | None = None, **_extra: Any) -> str:
    """Every sent referral gets a client link (the outbox texts it, when the client agrees)."""
    return create_link(referral, user)


@referral_ops.referral_closed.connect
def revoke_on_cancel(referral: Referral, **_extra: Any) -> None:
    """Cancelling a referral ends its client page; other endings keep it for some days."""
    if referral.status in REVOKED_WITH:
        revoke_links(referral)


# --- what the client's page shows ------------------------------------------------------------


@dataclass(frozen=True)
class ClientPage:
    """The facts of the client's page; no notes, no staff names, no other clients."""

    referral_id: int
    preferred_language: str
    status: Status
    status_text: str
    program_name: str | None  # None: the client asked for neutral wording
    site: Site | None
    show_site_name: bool
    phone: str | None
    appointment_at: datetime | None
    handoff_code: str | None
    documents: list[str] = field(default_factory=list)
    rides: list[RideSummary] = field(default_factory=list)
    version: int = 0  # carried by every answer form: a replayed or stale form is refused
    actions: tuple[str, ...] = ()  # the answers that fit now, in CLIENT_ACTIONS order
    answer: str | None = None  # the client's latest answer still standing


def neutral(referral: Referral) -> bool:
    """A sensitive program is not named to a client who asked for neutral wording."""
    return referral.program.sensitive and referral.client.neutral_sender


def client_page(link: ClientLink, now: datetime | None = None) -> ClientPage:
    """Gather the page's facts; reads only (a GET must change nothing)."""
    referral = link.referral
    answer = latest_answer(referral)
    hidden = neutral(referral)
    site = referral.site
    show_code = referral.handed_off_at is None and not referral.status.terminal
    return ClientPage(
        referral_id=referral.id,
        preferred_language=referral.client.preferred_language,
        status=referral.status,
        status_text=str(CLIENT_STATUS[referral.status]),
        program_name=None if hidden else referral.program.name,
        site=site,
        show_site_name=not hidden,
        phone=(site.phone if site else None) or referral.program.phone,
        appointment_at=referral.appointment_at,
        handoff_code=referral.handoff_code if show_code else None,
        documents=list(referral.program.required_documents or []),
        rides=[ride_summary(ride) for ride in rides_for_referral(referral.id)],
        version=referral.version,
        actions=client_actions(referral, answer, now),
        answer=answer,
    )


# --- the client's answers --------------------------------------------------------------------

CONFIRM, RESCHEDULE, CANCEL = "confirm", "reschedule", "cancel"
CLIENT_ACTIONS = (CONFIRM, RESCHEDULE, CANCEL)
# The event each answer writes; the titles are in referrals/views_actions.EVENT_TITLES.
ANSWER_EVENTS = {CONFIRM: "client_confirmed", RESCHEDULE: "client_reschedule_requested"}
# A new appointment set by the program answers the client: their earlier answer no longer
# stands (the page offers confirming again).
ANSWER_RESETS = ("schedule",)
STAFF_TEMPLATES = {CONFIRM: "referral_client_confirmed", RESCHEDULE: "referral_client_reschedule"}

DAY_PARTS = {
    "morning": _l("Morning"),
    "afternoon": _l("Afternoon"),
    "evening": _l("Evening"),
}
MAX_PREFERENCES = 3
PREFERENCE_DAYS = 14  # the days offered, from tomorrow
# The reasons a client may give, in their words; each is a code of lifecycle.CANCEL_REASONS.
CLIENT_CANCEL_REASONS = {
    "client_declined": _l("I do not want to go any more"),
    "referred_elsewhere": _l("I found help somewhere else"),
    "other": _l("Another reason"),
}
assert set(CLIENT_CANCEL_REASONS) <= set(CANCEL_REASONS)


class StaleForm(AppError):
    """A form that does not fit the referral any more: replayed, out of date or altered."""

    status = 400
    code = "stale_form"


def stale() -> StaleForm:
    """The refusal of a replayed, out-of-date or altered answer (nothing is changed)."""
    return StaleForm(
        _("This page was out of date, so nothing was changed. Please look at it again.")
    )


def client_actor(*, cancelling: bool = False) -> referral_ops.Actor:
    """The client through their link: a lifecycle side only for the transition it may take."""
    sides = frozenset({Side.CLIENT}) if cancelling else frozenset()
    return referral_ops.Actor(sides, label="client")


def latest_answer(referral: Referral) -> str | None:
    """The client's answer that still stands (CONFIRM, RESCHEDULE) or None, in one query."""
    action = db.session.scalar(
        select(ReferralEvent.action)
        .where(
            ReferralEvent.referral_id == referral.id,
            ReferralEvent.action.in_([*ANSWER_EVENTS.values(), *ANSWER_RESETS]),
        )
        .order_by(ReferralEvent.id.desc())
        .limit(1)
    )
    return next((a for a, event in ANSWER_EVENTS.items() if event == action), None)


def client_actions(
    referral: Referral, answer: str | None, now: datetime | None = None
) -> tuple[str, ...]:
    """The answers that fit the referral now; the page shows these and no others."""
    now = now or utcnow()
    found = []
    accepted = referral.status == Status.ACCEPTED
    upcoming = referral.appointment_at is not None and referral.appointment_at > now
    if accepted and upcoming and answer != CONFIRM:
        found.append(CONFIRM)
    if accepted and answer != RESCHEDULE:
        found.append(RESCHEDULE)
    if any(t.action == "cancel" for t in available(referral.status, {Side.CLIENT})):
        found.append(CANCEL)
    return tuple(found)


@dataclass(frozen=True)
class Preference:
    """A time that suits the client: a day, a part of the day, or both."""

    day: date | None
    part: str | None

    def as_data(self) -> dict[str, str | None]:
        return {"date": self.day.isoformat() if self.day else None, "part": self.part}


def city_today(now: datetime | None = None) -> date:
    return (now or utcnow()).astimezone(ZoneInfo(current_app.config["TIMEZONE"])).date()


def preference_days(now: datetime | None = None) -> list[date]:
    """The days the client may choose from: tomorrow and the PREFERENCE_DAYS - 1 after it."""
    today = city_today(now)
    return [today + timedelta(days=n) for n in range(1, PREFERENCE_DAYS + 1)]


def preferences_from(
    pairs: list[tuple[str | None, str | None]], now: datetime | None = None
) -> list[Preference]:
    """Structured preferences from (ISO day, day part) pairs; empty pairs are dropped."""
    days = {d.isoformat(): d for d in preference_days(now)}
    found: list[Preference] = []
    for day, part in pairs:
        if not day and not part:
            continue
        if (day and day not in days) or (part and part not in DAY_PARTS):
            raise ValidationFailed(_("Choose a day and a time of day from the lists."))
        preference = Preference(days[day] if day else None, part or None)
        if preference not in found:
            found.append(preference)
    if len(found) > MAX_PREFERENCES:
        raise ValidationFailed(_("Choose at most three times."))
    return found


def _answerable(link: ClientLink, action: str, version: int, now: datetime) -> Referral:
    """The referral, locked, when the form's version is current and the answer fits."""
    referral = referral_ops.lock(link.referral_id) or link.referral
    if referral.version != version:
        raise stale()
    if action not in client_actions(referral, latest_answer(referral), now):
        raise stale()
    link.last_used_at = now
    return referral


def _record(referral: Referral, action: str, data: dict[str, Any], now: datetime) -> None:
    """Write the answer's event and bump the referral's version: the same form cannot count
    twice, and a page shown before this answer is out of date."""
    version = referral.version
    referral.updated_at = now  # any UPDATE of the row increments version_id_col
    flag_modified(referral, "updated_at")  # an UPDATE even if the clock has not moved
    referral_ops.note_event(referral, ANSWER_EVENTS[action], client_actor(), data=data)
    try:
        db.session.flush()
    except StaleDataError as exc:  # SQLite: another answer won the race
        raise stale() from exc
    recipients = referral_ops.provider_staff(referral.provider_org_id)
    if referral.referring_user is not None:
        recipients.append(referral.referring_user)
    notify_users(
        recipients,
        STAFF_TEMPLATES[action],
        params={"program_name": referral.program.name, "referral_id": referral.id},
        referral_id=referral.id,
        dedupe_key=f"referral:{referral.id}:{ANSWER_EVENTS[action]}:{version}",
    )


def confirm(link: ClientLink, version: int, now: datetime | None = None) -> Referral:
    """The client will be there: noted for the program and the referring responder."""
    now = now or utcnow()
    referral = _answerable(link, CONFIRM, version, now)
    appointment = referral.appointment_at
    data = {"appointment_at": appointment.isoformat() if appointment else None}
    _record(referral, CONFIRM, data, now)
    return referral


def ask_for_time(
    link: ClientLink, version: int, preferences: list[Preference], now: datetime | None = None
) -> Referral:
    """The client asks for another time; no preferences means any time suits them."""
    now = now or utcnow()
    referral = _answerable(link, RESCHEDULE, version, now)
    data = {"preferences": [p.as_data() for p in preferences[:MAX_PREFERENCES]]}
    _record(referral, RESCHEDULE, data, now)
    return referral


def cancel(
    link: ClientLink, version: int, reason_code: str, now: datetime | None = None
) -> Referral:
    """The client cancels with one of their reasons; the lifecycle revokes the link."""
    now = now or utcnow()
    if reason_code not in CLIENT_CANCEL_REASONS:
        message = _("Choose one of the listed reasons.")
        raise ValidationFailed(message, fields={"reason": [message]})
    referral = _answerable(link, CANCEL, version, now)
    try:
        return referral_ops.perform(
            referral,
            "cancel",
            client_actor(cancelling=True),
            expected_version=version,
            reason_code=reason_code,
        )
    except Conflict as exc:
        raise stale() from exc


# --- the second check (sensitive programs) ---------------------------------------------------

CHECK_BIRTH_YEAR, CHECK_PHONE = "birth_year", "phone"


def _digits(text: str | None) -> str:
    return re.sub(r"\D", "", text or "")


def check_kind(link: ClientLink) -> str | None:
    """What the page asks first: the birth year, else the phone's last four digits, and only
    on a sensitive program; None when there is nothing to ask."""
    referral = link.referral
    if not referral.program.sensitive:
        return None
    client = referral.client
    if client.birth_year:
        return CHECK_BIRTH_YEAR
    if len(_digits(client.phone)) >= 4:
        return CHECK_PHONE
    return None


def check_answer(link: ClientLink, answer: str | None, now: datetime | None = None) -> bool:
    """True when the answer matches; a wrong one counts, and enough of them lock the link
    (an event for staff, a message to the referring user)."""
    kind = check_kind(link)
    if kind is None:
        return True
    client = link.referral.client
    expected = str(client.birth_year) if kind == CHECK_BIRTH_YEAR else _digits(client.phone)[-4:]
    if tokens_equal(_digits(answer)[:8], expected):
        if link.failed_checks:
            link.failed_checks = 0
            db.session.flush()
        return True
    # In SQL, so that guesses sent at once all count.
    db.session.execute(
        update(ClientLink)
        .where(ClientLink.id == link.id)
        .values(failed_checks=ClientLink.failed_checks + 1)
        .execution_options(synchronize_session=False)
    )
    db.session.refresh(link, ["failed_checks"])
    if link.failed_checks >= current_app.config["CLIENT_CHECK_MAX_FAILURES"]:
        _lock(link, now or utcnow())
    return False


def _lock(link: ClientLink, now: datetime) -> None:
    locked = db.session.execute(
        update(ClientLink)
        .where(ClientLink.id == link.id, ClientLink.locked_at.is_(None))
        .values(locked_at=now)
        .execution_options(synchronize_session=False)
    )
    db.session.refresh(link, ["locked_at"])
    if locked.rowcount != 1:
        return  # another request locked it first and told staff
    referral = link.referral
    referral_ops.note_event(
        referral,
        "client_check_locked",
        referral_ops.Actor.system(),
        data={"link_id": link.id, "failures": link.failed_checks},
    )
    notify_users(
        [referral.referring_user] if referral.referring_user else [],
        "referral_client_locked",
        params={"program_name": referral.program.name, "referral_id": referral.id},
        referral_id=referral.id,
        dedupe_key=f"referral:{referral.id}:client_locked:{link.id}",
    )
    db.session.flush()


# --- the calendar file (RFC 5545) ------------------------------------------------------------

APPOINTMENT_LENGTH = timedelta(hours=1)
ICS_LINE_OCTETS = 75


def ics_text(value: str) -> str:
    """Escape a TEXT value: backslash, semicolon, comma and line breaks."""
    value = value.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,")
    return value.replace("\r\n", "\\n").replace("\n", "\\n").replace("\r", "\\n")


def ics_fold(line: str) -> str:
    """Fold a content line at 75 octets, never inside a UTF-8 character; each continuation
    starts with one space, which counts in its 75."""
    parts: list[str] = []
    current, size = "", 0
    for char in line:
        octets = len(char.encode())
        if size + octets > ICS_LINE_OCTETS:
            parts.append(current)
            current, size = " ", 1
        current += char
        size += octets
    parts.append(current)
    return "\r\n".join(parts)


def _ics_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def calendar_file(link: ClientLink, now: datetime | None = None) -> str | None:
    """The appointment as an iCalendar VEVENT in UTC, or None without an appointment. The
    summary is neutral when the page is; the location is the site's address."""
    referral = link.referral
    start = referral.appointment_at
    if start is None or referral.status.terminal:
        return None
    hidden = neutral(referral)
    host = urlsplit(current_app.config["BASE_URL"]).hostname or "localhost"
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//referral_hub//client page//EN",
        "CALSCALE:GREGORIAN",
        "METHOD:PUBLISH",
        "BEGIN:VEVENT",
        f"UID:referral-{referral.uuid}@{host}",
        # The referral's version only grows: a calendar replaces an older copy of the event.
        f"SEQUENCE:{referral.version}",
        f"DTSTAMP:{_ics_time(now or utcnow())}",
        f"DTSTART:{_ics_time(start)}",
        f"DTEND:{_ics_time(start + APPOINTMENT_LENGTH)}",
        f"SUMMARY:{ics_text(str(NEUTRAL_LABEL) if hidden else referral.program.name)}",
    ]
    site = referral.site
    if site is not None:
        place = [site.address_1, f"{site.city} {site.state} {site.postal_code}".strip()]
        if not hidden:
            place.insert(0, site.name)
        lines.append(f"LOCATION:{ics_text(', '.join(p for p in place if p))}")
        lines.append(f"GEO:{site.latitude:.6f};{site.longitude:.6f}")
    lines += ["END:VEVENT", "END:VCALENDAR"]
    return "".join(ics_fold(line) + "\r\n" for line in lines)
