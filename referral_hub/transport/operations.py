"""Ride rules: booking a leg from a referral with its pickup plan, every ride transition and
its effect on the referral, driver links, follow-ups and the facts other pages show.

Like referral transitions, each ride transition locks the row, checks the declared table in
lifecycle.py, applies its effects and writes one RideEvent, all in the caller's transaction.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.orm import selectinload
from sqlalchemy.orm.exc import StaleDataError

from referral_hub import policies
from referral_hub.accounts.models import Organization, OrgKind, User
from referral_hub.core.db import utcnow
from referral_hub.core.errors import Conflict, Forbidden, ValidationFailed
from referral_hub.core.security import new_token, token_hash
from referral_hub.directory.hours import Exception_, Interval
from referral_hub.directory.models import ProgramSite, Site
from referral_hub.extensions import db
from referral_hub.geo.base import Mode, Point, TravelEstimate, parse_point
from referral_hub.geo.service import get_geo, locate
from referral_hub.notify.operations import notify_users
from referral_hub.referrals import operations as referral_ops
from referral_hub.referrals.lifecycle import Side
from referral_hub.referrals.models import Referral, Status
from referral_hub.transport.lifecycle import (
    RIDE_BY_ACTION,
    RideSide,
    RideTransition,
)
from referral_hub.transport.models import (
    NOT_STARTED,
    Driver,
    DriverLink,
    FollowUp,
    Leg,
    Ride,
    RideEvent,
    RideMode,
    RideStatus,
    Vehicle,
)
from referral_hub.transport.planning import (
    PickupPlan,
    PlanSettings,
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


@dataclass(frozen=True)
class RideActor:
    """Who acts on a ride: a user with their sides, a driver through a link, or the system."""

    sides: frozenset[RideSide]
    user: User | None = None
    organization_id: int | None = None
    label: str | None = None

    @classmethod
    def system(cls) -> RideActor:
        return cls(frozenset({RideSide.SYSTEM}), label="system")

    @classmethod
    def driver(cls) -> RideActor:
        return cls(frozenset({RideSide.DRIVER}), label="driver")


def settings() -> PlanSettings:
    config = current_app.config
    return PlanSettings(
        check_in_buffer=timedelta(minutes=config["RIDE_CHECK_IN_MINUTES"]),
        boarding=timedelta(minutes=config["RIDE_BOARDING_MINUTES"]),
        window=timedelta(minutes=config["RIDE_WINDOW_MINUTES"]),
    )


def city_tz() -> ZoneInfo:
    return ZoneInfo(current_app.config["TIMEZONE"])


# --- who may do what -------------------------------------------------------------------------


def ride_sides(user: User, ride: Ride) -> set[RideSide]:
    """How a user stands to a ride: its vendor's dispatcher, and/or on its referral."""
    sides: set[RideSide] = set()
    if ride.vendor_org_id is not None and ride.vendor_org_id in policies.dispatcher_org_ids(user):
        sides.add(RideSide.DISPATCH)
    if policies.referral_sides(user, ride.referral):
        sides.add(RideSide.BOOKER)
        if not ride.mode.dispatched:
            sides.add(RideSide.COMPANION)
    return sides


def user_actor(user: User, ride: Ride) -> RideActor:
    org_id = next(iter(sorted(user.organization_ids)), None)
    return RideActor(frozenset(ride_sides(user, ride)), user=user, organization_id=org_id)


def transport_vendors() -> list[Organization]:
    return list(
        db.session.scalars(
            select(Organization)
            .where(Organization.kind == OrgKind.TRANSPORT_VENDOR, Organization.is_active)
            .order_by(Organization.name)
        )
    )


# --- booking ---------------------------------------------------------------------------------


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


def travel_mode(mode: RideMode, wheelchair: bool) -> Mode:
    if mode is RideMode.WALK:
        return Mode.WHEELCHAIR if wheelchair else Mode.WALK
    if wheelchair and mode in (RideMode.VENDOR, RideMode.RIDESHARE, RideMode.ESCORT):
        return Mode.WHEELCHAIR
    return Mode.DRIVE


