"""The service directory: programs (HSDS service), sites (location), program sites
(service_at_location), opening hours, service areas, languages and capacity."""

from __future__ import annotations

import enum
import uuid
from datetime import date, datetime, time
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import (
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from referral_hub.accounts.models import Organization
from referral_hub.core.db import Base, StrEnumType, TimestampMixin
from referral_hub.core.types import JSONType


def new_uuid() -> str:
    return str(uuid.uuid4())


class CapacityStatus(enum.StrEnum):
    """FHIR SDOH capacity codes."""

    CAPACITY = "capacity"
    NO_CAPACITY = "no-capacity"
    WAITLIST = "waitlist"
    ASSESSMENT = "additional-assessment-required"

    @property
    def title(self) -> str:
        return str(CAPACITY_TITLES[self])


CAPACITY_TITLES = {
    CapacityStatus.CAPACITY: _l("Taking referrals"),
    CapacityStatus.NO_CAPACITY: _l("Full"),
    CapacityStatus.WAITLIST: _l("Waitlist"),
    CapacityStatus.ASSESSMENT: _l("Assessment required first"),
}


class LanguageMode(enum.StrEnum):
    STAFF = "staff"
    INTERPRETER = "interpreter"


class AreaKind(enum.StrEnum):
    POSTAL_CODES = "postal_codes"
    RADIUS = "radius"
    POLYGON = "polygon"


program_categories = Table(
    "program_categories",
    Base.metadata,
    Column("program_id", ForeignKey("programs.id", ondelete="CASCADE"), primary_key=True),
    Column("category_id", ForeignKey("categories.id", ondelete="CASCADE"), primary_key=True),
    Index("ix_program_categories_category_id", "category_id"),
)


class Category(TimestampMixin, Base):
    """A kind of service (HSDS taxonomy term): housing, employment, diversion, ..."""

    __tablename__ = "categories"

    id: Mapped[int] = mapped_column(primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True, default=new_uuid)
    code: Mapped[str] = mapped_column(String(60), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    description: Mapped[str | None] = mapped_column(String(500))


class Site(TimestampMixin, Base):
    """A physical place where an organization serves people (HSDS *location*)."""

    __tablename__ = "sites"
    __table_args__ = (
        CheckConstraint("latitude BETWEEN -90 AND 90", name="latitude_range"),
        CheckConstraint("longitude BETWEEN -180 AND 180", name="longitude_range"),
        # The spatial prefilter of matching is a bounding-box range scan on this index.
        Index("ix_sites_latitude_longitude", "latitude", "longitude"),
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
    program_sites: Mapped[list[ProgramSite]] = relationship(back_populates="site")


class Program(TimestampMixin, Base):
    """A service people can be referred to (HSDS *service*)."""

    __tablename__ = "programs"
    __table_args__ = (
        CheckConstraint("open_slots IS NULL OR open_slots >= 0", name="open_slots_nonnegative"),
        CheckConstraint("response_target_hours > 0", name="response_target_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True, default=new_uuid)
    organization_id: Mapped[int] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    slug: Mapped[str] = mapped_column(String(120), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    eligibility_description: Mapped[str | None] = mapped_column(Text)
    # JsonLogic (our documented subset); NULL means open to everyone.
    criteria: Mapped[Any | None] = mapped_column(JSONType)
    criteria_version: Mapped[int] = mapped_column(default=1)
    capacity_status: Mapped[CapacityStatus] = mapped_column(
        StrEnumType(CapacityStatus), default=CapacityStatus.CAPACITY
    )
    open_slots: Mapped[int | None]
    capacity_updated_at: Mapped[datetime | None]
    response_target_hours: Mapped[int] = mapped_column(default=24)
    accepts_responder_referrals: Mapped[bool] = mapped_column(default=True)
    sensitive: Mapped[bool] = mapped_column(default=False)
    required_documents: Mapped[list[str]] = mapped_column(JSONType, default=list)
    is_free: Mapped[bool] = mapped_column(default=True)
    fee_description: Mapped[str | None] = mapped_column(String(500))
    url: Mapped[str | None] = mapped_column(String(300))
    email: Mapped[str | None] = mapped_column(String(254))
    phone: Mapped[str | None] = mapped_column(String(40))
    is_active: Mapped[bool] = mapped_column(default=True)

    organization: Mapped[Organization] = relationship()
    categories: Mapped[list[Category]] = relationship(secondary=program_categories)
    languages: Mapped[list[ProgramLanguage]] = relationship(
        back_populates="program", cascade="all, delete-orphan"
    )
    program_sites: Mapped[list[ProgramSite]] = relationship(
        back_populates="program", cascade="all, delete-orphan"
    )
    service_areas: Mapped[list[ServiceArea]] = relationship(
        back_populates="program", cascade="all, delete-orphan"
    )


class ProgramLanguage(Base):
    """A language a program serves in, by its staff or through an interpreter."""

    __tablename__ = "program_languages"
    __table_args__ = (UniqueConstraint("program_id", "language"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    program_id: Mapped[int] = mapped_column(ForeignKey("programs.id", ondelete="CASCADE"))
    language: Mapped[str] = mapped_column(String(10))
    mode: Mapped[LanguageMode] = mapped_column(StrEnumType(LanguageMode))

    program: Mapped[Program] = relationship(back_populates="languages")


class ServiceArea(TimestampMixin, Base):
    """Where a program's clients must live or be: ZIP codes, a radius or a GeoJSON polygon."""

    __tablename__ = "service_areas"

    id: Mapped[int] = mapped_column(primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True, default=new_uuid)
    program_id: Mapped[int] = mapped_column(
        ForeignKey("programs.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[AreaKind] = mapped_column(StrEnumType(AreaKind))
    postal_codes: Mapped[list[str] | None] = mapped_column(JSONType)
    center_latitude: Mapped[float | None]
    center_longitude: Mapped[float | None]
    radius_km: Mapped[float | None]
    geometry: Mapped[dict | None] = mapped_column(JSONType)  # GeoJSON Polygon / MultiPolygon

    program: Mapped[Program] = relationship(back_populates="service_areas")


class ProgramSite(TimestampMixin, Base):
    """A program offered at a site, with its own hours (HSDS *service_at_location*)."""

    __tablename__ = "program_sites"
    __table_args__ = (UniqueConstraint("program_id", "site_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True, default=new_uuid)
    program_id: Mapped[int] = mapped_column(ForeignKey("programs.id", ondelete="CASCADE"))
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), index=True)
    open_24_7: Mapped[bool] = mapped_column(default=False)

    program: Mapped[Program] = relationship(back_populates="program_sites")
    site: Mapped[Site] = relationship(back_populates="program_sites")
    weekly_hours: Mapped[list[WeeklyHours]] = relationship(
        back_populates="program_site",
        cascade="all, delete-orphan",
        order_by="(WeeklyHours.weekday, WeeklyHours.opens_at)",
    )
    exceptions: Mapped[list[HoursException]] = relationship(
        back_populates="program_site",
        cascade="all, delete-orphan",
        order_by="HoursException.on_date",
    )


class WeeklyHours(Base):
    """Regular opening hours in the city's time zone; closes <= opens means after midnight."""

    __tablename__ = "weekly_hours"
    __table_args__ = (CheckConstraint("weekday BETWEEN 0 AND 6", name="weekday_range"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    program_site_id: Mapped[int] = mapped_column(
        ForeignKey("program_sites.id", ondelete="CASCADE"), index=True
    )
    weekday: Mapped[int]  # 0 = Monday, as datetime.weekday()
    opens_at: Mapped[time]
    closes_at: Mapped[time]

    program_site: Mapped[ProgramSite] = relationship(back_populates="weekly_hours")


class HoursException(Base):
    """A dated change to the regular hours: closed for a holiday, or special hours."""

    __tablename__ = "hours_exceptions"
    __table_args__ = (
        UniqueConstraint("program_site_id", "on_date"),
        CheckConstraint(
            "closed OR (opens_at IS NOT NULL AND closes_at IS NOT NULL)", name="hours_given"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    program_site_id: Mapped[int] = mapped_column(ForeignKey("program_sites.id", ondelete="CASCADE"))
    on_date: Mapped[date]
    closed: Mapped[bool] = mapped_column(default=True)
    opens_at: Mapped[time | None]
    closes_at: Mapped[time | None]
    reason: Mapped[str | None] = mapped_column(String(200))

    program_site: Mapped[ProgramSite] = relationship(back_populates="exceptions")
