"""Booking a leg of a referral's trip: where from and to, when, how, and the pickup plan
that makes it arrive in time, or a clear refusal when it cannot (DESIGN.md section 6).

Travel comes from `geo` once per booking (a routed answer is cached per trip); the plan is
kept on the ride, so a will-call return is planned later without asking again.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import select

from referral_hub.accounts.models import Organization, OrgKind, User
from referral_hub.core.db import city_tz, utcnow
from referral_hub.core.errors import Conflict, ValidationFailed
from referral_hub.directory.hours import Exception_, Interval
from referral_hub.directory.models import ProgramSite, Site
from referral_hub.extensions import db
from referral_hub.geo.base import Point, TravelEstimate, parse_point
from referral_hub.geo.service import get_geo, locate
from referral_hub.referrals import operations as referral_ops
from referral_hub.referrals.models import Referral, Status
from referral_hub.transport import operations as ops
from referral_hub.transport.models import NOT_STARTED, Leg, Ride, RideMode, RideStatus
from referral_hub.transport.planning import (
    PickupPlan,
    check_site_open,
    plan_for_appointment,
    plan_now,
)

# Referral states a leg may be booked in.
OUTBOUND_STATES = frozenset({Status.ACCEPTED})
RETURN_STATES = frozenset({Status.ACCEPTED, Status.EN_ROUTE, Status.ARRIVED, Status.HANDED_OFF})
# Transit is not routed: the drive estimate, slowed for stops, transfers and the wait.
TRANSIT_FACTOR = 1.8
TRANSIT_WAIT_MINUTES = 10.0


def transport_vendors() -> list[Organization]:
    return list(
        db.session.scalars(
            select(Organization)
            .where(Organization.kind == OrgKind.TRANSPORT_VENDOR, Organization.is_active)
            .order_by(Organization.name)
        )
    )


@dataclass(frozen=True)
class Booking:
    """What a responder asks for; the view or API fills it from its input."""

    leg: Leg = Leg.OUTBOUND
    mode: RideMode = RideMode.VENDOR
    place: str = ""  # typed pickup (outbound) or destination (return); or "lat,lon"
    lat: float | None = None  # from the phone, when the responder allowed it
    lon: float | None = None
    when: str = "appointment"  # appointment | now | at | will_call
    at: datetime | None = None  # aware; arrive-by (outbound) or pickup time (return)
    vendor_org_id: int | None = None
    wheelchair: bool = False
    service_animal: bool = False
    companions: int = 0
    driver_notes: str | None = None
    booking_reference: str | None = None


@dataclass
class BookingResult:
    ride: Ride
    plan: PickupPlan | None
    warnings: list[str] = field(default_factory=list)


WHEN_CHOICES = ("appointment", "now", "at", "will_call")


def travel_for(origin: Point, dest: Point, mode: RideMode, wheelchair: bool) -> TravelEstimate:
    """One travel answer for the trip (one remote call at most; the backend caches it)."""
    estimate = get_geo().travel(origin, dest, ops.travel_mode(mode, wheelchair))
    if mode is RideMode.TRANSIT:
        # No transit routing: the drive time slowed down, never labelled as routed.
        return dataclasses.replace(
            estimate,
            minutes=estimate.minutes * TRANSIT_FACTOR + TRANSIT_WAIT_MINUTES,
            minutes_low=estimate.minutes_low * TRANSIT_FACTOR + TRANSIT_WAIT_MINUTES / 2,
            minutes_high=estimate.minutes_high * TRANSIT_FACTOR + TRANSIT_WAIT_MINUTES * 2,
            source="estimate",
            note=_("Transit time is estimated from the driving time, with waiting."),
        )
    return estimate


def destination_site(referral: Referral) -> Site:
    """The referral's site, or the program's first active site."""
    if referral.site is not None:
        return referral.site
    site = db.session.scalar(
        select(Site)
        .join(ProgramSite, ProgramSite.site_id == Site.id)
        .where(ProgramSite.program_id == referral.program_id, Site.is_active)
        .order_by(ProgramSite.id)
        .limit(1)
    )
    if site is None:
        raise ValidationFailed(_("This program has no site to travel to."))
    return site


def _hours(program_id: int, site_id: int) -> tuple[bool, list[Interval], dict] | None:
    program_site = db.session.scalar(
        select(ProgramSite).where(
            ProgramSite.program_id == program_id, ProgramSite.site_id == site_id
        )
    )
    if program_site is None:
        return None
    weekly = [Interval(h.weekday, h.opens_at, h.closes_at) for h in program_site.weekly_hours]
    exceptions = {
        e.on_date: Exception_(e.closed, e.opens_at, e.closes_at) for e in program_site.exceptions
    }
    return program_site.open_24_7, weekly, exceptions


def region_bounds() -> tuple[float, float, float, float] | None:
    text = current_app.config.get("SERVICE_REGION")
    if not text:
        return None
    south, west, north, east = (float(part) for part in str(text).split(","))
    return south, west, north, east


def outside_region(point: Point) -> bool:
    bounds = region_bounds()
    if bounds is None:
        return False
    south, west, north, east = bounds
    return not (south <= point.lat <= north and west <= point.lon <= east)


def _place(booking: Booking, field_name: str) -> tuple[str, Point, bool]:
    """The label, point and whether it came from the phone, for the booking's place."""
    if booking.lat is not None and booking.lon is not None:
        try:
            point = Point(float(booking.lat), float(booking.lon))
        except (TypeError, ValueError):
            message = _("The phone's location could not be read. Type a place instead.")
            raise ValidationFailed(message, fields={field_name: [message]}) from None
        label = booking.place.strip() or f"{point.lat:.5f}, {point.lon:.5f}"
        return label[:200], point, True
    text = (booking.place or "").strip()
    if not text:
        message = _("Say where: type a place, or use the phone's location.")
        raise ValidationFailed(message, fields={field_name: [message]})
    point = parse_point(text)
    if point is not None:
        return text[:200], point, False
    place = locate(text, field=field_name)
    label = place.name if place.address is None else f"{place.name}, {place.address}"
    return label[:200], place.point, False