def travel_for(origin: Point, dest: Point, mode: RideMode, wheelchair: bool) -> TravelEstimate:
    """One travel answer for the trip (one remote call at most; the backend caches it)."""
    estimate = get_geo().travel(origin, dest, travel_mode(mode, wheelchair))
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
    config = settings()
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
    _apply_plan(ride, plan)
    db.session.add(ride)
    db.session.flush()
    actor_label = None if user else "system"
    _ride_event(ride, "book", None, ride.status, user, actor_label, data={"mode": ride.mode.value})
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


def _apply_plan(ride: Ride, plan: PickupPlan | None) -> None:
    if plan is None:
        return
    ride.window_start_at = plan.window_start
    ride.window_end_at = plan.window_end
    ride.arrive_by_at = plan.arrive_by
    ride.eta_earliest_at = plan.arrival_earliest
    ride.eta_latest_at = plan.arrival_latest


def stored_travel(ride: Ride) -> TravelEstimate:
    """The estimate kept at booking: re-planning never asks the routing service again."""
    minutes = ride.travel_minutes or 0.0
    high = ride.travel_minutes_high or minutes
    return TravelEstimate(
        minutes=minutes,
        minutes_low=max(0.0, minutes - (high - minutes)),
        minutes_high=high,
        distance_km=ride.distance_km or 0.0,
        mode=travel_mode(ride.mode, ride.wheelchair),
        source="routed" if ride.estimate_source == "routed" else "estimate",
        note=ride.estimate_note,
    )


# --- transitions -----------------------------------------------------------------------------


def lock(ride_id: int) -> Ride | None:
    stmt = select(Ride).where(Ride.id == ride_id)
    if db.session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    return db.session.scalar(stmt.execution_options(populate_existing=True))


def perform_ride(
    ride: Ride,
    action: str,
    actor: RideActor,
    *,
    expected_version: int | None = None,
    now: datetime | None = None,
    **supplied: Any,
) -> Ride:
    """Apply one declared ride transition and its effects on the referral."""
    now = now or utcnow()
    transition = RIDE_BY_ACTION.get(action)
    if transition is None:
        raise ValidationFailed(_("Unknown action."), fields={"action": [_("Unknown action.")]})
    if not transition.sides & actor.sides:
        raise Forbidden(_("You cannot do this to this ride."))
    current = lock(ride.id) or ride
    if expected_version is not None and current.version != expected_version:
        raise Conflict(
            _("Someone else changed this ride first. Reload and try again."),
            status=current.status.value,
            version=current.version,
        )
    if current.status not in transition.sources:
        raise Conflict(
            _(
                "This ride is now “%(status)s”: it cannot be changed that way.",
                status=current.status.title,
            ),
            status=current.status.value,
            version=current.version,
        )
    values = {k: v for k, v in supplied.items() if v not in (None, "")}
    _check_ride_values(transition, current, values, now)
    before = current.status
    data = _apply_ride(transition, current, values, now)
    if transition.target is not None:
        current.status = transition.target
    if current.status.terminal and current.closed_at is None:
        current.closed_at = now
        _shorten_links(current, now)
    _ride_event(
        current,
        action,
        before,
        current.status,
        actor.user,
        actor.label,
        reason_code=values.get("reason_code"),
        data=data,
    )
    try:
        db.session.flush()
    except StaleDataError as exc:
        raise Conflict(
            _("Someone else changed this ride first. Reload and try again."),
            status=before.value,
        ) from exc
    _referral_effects(current, action, actor)
    return current


