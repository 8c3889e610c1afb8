"""Ride rules: every ride transition and its effect on the referral, follow-ups, driver
links and the facts other pages show. Booking a leg is in booking.py, the board in board.py.

Like referral transitions, each ride transition locks the row, checks the declared table in
lifecycle.py, applies its effects and writes one RideEvent, all in the caller's transaction.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from blinker import Namespace
from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.orm.exc import StaleDataError

from referral_hub import policies
from referral_hub.accounts.models import User
from referral_hub.core.db import lock_row, utcnow
from referral_hub.core.errors import Conflict, Forbidden, ValidationFailed
from referral_hub.core.security import new_token, token_hash
from referral_hub.extensions import db
from referral_hub.geo.base import Mode, TravelEstimate
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
    plan_now,
)


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


# Sent in the transition's transaction after every ride action (assign, depart, ...): the
# client's messages listen (a driver assigned, a driver on the way).
ride_changed = Namespace().signal("ride-changed")


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


# --- planning helpers shared with booking ---------------------------------------------------


def travel_mode(mode: RideMode, wheelchair: bool) -> Mode:
    """The routing profile: a wheelchair changes the trip only when the person wheels it
    themselves; in a vehicle (ramp van, rideshare, escort) it is a drive."""
    if mode is RideMode.WALK:
        return Mode.WHEELCHAIR if wheelchair else Mode.WALK
    return Mode.DRIVE


def apply_plan(ride: Ride, plan: PickupPlan | None) -> None:
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
    """Load a ride for change, holding its row lock until the transaction ends."""
    return lock_row(db.session, Ride, ride_id)


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
    ride_event(
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
    ride_changed.send(current, action=action)
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
        apply_plan(ride, plan_now(stored_travel(ride), now=now, settings=settings()))
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


def ride_event(
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
    ride_event(ride, "link_issued", ride.status, ride.status, user, None)
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
