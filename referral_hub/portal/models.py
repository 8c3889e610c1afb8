"""Client links: a client's access to their referral's page, without an account."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from referral_hub.core.db import Base, TimestampMixin
from referral_hub.referrals.models import Referral


class ClientLink(TimestampMixin, Base):
    """A client's access to one referral: only the token's hash is kept; it expires and can
    be revoked. The second check (birth year, phone digits) counts failures and locks."""

    __tablename__ = "client_links"

    id: Mapped[int] = mapped_column(primary_key=True)
    referral_id: Mapped[int] = mapped_column(
        ForeignKey("referrals.id", ondelete="CASCADE"), index=True
    )
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]
    failed_checks: Mapped[int] = mapped_column(default=0)
    locked_at: Mapped[datetime | None]
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))

    referral: Mapped[Referral] = relationship()