def _check_ride_values(
    transition: RideTransition, ride: Ride, values: dict[str, Any], now: datetime
) -> None:
    errors: dict[str, list[str]] = {}
    for name in transition.requires:
        if name not in values:
            errors[name] = [_("This is required.")]
    code = values.get("reason_code")
    if transition.reasons and code is not None and code not in transition.reasons:
        errors["reason_code"] = [_("Choose one of the listed reasons.")]
    action = transition.action
    if action == "assign" and "driver_id" in values:
        driver = _own(Driver, values["driver_id"], ride.vendor_org_id)
        if driver is None or not driver.is_active:
            errors["driver_id"] = [_("Choose one of your active drivers.")]
        vehicle_id = values.get("vehicle_id")
        if vehicle_id is not None:
            vehicle = _own(Vehicle, vehicle_id, ride.vendor_org_id)
            if vehicle is None or not vehicle.is_active:
                errors["vehicle_id"] = [_("Choose one of your active vehicles.")]
            elif ride.wheelchair and not vehicle.wheelchair_accessible:
                errors["vehicle_id"] = [_("This ride needs a wheelchair-accessible vehicle.")]
            elif 1 + ride.companions > vehicle.seats:
                errors["vehicle_id"] = [_("This vehicle has too few seats for the party.")]
        elif ride.wheelchair:
            errors["vehicle_id"] = [_("This ride needs a wheelchair-accessible vehicle.")]
    if action == "ready" and not (ride.will_call and ride.window_start_at is None):
        raise Conflict(_("This ride already has a pickup time."), status=ride.status.value)
    if action in ("depart", "pick_up") and ride.window_start_at is None:
        raise Conflict(_("The client has not said they are ready yet."), status=ride.status.value)
    if action == "no_show":
        wait = timedelta(minutes=current_app.config["RIDE_NO_SHOW_WAIT_MINUTES"])
        if ride.at_pickup_at is None:
            errors["action"] = [_("Tap “Arrived at pickup” first, then wait for the client.")]
        else:
            waited_from = max(ride.at_pickup_at, ride.window_start_at or ride.at_pickup_at)
            if now < waited_from + wait:
                minutes = max(1, round((waited_from + wait - now).total_seconds() / 60))
                errors["action"] = [
                    _(
                        "Please wait %(minutes)d more minutes for the client before "
                        "marking them not at pickup.",
                        minutes=minutes,
                    )
                ]
    if errors:
        raise ValidationFailed(
            next(iter(errors.values()))[0]
            if list(errors) == ["action"]
            else _("Please correct the marked fields."),
            fields=errors,
        )


def _own(model: type, ident: Any, organization_id: int | None) -> Any:
    try:
        ident = int(ident)
    except (TypeError, ValueError):
        return None
    record = db.session.get(model, ident)
    if record is None or record.organization_id != organization_id:
        return None
    return record


def _apply_ride(
    transition: RideTransition, ride: Ride, values: dict[str, Any], now: datetime
) -> dict[str, Any]:
    """Effects of each ride action on the ride; returns the event's structured data."""
    action = transition.action
    data: dict[str, Any] = {}
    if action == "assign":
        driver_id = int(values["driver_id"])
        vehicle_id = int(values["vehicle_id"]) if values.get("vehicle_id") else None
        if ride.driver_id is not None and ride.driver_id != driver_id:
            revoke_links(ride, now)  # the previous driver's link stops working
        ride.driver_id = driver_id
        ride.vehicle_id = vehicle_id
        data = {"driver_id": driver_id, "vehicle_id": vehicle_id}
    elif action == "ready":
        _apply_plan(ride, plan_now(stored_travel(ride), now=now, settings=settings()))
        data = {"window_start_at": ride.window_start_at.isoformat()}  # type: ignore[union-attr]
    elif action == "depart":
        ride.en_route_at = now
    elif action == "at_pickup":
        ride.at_pickup_at = now
    elif action == "pick_up":
        ride.picked_up_at = now
    elif action == "drop_off":
        ride.dropped_off_at = now
    if "reason_code" in values:
        ride.reason_code = values["reason_code"]
    return data


