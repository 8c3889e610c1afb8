"""Anonymous screening records (unmet need), daily referral tallies, and the goals a
coordinator sets."""

from __future__ import annotations

import enum
from datetime import date, datetime

from flask_babel import lazy_gettext as _l
from sqlalchemy import CheckConstraint, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from referral_hub.accounts.models import User
from referral_hub.core.db import Base, StrEnumType, TimestampMixin, utcnow
from referral_hub.core.types import JSONType
from referral_hub.directory.models import Program


class ScreeningRecord(Base):
    """One screening, kept without anything that points at a person.

    Only what the city needs to see what people asked for and did not find: when (to the
    hour), where (ZIP only), which needs, and how far the match got. No answers besides the
    needs, no client, no user; `created_at` is cut to the hour so a record cannot be lined
    up with a referral sent the same minute.

    The three flags are a funnel: `any_open` implies `any_eligible`, `any_capacity` implies
    `any_open`. A screening met its need when `any_capacity` is true.
    """

    __tablename__ = "screening_records"
    __table_args__ = (
        CheckConstraint("hour_of_week BETWEEN 0 AND 167", name="hour_of_week_range"),
        CheckConstraint("any_eligible OR NOT any_open", name="open_needs_eligible"),
        CheckConstraint("any_open OR NOT any_capacity", name="capacity_needs_open"),
        Index("ix_screening_records_created_at", "created_at"),
        Index("ix_screening_records_zip_created_at", "zip", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)  # to the hour
    # 0 = Monday 00:00-00:59 in the city's time zone, 167 = Sunday 23:00-23:59.
    hour_of_week: Mapped[int]
    zip: Mapped[str | None] = mapped_column(String(5))
    needs: Mapped[list[str]] = mapped_column(JSONType, default=list)  # category codes
    any_eligible: Mapped[bool]  # some program was eligible
    any_open: Mapped[bool]  # ... and had a site open at that time
    any_capacity: Mapped[bool]  # ... and, open, was taking referrals
    referring_org_id: Mapped[int | None] = mapped_column(
        ForeignKey("organizations.id", ondelete="SET NULL")
    )
    screener_version: Mapped[int]

    @property
    def met(self) -> bool:
        return self.any_capacity


class _ReferralGroup:
    """The group a referral tally counts in: its day (city time), program and both sides."""

    id: Mapped[int] = mapped_column(primary_key=True)
    day: Mapped[date]
    program_id: Mapped[int] = mapped_column(ForeignKey("programs.id", ondelete="CASCADE"))
    provider_org_id: Mapped[int] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    referring_org_id: Mapped[int | None] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE")
    )


class ReferralDayTally(_ReferralGroup, TimestampMixin, Base):
    """Referrals sent on one day (city time) to one program from one organization: counts.

    A rollup of `referrals` and their rides, rewritten from them in the same transaction as
    every change (insights.tallies), so the dashboards add up days instead of rows.
    """

    __tablename__ = "referral_day_tallies"
    __table_args__ = (
        UniqueConstraint("day", "program_id", "provider_org_id", "referring_org_id"),
        Index("ix_referral_day_tallies_day_program_id", "day", "program_id"),
    )

    sent: Mapped[int]
    accepted: Mapped[int]
    declined: Mapped[int]
    handed_off: Mapped[int]
    no_show: Mapped[int]
    escalated: Mapped[int]
    completed: Mapped[int]
    rides_picked_up: Mapped[int]
    rides_on_time: Mapped[int]


class ReferralDayCode(_ReferralGroup, TimestampMixin, Base):
    """Declined referrals by reason, completed ones by outcome, per tally group and day."""

    __tablename__ = "referral_day_codes"
    __table_args__ = (Index("ix_referral_day_codes_day_program_id", "day", "program_id"),)

    status: Mapped[str] = mapped_column(String(20))  # declined or completed
    code: Mapped[str | None] = mapped_column(String(60))  # reason code or outcome
    count: Mapped[int]


class ScreeningHourTally(TimestampMixin, Base):
    """Screenings in one hour (city time) from one organization: how many, and how many
    found nothing, by need.

    `need` NULL: every screening of the hour once; a category code: those that asked for it;
    "" (empty): those that named no need. A rollup of `screening_records`, rewritten from
    them in the flush that adds one (insights.tallies).
    """

    __tablename__ = "screening_hour_tallies"
    __table_args__ = (Index("ix_screening_hour_tallies_day_hour_of_week", "day", "hour_of_week"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    day: Mapped[date]
    hour_of_week: Mapped[int]
    referring_org_id: Mapped[int | None] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE")
    )
    need: Mapped[str | None] = mapped_column(String(60))
    screenings: Mapped[int]
    no_eligible: Mapped[int]
    none_open: Mapped[int]
    no_capacity: Mapped[int]


class Comparator(enum.StrEnum):
    AT_LEAST = "at_least"
    AT_MOST = "at_most"

    @property
    def title(self) -> str:
        return str(COMPARATOR_TITLES[self])

    def holds(self, value: float, target: float) -> bool:
        """Tell whether a value meets the target."""
        return value >= target if self is Comparator.AT_LEAST else value <= target


COMPARATOR_TITLES = {Comparator.AT_LEAST: _l("at least"), Comparator.AT_MOST: _l("at most")}


class Goal(TimestampMixin, Base):
    """A target a coordinator sets for one program or one category, on one metric.

    `metric` is a key of insights.definitions. Shares are stored as fractions (0.9 for
    90 %), times in hours. `within_hours` only matters for the "accepted within target"
    metric: it replaces each program's own response target.
    """

    __tablename__ = "goals"
    __table_args__ = (
        CheckConstraint("(program_id IS NULL) <> (category IS NULL)", name="one_scope"),
        CheckConstraint("target >= 0", name="target_nonnegative"),
        CheckConstraint("within_hours IS NULL OR within_hours > 0", name="within_hours_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    program_id: Mapped[int | None] = mapped_column(
        ForeignKey("programs.id", ondelete="CASCADE"), index=True
    )
    category: Mapped[str | None] = mapped_column(
        ForeignKey("categories.code", ondelete="CASCADE"), index=True
    )
    metric: Mapped[str] = mapped_column(String(60))
    comparator: Mapped[Comparator] = mapped_column(StrEnumType(Comparator))
    target: Mapped[float]
    within_hours: Mapped[int | None]
    active: Mapped[bool] = mapped_column(default=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))

    program: Mapped[Program | None] = relationship()
    created_by: Mapped[User | None] = relationship()
