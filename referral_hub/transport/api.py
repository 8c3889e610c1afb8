"""JSON API for rides: book a leg of a referral's trip, read rides, take ride actions."""

from __future__ import annotations

from flask import Blueprint
from flask_babel import gettext as _
from flask_login import current_user, login_required

from referral_hub import policies
from referral_hub.core.api import API_PREFIX, endpoint, load_json
from referral_hub.core.errors import Forbidden, NotFound
from referral_hub.extensions import csrf, db
from referral_hub.referrals.models import Referral
from referral_hub.transport import booking as booking_ops
from referral_hub.transport import operations as ops
from referral_hub.transport.lifecycle import RIDE_BY_ACTION
from referral_hub.transport.models import Ride
from referral_hub.transport.schemas import (
    RideActionSchema,
    RideCreatedSchema,
    RideCreateSchema,
    RideListSchema,
    RideSchema,
    ride_view,
)

bp = Blueprint("transport_api", __name__, url_prefix=API_PREFIX)
csrf.exempt(bp)  # bearer requests need none; cookie requests are checked in accounts.auth


@bp.post("/referrals/<int:referral_id>/rides")
@login_required
@endpoint(
    summary="Book one leg of the referral's trip, planned from its appointment, a time or now",
    tag="transport",
    body=RideCreateSchema,
    response=RideCreatedSchema,
    status=201,
    errors=(403, 404, 409),
)
def create_ride(referral_id: int):
    found = policies.get_visible_or_404(current_user, Referral, referral_id)
    if not policies.referral_sides(current_user, found):
        raise Forbidden(_("You are not on this referral."))
    booking = booking_ops.Booking(**load_json(RideCreateSchema()))
    result = booking_ops.book_ride(found, current_user, booking)
    db.session.commit()
    body = ride_view(current_user, result.ride)
    body["warnings"] = [str(w) for w in result.warnings]
    return RideCreatedSchema().dump(body), 201


@bp.get("/referrals/<int:referral_id>/rides")
@login_required
@endpoint(
    summary="The referral's rides, oldest first",
    tag="transport",
    response=RideListSchema,
    errors=(404,),
)
def rides(referral_id: int):
    found = policies.get_visible_or_404(current_user, Referral, referral_id)
    items = [ride_view(current_user, ride) for ride in ops.rides_for_referral(found.id)]
    return RideListSchema().dump({"items": items})


@bp.get("/rides/<int:ride_id>")
@login_required
@endpoint(
    summary="One ride as the caller may see it", tag="transport", response=RideSchema, errors=(404,)
)
def ride(ride_id: int):
    found = policies.get_visible_or_404(current_user, Ride, ride_id)
    return RideSchema().dump(ride_view(current_user, found))


@bp.post("/rides/<int:ride_id>/actions/<action>")
@login_required
@endpoint(
    summary="Take a ride action (assign, ready, depart, at_pickup, pick_up, drop_off, "
    "no_show, cancel)",
    tag="transport",
    body=RideActionSchema,
    response=RideSchema,
    errors=(403, 404, 409),
)
def act(ride_id: int, action: str):
    found = policies.get_visible_or_404(current_user, Ride, ride_id)
    if action not in RIDE_BY_ACTION:
        raise NotFound(_("Unknown action."))
    data = load_json(RideActionSchema())
    version = data.pop("expected_version")
    updated = ops.perform_ride(
        found, action, ops.user_actor(current_user, found), expected_version=version, **data
    )
    db.session.commit()
    return RideSchema().dump(ride_view(current_user, updated))