def _referral_effects(ride: Ride, action: str, actor: RideActor) -> None:
    """A pickup puts the referral en route, a drop-off makes it arrived; a no-show asks the
    referring responder to follow up."""
    if ride.leg is not Leg.OUTBOUND:
        return
    referral = ride.referral
    as_transport = referral_ops.Actor(
        frozenset({Side.TRANSPORT}),
        user=actor.user,
        organization_id=actor.organization_id,
        label=actor.label or "ride",
    )
    if action == "pick_up" and referral.status == Status.ACCEPTED:
        referral_ops.perform(referral, "depart", as_transport)
    elif action == "drop_off" and referral.status in (Status.ACCEPTED, Status.EN_ROUTE):
        referral_ops.perform(referral, "arrive", as_transport, at=ride.dropped_off_at)
    elif action == "no_show":
        _follow_up(ride, referral)


def _follow_up(ride: Ride, referral: Referral) -> FollowUp:
    follow_up = FollowUp(
        referral_id=referral.id,
        ride_id=ride.id,
        organization_id=referral.referring_org_id,
        assigned_to_id=referral.referring_user_id,
        reason="ride_no_show",
    )
    db.session.add(follow_up)
    referral_ops.note_event(
        referral,
        "ride_no_show",
        referral_ops.Actor(frozenset(), label="driver"),
        data={"ride_id": ride.id},
    )
    notify_users(
        [referral.referring_user] if referral.referring_user else [],
        "ride_no_show",
        params={"program_name": referral.program.name, "referral_id": referral.id},
        referral_id=referral.id,
        dedupe_key=f"ride:{ride.id}:no_show",
    )
    db.session.flush()
    return follow_up


def open_follow_ups(organization_ids: set[int]) -> list[FollowUp]:
    return list(
        db.session.scalars(
            select(FollowUp)
            .where(
                FollowUp.organization_id.in_(organization_ids or {-1}),
                FollowUp.resolved_at.is_(None),
            )
            .order_by(FollowUp.id)
        )
    )


def resolve_follow_up(follow_up: FollowUp, user: User, now: datetime | None = None) -> None:
    if follow_up.resolved_at is not None:
        raise Conflict(_("This follow-up was already resolved."))
    follow_up.resolved_at = now or utcnow()
    follow_up.resolved_by_id = user.id
    db.session.flush()


@referral_ops.referral_closed.connect
def cancel_rides_for_referral(referral: Referral) -> list[Ride]:
    """A declined, cancelled or failed referral calls off every ride not yet started."""
    rides = db.session.scalars(
        select(Ride).where(
            Ride.referral_id == referral.id,
            Ride.status.in_([s.value for s in NOT_STARTED]),
        )
    ).all()
    for ride in rides:
        perform_ride(ride, "cancel", RideActor.system(), reason_code="referral_closed")
    return list(rides)


def _ride_event(
    ride: Ride,
    action: str,
    before: RideStatus | None,
    after: RideStatus | None,
    user: User | None,
    label: str | None,
    *,
    reason_code: str | None = None,
    data: dict[str, Any] | None = None,
) -> RideEvent:
    event = RideEvent(
        ride_id=ride.id,
        action=action,
        from_status=before,
        to_status=after,
        actor_user_id=user.id if user else None,
        actor_label=label,
        reason_code=reason_code,
        data=data or {},
        created_at=utcnow(),
    )
    db.session.add(event)
    return event


# --- driver links ----------------------------------------------------------------------------


def link_expiry(ride: Ride, now: datetime) -> datetime:
    """A link lives until some hours after the latest the ride could end."""
    hours = timedelta(hours=current_app.config["DRIVER_LINK_HOURS_AFTER"])
    end = ride.eta_latest_at or ride.window_end_at or now
    return max(end, now) + hours


