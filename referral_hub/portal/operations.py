"""Client links and what the client's page shows (DESIGN.md sections 8 and 9).

A link is a random token of which only the hash is stored. It lives while the referral is
open (at least until some days after its appointment) and for CLIENT_LINK_DAYS_AFTER days
after the referral closes; cancelling the referral revokes it. Unknown, expired and revoked
tokens all look alike to the caller.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from referral_hub.accounts.models import User
from referral_hub.core.db import utcnow
from referral_hub.core.errors import Conflict
from referral_hub.core.security import new_token, token_hash
from referral_hub.directory.models import Site
from referral_hub.extensions import db
from referral_hub.portal.models import ClientLink
from referral_hub.referrals import operations as referral_ops
from referral_hub.referrals.models import Referral, Status
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
    if link is None or link.revoked_at is not None or live_until(link) <= now:
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


def neutral(referral: Referral) -> bool:
    """A sensitive program is not named to a client who asked for neutral wording."""
    return referral.program.sensitive and referral.client.neutral_sender


def client_page(link: ClientLink) -> ClientPage:
    """Gather the page's facts; reads only (a GET must change nothing)."""
    referral = link.referral
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
    )
