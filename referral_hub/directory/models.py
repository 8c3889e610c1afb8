"""The service directory: sites now; programs, schedules and criteria come with the directory."""

from __future__ import annotations

import uuid

from sqlalchemy import CheckConstraint, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from referral_hub.accounts.models import Organization
from referral_hub.core.db import Base, TimestampMixin


def new_uuid() -> str:
    return str(uuid.uuid4())


class Site(TimestampMixin, Base):
    """A physical place where an organization serves people (HSDS *location*)."""

    __tablename__ = "sites"
    __table_args__ = (
        CheckConstraint("latitude BETWEEN -90 AND 90", name="latitude_range"),
        CheckConstraint("longitude BETWEEN -180 AND 180", name="longitude_range"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True, default=new_uuid)
    organization_id: Mapped[int] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    slug: Mapped[str] = mapped_column(String(80), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    address_1: Mapped[str] = mapped_column(String(200))
    city: Mapped[str] = mapped_column(String(100))
    state: Mapped[str] = mapped_column(String(2))
    postal_code: Mapped[str] = mapped_column(String(10), index=True)
    latitude: Mapped[float]
    longitude: Mapped[float]
    phone: Mapped[str | None] = mapped_column(String(40))
    accessibility: Mapped[str | None] = mapped_column(String(500))
    transit_notes: Mapped[str | None] = mapped_column(String(500))
    is_active: Mapped[bool] = mapped_column(default=True)

    organization: Mapped[Organization] = relationship()
