"""Places the offline geocoder knows besides the directory's own sites."""

from __future__ import annotations

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from referral_hub.core.db import Base, TimestampMixin


class Landmark(TimestampMixin, Base):
    """A well-known public place people name in the field (a station, a park, a hospital)."""

    __tablename__ = "landmarks"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    latitude: Mapped[float]
    longitude: Mapped[float]
    postal_code: Mapped[str | None] = mapped_column(String(10))
