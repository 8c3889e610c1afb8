"""Clients, consent, referrals and their append-only event log, and record-view audit."""

from __future__ import annotations

import enum
from datetime import datetime, time
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from referral_hub.accounts.models import Organization, User
from referral_hub.core.db import Base, StrEnumType, TimestampMixin
from referral_hub.core.types import JSONType
from referral_hub.directory.models import Program, Site, new_uuid


class Status(enum.StrEnum):
    DRAFT = "draft"
    SENT = "sent"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    EN_ROUTE = "en_route"
    ARRIVED = "arrived"
    HANDED_OFF = "handed_off"
    ON_HOLD = "on_hold"
    COMPLETED = "completed"
    NO_SHOW = "no_show"
    CANCELLED = "cancelled"
    ENTERED_IN_ERROR = "entered_in_error"

    @property
    def title(self) -> str:
        return str(STATUS_TITLES[self])

    @property
    def terminal(self) -> bool:
        return self in TERMINAL


TERMINAL = frozenset(
    {Status.DECLINED, Status.COMPLETED, Status.NO_SHOW, Status.CANCELLED, Status.ENTERED_IN_ERROR}
)
OPEN = frozenset(Status) - TERMINAL

STATUS_TITLES = {
    Status.DRAFT: _l("Draft"),
    Status.SENT: _l("Sent, awaiting answer"),
    Status.ACCEPTED: _l("Accepted"),
    Status.DECLINED: _l("Declined"),
    Status.EN_ROUTE: _l("On the way"),
    Status.ARRIVED: _l("Arrived"),
    Status.HANDED_OFF: _l("Received in person"),
    Status.ON_HOLD: _l("On hold"),
    Status.COMPLETED: _l("Completed"),
    Status.NO_SHOW: _l("Did not arrive"),
    Status.CANCELLED: _l("Cancelled"),
    Status.ENTERED_IN_ERROR: _l("Entered in error"),
}


class Priority(enum.StrEnum):
    URGENT = "urgent"
    ROUTINE = "routine"


class ConsentMethod(enum.StrEnum):
    VERBAL = "verbal"
    SIGNED = "signed"
    EMERGENCY_OVERRIDE = "emergency_override"


class Client(TimestampMixin, Base):
    """The minimum needed to serve a person; no SSN, no address unless needed for pickup."""

    __tablename__ = "clients"
    __table_args__ = (
        CheckConstraint(
            "birth_year IS NULL OR birth_year BETWEEN 1900 AND 2100", name="birth_year_range"
        ),
        Index("ix_clients_name_key_birth_year", "name_key", "birth_year"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True, default=new_uuid)
    # The organization that created the record (the referring side).
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"), index=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    display_name: Mapped[str] = mapped_column(String(120))
    name_key: Mapped[str] = mapped_column(String(120))  # normalised, for duplicate hints
    phone: Mapped[str | None] = mapped_column(String(20))
    preferred_language: Mapped[str] = mapped_column(String(10), default="en")
    birth_year: Mapped[int | None]
    sms_ok: Mapped[bool] = mapped_column(default=False)
    quiet_hours_start: Mapped[time | None]
    quiet_hours_end: Mapped[time | None]
    neutral_sender: Mapped[bool] = mapped_column(default=False)
    anonymized_at: Mapped[datetime | None]

    organization: Mapped[Organization] = relationship()


class Consent(TimestampMixin, Base):
    """Who may see a referral, for what purpose, given how, recorded by whom, until when."""

    __tablename__ = "consents"

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"), index=True)
    program_id: Mapped[int] = mapped_column(ForeignKey("programs.id"))
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"))
    method: Mapped[ConsentMethod] = mapped_column(StrEnumType(ConsentMethod))
    purpose: Mapped[str] = mapped_column(String(200))
    override_reason: Mapped[str | None] = mapped_column(String(500))
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    given_at: Mapped[datetime]
    expires_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    revoked_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))

    client: Mapped[Client] = relationship()
    program: Mapped[Program] = relationship()