def issue_driver_link(ride: Ride, user: User | None, now: datetime | None = None) -> str:
    """A new link for the ride's driver; earlier links stop working. Returns the token once."""
    now = now or utcnow()
    if ride.driver_id is None:
        raise Conflict(_("Assign a driver first."))
    if ride.status.terminal:
        raise Conflict(_("This ride is over."), status=ride.status.value)
    revoke_links(ride, now)
    token = new_token("d_")
    db.session.add(
        DriverLink(
            ride_id=ride.id,
            driver_id=ride.driver_id,
            token_hash=token_hash(token),
            expires_at=link_expiry(ride, now),
            created_by_id=user.id if user else None,
        )
    )
    _ride_event(ride, "link_issued", ride.status, ride.status, user, None)
    db.session.flush()
    return token


def revoke_links(ride: Ride, now: datetime) -> None:
    for link in db.session.scalars(
        select(DriverLink).where(DriverLink.ride_id == ride.id, DriverLink.revoked_at.is_(None))
    ):
        link.revoked_at = now


def _shorten_links(ride: Ride, now: datetime) -> None:
    """A finished ride's link shows its end for a short while, then expires."""
    grace = now + timedelta(minutes=30)
    for link in db.session.scalars(
        select(DriverLink).where(DriverLink.ride_id == ride.id, DriverLink.revoked_at.is_(None))
    ):
        link.expires_at = min(link.expires_at, grace)


def link_for_token(token: str, now: datetime | None = None) -> DriverLink | None:
    """The live link for a token, or None (unknown, revoked or expired: all look alike)."""
    now = now or utcnow()
    if not token or len(token) > 100:
        return None
    link = db.session.scalar(select(DriverLink).where(DriverLink.token_hash == token_hash(token)))
    if link is None or link.revoked_at is not None or link.expires_at <= now:
        return None
    return link


# --- facts for other pages -------------------------------------------------------------------


@dataclass(frozen=True)
class RideSummary:
    id: int
    leg: Leg
    mode: RideMode
    status: RideStatus
    will_call: bool
    window_start_at: datetime | None
    window_end_at: datetime | None
    eta_earliest_at: datetime | None
    eta_latest_at: datetime | None
    estimated: bool
    estimate_note: str | None
    driver_first_name: str | None
    vehicle: str | None
    wheelchair: bool

    def as_dict(self) -> dict[str, Any]:
        return {
            k: (v.value if hasattr(v, "value") else v) for k, v in dataclasses.asdict(self).items()
        }


def ride_summary(ride: Ride) -> RideSummary:
    """What a client page shows of a ride: no addresses, no notes, the driver's first name."""
    return RideSummary(
        id=ride.id,
        leg=ride.leg,
        mode=ride.mode,
        status=ride.status,
        will_call=ride.will_call,
        window_start_at=ride.window_start_at,
        window_end_at=ride.window_end_at,
        eta_earliest_at=ride.eta_earliest_at,
        eta_latest_at=ride.eta_latest_at,
        estimated=ride.estimate_source != "routed",
        estimate_note=ride.estimate_note,
        driver_first_name=ride.driver.first_name if ride.driver else None,
        vehicle=ride.vehicle.label if ride.vehicle else None,
        wheelchair=ride.wheelchair,
    )


def rides_for_referral(referral_id: int) -> list[Ride]:
    return list(
        db.session.scalars(select(Ride).where(Ride.referral_id == referral_id).order_by(Ride.id))
    )


# --- the dispatch board ----------------------------------------------------------------------

LATE_STATES = frozenset({RideStatus.REQUESTED, RideStatus.SCHEDULED, RideStatus.EN_ROUTE_TO_PICKUP})


@dataclass
class BoardRow:
    ride: Ride
    late: bool
    overlaps: list[int]  # ids of the same driver's rides whose times overlap this one
    unassigned: bool


@dataclass
class Board:
    day: Any
    rows: list[BoardRow]
    counts: dict[str, int]
    drivers: list[Driver]
    vehicles: list[Vehicle]


