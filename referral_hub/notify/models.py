"""The outbox: one row per message to deliver, already rendered in its recipient's language."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from referral_hub.core.db import Base, StrEnumType, TimestampMixin, utcnow

LAST_ERROR_LENGTH = 500


class Channel(enum.StrEnum):
    CONSOLE = "console"
    EMAIL = "email"
    SMS = "sms"


class MessageStatus(enum.StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"


class Message(TimestampMixin, Base):
    """A notification waiting for, or done with, delivery by the worker."""

    __tablename__ = "messages"
    __table_args__ = (
        # The worker's claim: due pending messages, and "sending" ones whose lease ran out.
        Index("ix_messages_status_next_attempt_at", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[Channel] = mapped_column(StrEnumType(Channel))
    recipient: Mapped[str] = mapped_column(String(254))  # e-mail address or E.164 phone
    recipient_user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    referral_id: Mapped[int | None] = mapped_column(
        ForeignKey("referrals.id", ondelete="SET NULL"), index=True
    )
    template: Mapped[str] = mapped_column(String(60))
    language: Mapped[str] = mapped_column(String(10))
    subject: Mapped[str | None] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[MessageStatus] = mapped_column(
        StrEnumType(MessageStatus), default=MessageStatus.PENDING
    )
    attempts: Mapped[int] = mapped_column(default=0)
    # When pending: not before this time. When sending: the claim's lease; once it has run
    # out the worker that claimed the message is presumed dead and another one reclaims it.
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_error: Mapped[str | None] = mapped_column(String(LAST_ERROR_LENGTH))
    sent_at: Mapped[datetime | None]
    provider_message_id: Mapped[str | None] = mapped_column(String(200))
    # Idempotency: enqueueing the same key again returns the existing message.
    dedupe_key: Mapped[str] = mapped_column(String(200), unique=True)

    def __repr__(self) -> str:
        return f"<Message {self.id} {self.channel} {self.status}>"


class InboundMessage(TimestampMixin, Base):
    """A text message a client sent us, as the SMS gateway's webhook delivered it."""

    __tablename__ = "inbound_messages"

    id: Mapped[int] = mapped_column(primary_key=True)
    from_phone: Mapped[str] = mapped_column(String(32))
    to_phone: Mapped[str] = mapped_column(String(32))
    body: Mapped[str] = mapped_column(Text)
    # The gateway's MessageSid: a webhook delivered twice is stored (and acted on) once.
    provider_message_id: Mapped[str] = mapped_column(String(64), unique=True)
    client_id: Mapped[int | None] = mapped_column(
        ForeignKey("clients.id", ondelete="SET NULL"), index=True
    )
    referral_id: Mapped[int | None] = mapped_column(
        ForeignKey("referrals.id", ondelete="SET NULL"), index=True
    )

    def __repr__(self) -> str:
        return f"<InboundMessage {self.id}>"
