"""API schemas for rides, and what a viewer may see of a ride (read by the ride page too)."""

from __future__ import annotations

from typing import Any

from marshmallow import RAISE, Schema, fields, validate

from referral_hub import policies
from referral_hub.accounts.models import User
from referral_hub.transport.booking import WHEN_CHOICES
from referral_hub.transport.lifecycle import RIDE_BY_ACTION, RideTransition, ride_available
from referral_hub.transport.models import Leg, Ride, RideMode, RideStatus
from referral_hub.transport.operations import ride_sides

TIMES = (
    "requested_for_at",
    "window_start_at",
    "window_end_at",
    "arrive_by_at",
    "eta_earliest_at",
    "eta_latest_at",
    "en_route_at",
    "at_pickup_at",
    "picked_up_at",
    "dropped_off_at",
    "closed_at",
)


def _site_address(ride: Ride) -> str | None:
    site = ride.site
    if site is None:
        return None
    return ", ".join(part for part in (site.address_1, site.city, site.postal_code) if part)


def plan_allows(ride: Ride, action: str) -> bool:
    """Leave out actions the ride's plan rules out: "ready" only on a will-call return still
    waiting for the call, and no departure before there is a pickup time."""
    if action == "ready":
        return ride.will_call and ride.window_start_at is None
    if action in ("depart", "pick_up"):
        return ride.window_start_at is not None
    return True


def available_actions(user: User, ride: Ride) -> list[RideTransition]:
    """The ride actions this user may take now, in declared order."""
    return [
        t
        for t in ride_available(ride.status, ride_sides(user, ride))
        if plan_allows(ride, t.action)
    ]


def ride_view(user: User, ride: Ride) -> dict[str, Any]:
    """The ride as a dict for this viewer.

    A vendor's dispatcher who is not on the referral sees the ride, never the referral behind
    it: on a sensitive program not even the program's name, and the site as an address only.
    """
    referral = ride.referral
    on_referral = bool(policies.referral_sides(user, referral))
    hide_program = referral.program.sensitive and not on_referral
    pickup_label, dropoff_label = ride.pickup_label, ride.dropoff_label
    if hide_program:
        if ride.leg is Leg.OUTBOUND:
            dropoff_label = _site_address(ride)
        else:
            pickup_label = _site_address(ride)
    return {
        "id": ride.id,
        "referral_id": ride.referral_id,
        "on_referral": on_referral,
        "program_name": None if hide_program else referral.program.name,
        "leg": ride.leg,
        "mode": ride.mode,
        "status": ride.status,
        "version": ride.version,
        "vendor_org_id": ride.vendor_org_id,
        "will_call": ride.will_call,
        "reason_code": ride.reason_code,
        "times": {name: getattr(ride, name) for name in TIMES},
        "estimate_source": ride.estimate_source,
        "estimated": ride.estimate_source != "routed",
        "estimate_note": ride.estimate_note,
        "travel_minutes": ride.travel_minutes,
        "travel_minutes_high": ride.travel_minutes_high,
        "distance_km": ride.distance_km,
        "places": {
            "pickup": {"label": pickup_label, "lat": ride.pickup_lat, "lon": ride.pickup_lon},
            "dropoff": {"label": dropoff_label, "lat": ride.dropoff_lat, "lon": ride.dropoff_lon},
            "pickup_from_device": ride.pickup_from_device,
            "outside_region": ride.outside_region,
        },
        "mobility": {
            "wheelchair": ride.wheelchair,
            "service_animal": ride.service_animal,
            "companions": ride.companions,
        },
        "driver_notes": ride.driver_notes,
        "booking_reference": ride.booking_reference,
        "driver_first_name": ride.driver.first_name if ride.driver else None,
        "vehicle": ride.vehicle.label if ride.vehicle else None,
        "actions": [t.action for t in available_actions(user, ride)],
    }


# --- input -----------------------------------------------------------------------------------


