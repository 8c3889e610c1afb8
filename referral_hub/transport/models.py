"""Rides (one per leg of a referral's trip), their event log, the transport vendor's drivers
and vehicles, and the tokenized links drivers without accounts use (DESIGN.md section 6).
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import CheckConstraint, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from referral_hub.accounts.models import Organization, User
from referral_hub.core.db import Base, StrEnumType, TimestampMixin
from referral_hub.core.types import JSONType
from referral_hub.directory.models import Site, new_uuid
from referral_hub.referrals.models import Referral


class RideStatus(enum.StrEnum):
    REQUESTED = "requested"
    SCHEDULED = "scheduled"
    EN_ROUTE_TO_PICKUP = "en_route_to_pickup"
    PICKED_UP = "picked_up"
    DROPPED_OFF = "dropped_off"
    CANCELLED = "cancelled"
    NO_SHOW = "no_show"

    @property
    def title(self) -> str:
        return str(RIDE_STATUS_TITLES[self])

    @property
    def terminal(self) -> bool:
        return self in RIDE_TERMINAL


RIDE_TERMINAL = frozenset({RideStatus.DROPPED_OFF, RideStatus.CANCELLED, RideStatus.NO_SHOW})
# Not started: the person is not in the vehicle yet, so the ride can still be called off.
NOT_STARTED = frozenset({RideStatus.REQUESTED, RideStatus.SCHEDULED, RideStatus.EN_ROUTE_TO_PICKUP})

RIDE_STATUS_TITLES = {
    RideStatus.REQUESTED: _l("Requested"),
    RideStatus.SCHEDULED: _l("Scheduled"),
    RideStatus.EN_ROUTE_TO_PICKUP: _l("Driver on the way"),
    RideStatus.PICKED_UP: _l("Picked up"),
    RideStatus.DROPPED_OFF: _l("Dropped off"),
    RideStatus.CANCELLED: _l("Cancelled"),
    RideStatus.NO_SHOW: _l("Not at pickup"),
}


class RideMode(enum.StrEnum):
    VENDOR = "vendor"  # a transport vendor's vehicle, dispatched
    ESCORT = "escort"  # the responder takes the person
    RIDESHARE = "rideshare"  # a voucher; the booking reference is recorded
    TRANSIT = "transit"  # directions for bus or train
    WALK = "walk"

    @property
    def title(self) -> str:
        return str(RIDE_MODE_TITLES[self])

    @property
    def dispatched(self) -> bool:
        return self is RideMode.VENDOR


RIDE_MODE_TITLES = {
    RideMode.VENDOR: _l("Vendor vehicle"),
    RideMode.ESCORT: _l("Responder escort"),
    RideMode.RIDESHARE: _l("Rideshare voucher"),
    RideMode.TRANSIT: _l("Transit directions"),
    RideMode.WALK: _l("Walk"),
}


class Leg(enum.StrEnum):
    OUTBOUND = "outbound"  # to the program's site
    RETURN = "return"  # back from it

    @property
    def title(self) -> str:
        return str(LEG_TITLES[self])


LEG_TITLES = {Leg.OUTBOUND: _l("To the program"), Leg.RETURN: _l("Return trip")}


class Driver(TimestampMixin, Base):
    """A transport vendor's driver; no account, reached through ride links."""

    __tablename__ = "drivers"

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"), index=True)
    first_name: Mapped[str] = mapped_column(String(60))  # what the client sees
    last_name: Mapped[str | None] = mapped_column(String(60))
    phone: Mapped[str | None] = mapped_column(String(20))
    is_active: Mapped[bool] = mapped_column(default=True)

    organization: Mapped[Organization] = relationship()

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name or ''}".strip()