def day_bounds(day: Any) -> tuple[datetime, datetime]:
    tz = city_tz()
    start = datetime.combine(day, datetime.min.time(), tzinfo=tz)
    return start, start + timedelta(days=1)


def dispatch_board(
    organization_ids: set[int],
    day: Any,
    *,
    statuses: set[RideStatus] | None = None,
    now: datetime | None = None,
) -> Board:
    """A vendor's rides of one city day in pickup order, with late and overlap flags.

    Will-call returns waiting for the call are listed with the day's rides they belong to
    (by their referral's appointment), so the dispatcher sees them coming.
    """
    now = now or utcnow()
    start, end = day_bounds(day)
    orgs = organization_ids or {-1}
    stmt = select(Ride).where(
        Ride.vendor_org_id.in_(orgs),
        ((Ride.window_start_at >= start) & (Ride.window_start_at < end))
        | (
            Ride.window_start_at.is_(None)
            & (Ride.requested_for_at >= start)
            & (Ride.requested_for_at < end)
        ),
    )
    # Everything a board row shows, loaded up front: the query count does not grow with rides.
    stmt = stmt.options(
        selectinload(Ride.driver),
        selectinload(Ride.vehicle),
        selectinload(Ride.site),
        selectinload(Ride.referral).selectinload(Referral.client),
        selectinload(Ride.referral).selectinload(Referral.program),
    )
    rides = db.session.scalars(stmt.order_by(Ride.window_start_at, Ride.id)).all()
    counts: dict[str, int] = {s.value: 0 for s in RideStatus}
    for ride in rides:
        counts[ride.status.value] += 1
    by_driver: dict[int, list[Ride]] = {}
    for ride in rides:
        if ride.driver_id is not None and ride.status not in (
            RideStatus.CANCELLED,
            RideStatus.NO_SHOW,
        ):
            by_driver.setdefault(ride.driver_id, []).append(ride)
    overlaps = _overlaps(by_driver)
    rows = [
        BoardRow(
            ride=ride,
            late=ride.status in LATE_STATES
            and ride.window_end_at is not None
            and ride.window_end_at < now
            and ride.picked_up_at is None,
            overlaps=overlaps.get(ride.id, []),
            unassigned=ride.mode.dispatched and ride.driver_id is None and not ride.status.terminal,
        )
        for ride in rides
        if not statuses or ride.status in statuses
    ]
    drivers = list(
        db.session.scalars(
            select(Driver)
            .where(Driver.organization_id.in_(orgs), Driver.is_active)
            .order_by(Driver.first_name, Driver.id)
        )
    )
    vehicles = list(
        db.session.scalars(
            select(Vehicle)
            .where(Vehicle.organization_id.in_(orgs), Vehicle.is_active)
            .order_by(Vehicle.label, Vehicle.id)
        )
    )
    return Board(day=day, rows=rows, counts=counts, drivers=drivers, vehicles=vehicles)


def _busy(ride: Ride) -> tuple[datetime, datetime] | None:
    """From the start of the pickup window to the latest arrival: the driver is taken."""
    if ride.window_start_at is None:
        return None
    end = ride.eta_latest_at or ride.window_end_at or ride.window_start_at
    return ride.window_start_at, end


def _overlaps(by_driver: dict[int, list[Ride]]) -> dict[int, list[int]]:
    """Ride ids whose busy times overlap another ride of the same driver (sweep per driver)."""
    found: dict[int, list[int]] = {}
    for rides in by_driver.values():
        spans = sorted(
            ((span, ride.id) for ride in rides if (span := _busy(ride)) is not None),
            key=lambda item: item[0][0],
        )
        active: list[tuple[datetime, int]] = []  # (end, id) of spans still open
        for (begin, finish), ride_id in spans:
            active = [(e, i) for e, i in active if e > begin]
            for _end, other in active:
                found.setdefault(ride_id, []).append(other)
                found.setdefault(other, []).append(ride_id)
            active.append((finish, ride_id))
    return found