class RideCreateSchema(Schema):
    """One leg to book; the place is typed text or "lat,lon", or lat and lon from a device."""

    class Meta:
        unknown = RAISE

    leg = fields.Enum(Leg, by_value=True, load_default=Leg.OUTBOUND)
    mode = fields.Enum(RideMode, by_value=True, load_default=RideMode.VENDOR)
    place = fields.String(load_default="", validate=validate.Length(max=200))
    lat = fields.Float(load_default=None, allow_none=True, validate=validate.Range(-90, 90))
    lon = fields.Float(load_default=None, allow_none=True, validate=validate.Range(-180, 180))
    when = fields.String(load_default="appointment", validate=validate.OneOf(WHEN_CHOICES))
    at = fields.AwareDateTime(
        load_default=None,
        allow_none=True,
        metadata={"description": "Arrive by (outbound) or pick up at (return), when 'at'"},
    )
    vendor_org_id = fields.Integer(load_default=None, allow_none=True)
    wheelchair = fields.Boolean(load_default=False)
    service_animal = fields.Boolean(load_default=False)
    companions = fields.Integer(load_default=0, validate=validate.Range(0, 6))
    driver_notes = fields.String(
        load_default=None, allow_none=True, validate=validate.Length(max=500)
    )
    booking_reference = fields.String(
        load_default=None, allow_none=True, validate=validate.Length(max=80)
    )


class RideActionSchema(Schema):
    """Fields a ride action may need; which ones are required is declared in lifecycle.py."""

    class Meta:
        unknown = RAISE

    expected_version = fields.Integer(
        load_default=None, metadata={"description": "Expected version (optimistic lock)"}
    )
    reason_code = fields.String(load_default=None, validate=validate.Length(max=40))
    driver_id = fields.Integer(load_default=None)
    vehicle_id = fields.Integer(load_default=None)


# --- output ----------------------------------------------------------------------------------


class RideTimesSchema(Schema):
    requested_for_at = fields.AwareDateTime(allow_none=True)
    window_start_at = fields.AwareDateTime(allow_none=True)
    window_end_at = fields.AwareDateTime(
        allow_none=True, metadata={"description": "Latest pickup that still arrives in time"}
    )
    arrive_by_at = fields.AwareDateTime(allow_none=True)
    eta_earliest_at = fields.AwareDateTime(allow_none=True)
    eta_latest_at = fields.AwareDateTime(allow_none=True)
    en_route_at = fields.AwareDateTime(allow_none=True)
    at_pickup_at = fields.AwareDateTime(allow_none=True)
    picked_up_at = fields.AwareDateTime(allow_none=True)
    dropped_off_at = fields.AwareDateTime(allow_none=True)
    closed_at = fields.AwareDateTime(allow_none=True)


class RidePointSchema(Schema):
    label = fields.String(allow_none=True)
    lat = fields.Float(allow_none=True)
    lon = fields.Float(allow_none=True)


class RidePlacesSchema(Schema):
    pickup = fields.Nested(RidePointSchema)
    dropoff = fields.Nested(RidePointSchema)
    pickup_from_device = fields.Boolean()
    outside_region = fields.Boolean()


class RideMobilitySchema(Schema):
    wheelchair = fields.Boolean()
    service_animal = fields.Boolean()
    companions = fields.Integer()


class RideSchema(Schema):
    """A ride as the caller may see it (a dispatcher off the referral: no sensitive program)."""

    id = fields.Integer()
    referral_id = fields.Integer()
    program_name = fields.String(
        allow_none=True, metadata={"description": "Null when withheld from the caller"}
    )
    leg = fields.Enum(Leg, by_value=True)
    mode = fields.Enum(RideMode, by_value=True)
    status = fields.Enum(RideStatus, by_value=True)
    version = fields.Integer()
    vendor_org_id = fields.Integer(allow_none=True)
    will_call = fields.Boolean()
    reason_code = fields.String(allow_none=True)
    times = fields.Nested(RideTimesSchema)
    estimate_source = fields.String(
        allow_none=True, validate=validate.OneOf(["routed", "estimate"])
    )
    estimate_note = fields.String(allow_none=True)
    travel_minutes = fields.Float(allow_none=True)
    travel_minutes_high = fields.Float(allow_none=True)
    distance_km = fields.Float(allow_none=True)
    places = fields.Nested(RidePlacesSchema)
    mobility = fields.Nested(RideMobilitySchema)
    driver_notes = fields.String(allow_none=True)
    booking_reference = fields.String(allow_none=True)
    driver_first_name = fields.String(allow_none=True)
    vehicle = fields.String(allow_none=True)
    actions = fields.List(fields.String(validate=validate.OneOf(list(RIDE_BY_ACTION))))


class RideCreatedSchema(RideSchema):
    """A booked ride, with what the booker should check (outside the region, estimates)."""

    warnings = fields.List(fields.String())


class RideListSchema(Schema):
    items = fields.List(fields.Nested(RideSchema))