class Vehicle(TimestampMixin, Base):
    __tablename__ = "vehicles"
    __table_args__ = (CheckConstraint("seats BETWEEN 1 AND 60", name="seats_range"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"), index=True)
    label: Mapped[str] = mapped_column(String(80))  # "Van 3 - white Ford Transit"
    plate: Mapped[str | None] = mapped_column(String(20))
    wheelchair_accessible: Mapped[bool] = mapped_column(default=False)
    seats: Mapped[int] = mapped_column(default=4)
    is_active: Mapped[bool] = mapped_column(default=True)

    organization: Mapped[Organization] = relationship()


class Ride(TimestampMixin, Base):
    """One leg of the trip that turns a referral into an arrival."""

    __tablename__ = "rides"
    __table_args__ = (
        # The dispatch board: a vendor's rides of a day in time order.
        Index("ix_rides_vendor_org_id_window_start_at", "vendor_org_id", "window_start_at"),
        Index("ix_rides_driver_id_window_start_at", "driver_id", "window_start_at"),
        CheckConstraint("companions BETWEEN 0 AND 6", name="companions_range"),
        CheckConstraint("version > 0", name="version_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True, default=new_uuid)
    referral_id: Mapped[int] = mapped_column(
        ForeignKey("referrals.id", ondelete="CASCADE"), index=True
    )
    leg: Mapped[Leg] = mapped_column(StrEnumType(Leg), default=Leg.OUTBOUND)
    mode: Mapped[RideMode] = mapped_column(StrEnumType(RideMode))
    status: Mapped[RideStatus] = mapped_column(
        StrEnumType(RideStatus), default=RideStatus.REQUESTED
    )
    vendor_org_id: Mapped[int | None] = mapped_column(ForeignKey("organizations.id"))
    site_id: Mapped[int | None] = mapped_column(ForeignKey("sites.id"))  # the program's site
    booked_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    booked_by_org_id: Mapped[int | None] = mapped_column(ForeignKey("organizations.id"))

    # Where the person is collected and set down; cleared by retention like client data.
    pickup_label: Mapped[str | None] = mapped_column(String(200))
    pickup_lat: Mapped[float | None]
    pickup_lon: Mapped[float | None]
    pickup_from_device: Mapped[bool] = mapped_column(default=False)
    dropoff_label: Mapped[str | None] = mapped_column(String(200))
    dropoff_lat: Mapped[float | None]
    dropoff_lon: Mapped[float | None]
    outside_region: Mapped[bool] = mapped_column(default=False)

    # The plan. A will-call return has none until the person says they are ready.
    will_call: Mapped[bool] = mapped_column(default=False)
    requested_for_at: Mapped[datetime | None]  # the appointment or the time asked for
    window_start_at: Mapped[datetime | None]
    window_end_at: Mapped[datetime | None]  # latest pickup that still arrives in time
    arrive_by_at: Mapped[datetime | None]
    eta_earliest_at: Mapped[datetime | None]
    eta_latest_at: Mapped[datetime | None]
    travel_minutes: Mapped[float | None]
    travel_minutes_high: Mapped[float | None]
    distance_km: Mapped[float | None]
    estimate_source: Mapped[str | None] = mapped_column(String(10))  # "routed" / "estimate"
    estimate_note: Mapped[str | None] = mapped_column(String(300))

    wheelchair: Mapped[bool] = mapped_column(default=False)
    service_animal: Mapped[bool] = mapped_column(default=False)
    companions: Mapped[int] = mapped_column(default=0)
    driver_notes: Mapped[str | None] = mapped_column(String(500))
    booking_reference: Mapped[str | None] = mapped_column(String(80))

    driver_id: Mapped[int | None] = mapped_column(ForeignKey("drivers.id", ondelete="SET NULL"))
    vehicle_id: Mapped[int | None] = mapped_column(ForeignKey("vehicles.id", ondelete="SET NULL"))
    en_route_at: Mapped[datetime | None]
    at_pickup_at: Mapped[datetime | None]
    picked_up_at: Mapped[datetime | None]
    dropped_off_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    reason_code: Mapped[str | None] = mapped_column(String(40))

    version: Mapped[int] = mapped_column(default=1)
    __mapper_args__ = {"version_id_col": version}

    referral: Mapped[Referral] = relationship()
    site: Mapped[Site | None] = relationship()
    vendor_org: Mapped[Organization | None] = relationship(foreign_keys=[vendor_org_id])
    booked_by: Mapped[User | None] = relationship(foreign_keys=[booked_by_id])
    driver: Mapped[Driver | None] = relationship()
    vehicle: Mapped[Vehicle | None] = relationship()
    events: Mapped[list[RideEvent]] = relationship(
        back_populates="ride", order_by="RideEvent.id", cascade="all, delete-orphan"
    )


class RideEvent(Base):
    """Append-only: every ride transition and notable action, who and when."""

    __tablename__ = "ride_events"
    __table_args__ = (Index("ix_ride_events_ride_id_id", "ride_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    ride_id: Mapped[int] = mapped_column(ForeignKey("rides.id", ondelete="CASCADE"))
    action: Mapped[str] = mapped_column(String(40))
    from_status: Mapped[RideStatus | None] = mapped_column(StrEnumType(RideStatus))
    to_status: Mapped[RideStatus | None] = mapped_column(StrEnumType(RideStatus))
    actor_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    actor_label: Mapped[str | None] = mapped_column(String(40))  # "driver", "system", ...
    reason_code: Mapped[str | None] = mapped_column(String(40))
    data: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    created_at: Mapped[datetime] = mapped_column(index=True)

    ride: Mapped[Ride] = relationship(back_populates="events")
    actor_user: Mapped[User | None] = relationship()


class DriverLink(TimestampMixin, Base):
    """A driver's access to one ride: only the token's hash is kept; it expires and can be
    revoked (re-assignment revokes the previous driver's link)."""

    __tablename__ = "driver_links"

    id: Mapped[int] = mapped_column(primary_key=True)
    ride_id: Mapped[int] = mapped_column(ForeignKey("rides.id", ondelete="CASCADE"), index=True)
    driver_id: Mapped[int | None] = mapped_column(ForeignKey("drivers.id", ondelete="SET NULL"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))

    ride: Mapped[Ride] = relationship()
    driver: Mapped[Driver | None] = relationship()


class FollowUp(TimestampMixin, Base):
    """Something the referring responder must act on (a ride no-show): open until resolved."""

    __tablename__ = "follow_ups"
    __table_args__ = (
        Index("ix_follow_ups_organization_id_resolved_at", "organization_id", "resolved_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    referral_id: Mapped[int] = mapped_column(
        ForeignKey("referrals.id", ondelete="CASCADE"), index=True
    )
    ride_id: Mapped[int | None] = mapped_column(ForeignKey("rides.id", ondelete="SET NULL"))
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"))
    assigned_to_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    reason: Mapped[str] = mapped_column(String(40))  # "ride_no_show"
    resolved_at: Mapped[datetime | None]
    resolved_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))

    referral: Mapped[Referral] = relationship()
    ride: Mapped[Ride | None] = relationship()
