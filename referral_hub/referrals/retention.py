"""Retention: anonymise client personal data a configured time after the last referral closed.

What goes: the client's name, phone, birth year, contact preferences; the free text of their
referrals (notes may name people); screening answers other than the needs asked for; where
their rides collected and set them down (home is personal; the program's site stays linked by
id), the notes for the driver and the booking reference, and their drivers' links. What stays:
referral and ride states, modes, times and travel estimates, events, and so every metric
computed from them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import exists, func, select, update

from referral_hub.core.db import utcnow
from referral_hub.extensions import db
from referral_hub.notify.models import InboundMessage
from referral_hub.portal.models import ClientLink
from referral_hub.referrals.models import OPEN, Client, Referral
from referral_hub.transport.models import DriverLink, Ride

ANONYMIZED_NAME = "—"


@dataclass
class RetentionReport:
    clients: int
    referrals: int


def due_clients(now: datetime, days: int):
    """Clients with no open referral whose last referral closed more than `days` ago."""
    cutoff = now - timedelta(days=days)
    last_closed = (
        select(Referral.client_id, func.max(Referral.closed_at).label("last_closed"))
        .group_by(Referral.client_id)
        .subquery()
    )
    open_referral = exists().where(Referral.client_id == Client.id, Referral.status.in_(OPEN))
    return (
        select(Client.id)
        .join(last_closed, last_closed.c.client_id == Client.id)
        .where(Client.anonymized_at.is_(None), ~open_referral, last_closed.c.last_closed < cutoff)
    )


def anonymize_due(
    days: int, *, now: datetime | None = None, dry_run: bool = False
) -> RetentionReport:
    """Anonymise every client due; flushes (the CLI commits)."""
    now = now or utcnow()
    client_ids = list(db.session.scalars(due_clients(now, days)))
    referral_ids = (
        list(db.session.scalars(select(Referral.id).where(Referral.client_id.in_(client_ids))))
        if client_ids
        else []
    )
    if dry_run or not client_ids:
        return RetentionReport(len(client_ids), len(referral_ids))
    db.session.execute(
        update(Client)
        .where(Client.id.in_(client_ids))
        .values(
            display_name=ANONYMIZED_NAME,
            name_key="",
            phone=None,
            birth_year=None,
            sms_ok=False,
            quiet_hours_start=None,
            quiet_hours_end=None,
            anonymized_at=now,
        )
    )
    for referral in db.session.scalars(select(Referral).where(Referral.id.in_(referral_ids))):
        referral.note = None
        referral.reason_note = None
        referral.provider_notes = None
        referral.handed_off_to = None
        referral.answers = {k: v for k, v in (referral.answers or {}).items() if k == "needs"}
    rides = select(Ride.id).where(Ride.referral_id.in_(referral_ids)).scalar_subquery()
    db.session.execute(
        update(Ride)
        .where(Ride.referral_id.in_(referral_ids))
        .values(
            pickup_label=None,
            pickup_lat=None,
            pickup_lon=None,
            dropoff_label=None,
            dropoff_lat=None,
            dropoff_lon=None,
            driver_notes=None,
            booking_reference=None,
            # The version column: a ride page open elsewhere must not write the data back.
            version=Ride.version + 1,
        )
    )
    db.session.execute(
        update(DriverLink)
        .where(DriverLink.ride_id.in_(rides), DriverLink.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    # The client's own words by text message, and the number they wrote from.
    db.session.execute(
        update(InboundMessage)
        .where(InboundMessage.client_id.in_(client_ids))
        .values(body="", from_phone="")
    )
    db.session.execute(
        update(ClientLink)
        .where(ClientLink.referral_id.in_(referral_ids), ClientLink.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    db.session.flush()
    return RetentionReport(len(client_ids), len(referral_ids))