def _check_booking(referral: Referral, booking: Booking) -> Organization | None:
    errors: dict[str, list[str]] = {}
    states = OUTBOUND_STATES if booking.leg is Leg.OUTBOUND else RETURN_STATES
    if referral.status not in states:
        raise Conflict(
            _(
                "A ride cannot be booked while the referral is “%(status)s”.",
                status=referral.status.title,
            ),
            status=referral.status.value,
        )
    if booking.when not in WHEN_CHOICES:
        errors["when"] = [_("Choose when the ride is for.")]
    if booking.when == "will_call" and booking.leg is not Leg.RETURN:
        errors["when"] = [_("Only a return trip can wait for the client's call.")]
    if booking.when == "at" and (booking.at is None or booking.at.tzinfo is None):
        errors["at"] = [_("Give a date and time.")]
    if booking.when == "appointment" and referral.appointment_at is None:
        errors["when"] = [_("The referral has no appointment yet: choose now or a time.")]
    if not 0 <= booking.companions <= 6:
        errors["companions"] = [_("Between 0 and 6 companions.")]
    if booking.mode is RideMode.WALK and booking.companions < 0:
        errors["companions"] = [_("Between 0 and 6 companions.")]
    vendor = None
    if booking.mode.dispatched:
        vendors = {v.id: v for v in transport_vendors()}
        vendor_id = booking.vendor_org_id
        if vendor_id is None and len(vendors) == 1:
            vendor_id = next(iter(vendors))
        vendor = vendors.get(vendor_id) if vendor_id is not None else None
        if vendor is None:
            errors["vendor_org_id"] = [_("Choose a transport vendor.")]
    if errors:
        raise ValidationFailed(_("Please correct the marked fields."), fields=errors)
    active = db.session.scalar(
        select(Ride.id).where(
            Ride.referral_id == referral.id,
            Ride.leg == booking.leg,
            Ride.status.in_([s.value for s in NOT_STARTED | {RideStatus.PICKED_UP}]),
        )
    )
    if active is not None:
        raise Conflict(
            _("This trip already has a ride that is not finished. Cancel it first."),
            ride_id=active,
        )
    return vendor