class Referral(TimestampMixin, Base):
    """A request for a program to serve a client, from the field to the handoff."""

    __tablename__ = "referrals"
    __table_args__ = (
        # The inbox: a provider's open referrals, newest first, and overdue ones.
        Index("ix_referrals_provider_org_id_status", "provider_org_id", "status"),
        Index("ix_referrals_referring_org_id_created_at", "referring_org_id", "created_at"),
        Index("ix_referrals_status_response_due_at", "status", "response_due_at"),
        # Insights: metrics over a period, overall and per program / provider / referrer.
        Index("ix_referrals_sent_at", "sent_at"),
        Index("ix_referrals_program_id_sent_at", "program_id", "sent_at"),
        Index("ix_referrals_provider_org_id_sent_at", "provider_org_id", "sent_at"),
        Index("ix_referrals_referring_org_id_sent_at", "referring_org_id", "sent_at"),
        # Times to accept and to handoff over a period: the accepted referrals only, and on
        # PostgreSQL all a dashboard reads of them, without visiting the table.
        Index(
            "ix_referrals_accepted_sent_at",
            "sent_at",
            postgresql_include=[
                "program_id",
                "provider_org_id",
                "referring_org_id",
                "status",
                "accepted_at",
                "handed_off_at",
            ],
            postgresql_where=text("accepted_at IS NOT NULL"),
            sqlite_where=text("accepted_at IS NOT NULL"),
        ),
        CheckConstraint("version > 0", name="version_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True, default=new_uuid)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id"), index=True)
    program_id: Mapped[int] = mapped_column(ForeignKey("programs.id"), index=True)
    site_id: Mapped[int | None] = mapped_column(ForeignKey("sites.id"))
    provider_org_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"))
    referring_org_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"))
    referring_user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    consent_id: Mapped[int | None] = mapped_column(ForeignKey("consents.id"))
    rerouted_from_id: Mapped[int | None] = mapped_column(ForeignKey("referrals.id"))

    status: Mapped[Status] = mapped_column(StrEnumType(Status), default=Status.DRAFT)
    priority: Mapped[Priority] = mapped_column(StrEnumType(Priority), default=Priority.ROUTINE)
    note: Mapped[str | None] = mapped_column(Text)  # from the referrer, for the provider
    answers: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    screener_version: Mapped[int] = mapped_column(default=1)

    sent_at: Mapped[datetime | None]
    response_due_at: Mapped[datetime | None]
    accepted_at: Mapped[datetime | None]
    appointment_at: Mapped[datetime | None]
    arrived_at: Mapped[datetime | None]
    handed_off_at: Mapped[datetime | None]
    handed_off_to: Mapped[str | None] = mapped_column(String(120))  # the staff member's name
    handoff_code: Mapped[str | None] = mapped_column(String(8))
    closed_at: Mapped[datetime | None]
    escalated_at: Mapped[datetime | None]

    reason_code: Mapped[str | None] = mapped_column(String(40))  # decline / cancel / hold
    reason_note: Mapped[str | None] = mapped_column(String(500))
    outcome: Mapped[str | None] = mapped_column(String(40))
    # Provider-internal: never shown to the referring side.
    provider_notes: Mapped[str | None] = mapped_column(Text)
    holds_slot: Mapped[bool] = mapped_column(default=False)

    # Optimistic concurrency: every transition bumps it; a stale writer gets a conflict.
    version: Mapped[int] = mapped_column(default=1)
    __mapper_args__ = {"version_id_col": version}

    client: Mapped[Client] = relationship()
    program: Mapped[Program] = relationship()
    site: Mapped[Site | None] = relationship()
    provider_org: Mapped[Organization] = relationship(foreign_keys=[provider_org_id])
    referring_org: Mapped[Organization] = relationship(foreign_keys=[referring_org_id])
    referring_user: Mapped[User | None] = relationship(foreign_keys=[referring_user_id])
    consent: Mapped[Consent | None] = relationship()
    rerouted_from: Mapped[Referral | None] = relationship(remote_side=[id])
    events: Mapped[list[ReferralEvent]] = relationship(
        back_populates="referral", order_by="ReferralEvent.id"
    )


class ReferralEvent(Base):
    """Append-only: one row per transition and notable action. Metrics come from here."""

    __tablename__ = "referral_events"
    __table_args__ = (Index("ix_referral_events_referral_id_id", "referral_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    referral_id: Mapped[int] = mapped_column(ForeignKey("referrals.id", ondelete="CASCADE"))
    action: Mapped[str] = mapped_column(String(40))
    from_status: Mapped[Status | None] = mapped_column(StrEnumType(Status))
    to_status: Mapped[Status | None] = mapped_column(StrEnumType(Status))
    actor_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    actor_org_id: Mapped[int | None] = mapped_column(ForeignKey("organizations.id"))
    actor_label: Mapped[str | None] = mapped_column(String(40))  # "system", "client", ...
    reason_code: Mapped[str | None] = mapped_column(String(40))
    # Structured details (appointment time, outcome code); never free-text client data.
    data: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    created_at: Mapped[datetime] = mapped_column(index=True)

    referral: Mapped[Referral] = relationship(back_populates="events")
    actor_user: Mapped[User | None] = relationship()


class RecordView(Base):
    """Access log: who opened which client record, when. No record contents are copied."""

    __tablename__ = "record_views"
    __table_args__ = (Index("ix_record_views_client_id_created_at", "client_id", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"))
    referral_id: Mapped[int | None] = mapped_column(ForeignKey("referrals.id", ondelete="CASCADE"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    organization_id: Mapped[int | None] = mapped_column(ForeignKey("organizations.id"))
    context: Mapped[str] = mapped_column(String(40))  # "page", "api", "fhir"
    created_at: Mapped[datetime]