def plan_trip(
    referral: Referral,
    site: Site,
    booking: Booking,
    travel: TravelEstimate,
    now: datetime,
) -> PickupPlan | None:
    """The pickup plan for the leg; raises ValidationFailed when it cannot work."""
    config = ops.settings()
    if booking.leg is Leg.RETURN:
        if booking.when == "will_call":
            return None
        start = booking.at if booking.when == "at" else now
        if booking.when == "appointment":
            start = referral.appointment_at or now  # after the appointment, at the earliest
        if start < now - timedelta(minutes=5):
            message = _("The pickup time has already passed.")
            raise ValidationFailed(message, fields={"at": [message]})
        return plan_now(travel, now=max(start, now), settings=config)
    if booking.when == "now":
        plan = plan_now(travel, now=now, settings=config)
    else:
        target = referral.appointment_at if booking.when == "appointment" else booking.at
        assert target is not None
        try:
            plan = plan_for_appointment(target, travel, now=now, settings=config)
        except ValidationFailed as error:
            # The planner names the appointment; with a typed time, name that field.
            if booking.when == "at":
                raise ValidationFailed(error.message, fields={"at": [error.message]}) from None
            raise
    hours = _hours(referral.program_id, site.id)
    if hours is not None:
        open_24_7, weekly, exceptions = hours
        try:
            check_site_open(
                plan, city_tz(), open_24_7=open_24_7, weekly=weekly, exceptions=exceptions
            )
        except ValidationFailed as error:
            key = "at" if booking.when == "at" else "when"
            raise ValidationFailed(error.message, fields={key: [error.message]}) from None
    return plan


def book_ride(
    referral: Referral, user: User | None, booking: Booking, *, now: datetime | None = None
) -> BookingResult:
    """Book one leg for a referral, planned from its appointment, a time, or now."""
    now = now or utcnow()
    vendor = _check_booking(referral, booking)
    site = destination_site(referral)
    site_point = Point(site.latitude, site.longitude)
    place_field = "place"
    label, point, from_device = _place(booking, place_field)
    if booking.leg is Leg.OUTBOUND:
        origin, dest = point, site_point
        pickup = (label, point)
        dropoff = (f"{site.name}, {site.address_1}", site_point)
    else:
        origin, dest = site_point, point
        pickup = (f"{site.name}, {site.address_1}", site_point)
        dropoff = (label, point)
    travel = travel_for(origin, dest, booking.mode, booking.wheelchair)
    plan = plan_trip(referral, site, booking, travel, now)
    warnings: list[str] = []
    far = outside_region(point)
    if far:
        warnings.append(
            _("This place is outside the service region: check it before the ride goes out.")
        )
    if travel.note:
        warnings.append(travel.note)
    dispatched = booking.mode.dispatched
    ride = Ride(
        referral_id=referral.id,
        leg=booking.leg,
        mode=booking.mode,
        status=RideStatus.REQUESTED if dispatched else RideStatus.SCHEDULED,
        vendor_org_id=vendor.id if vendor is not None else None,
        site_id=site.id,
        booked_by_id=user.id if user else None,
        booked_by_org_id=_booking_org(referral, user),
        pickup_label=pickup[0],
        pickup_lat=pickup[1].lat,
        pickup_lon=pickup[1].lon,
        pickup_from_device=from_device and booking.leg is Leg.OUTBOUND,
        dropoff_label=dropoff[0],
        dropoff_lat=dropoff[1].lat,
        dropoff_lon=dropoff[1].lon,
        outside_region=far,
        will_call=booking.when == "will_call",
        requested_for_at=(referral.appointment_at if booking.when == "appointment" else booking.at),
        travel_minutes=round(travel.minutes, 1),
        travel_minutes_high=round(travel.minutes_high, 1),
        distance_km=round(travel.distance_km, 2),
        estimate_source=travel.source,
        estimate_note=(travel.note or None) and str(travel.note)[:300],
        wheelchair=booking.wheelchair,
        service_animal=booking.service_animal,
        companions=booking.companions,
        driver_notes=(booking.driver_notes or "").strip()[:500] or None,
        booking_reference=(booking.booking_reference or "").strip()[:80] or None,
    )
    ops.apply_plan(ride, plan)
    db.session.add(ride)
    db.session.flush()
    actor_label = None if user else "system"
    ops.ride_event(
        ride, "book", None, ride.status, user, actor_label, data={"mode": ride.mode.value}
    )
    referral_ops.note_event(
        referral,
        "ride_booked",
        referral_ops.Actor(frozenset(), user=user, organization_id=ride.booked_by_org_id),
        data={"ride_id": ride.id, "leg": ride.leg.value, "mode": ride.mode.value},
    )
    db.session.flush()
    return BookingResult(ride=ride, plan=plan, warnings=warnings)


def _booking_org(referral: Referral, user: User | None) -> int | None:
    """The organization the booking is made for: the user's side of the referral."""
    if user is None:
        return None
    for org_id in (referral.referring_org_id, referral.provider_org_id):
        if org_id in user.organization_ids:
            return org_id
    return next(iter(sorted(user.organization_ids)), None)
