"""Booking against a local server speaking openrouteservice v2: routed times, one request per
distinct trip, and a routing service down, over quota or unable to route never blocking."""

import pytest

from referral_hub.extensions import db
from referral_hub.geo.service import EXTENSION_KEY
from referral_hub.referrals.models import Referral
from referral_hub.transport import booking as booking_ops
from referral_hub.transport import operations as rides
from referral_hub.transport.models import Leg
from tests.geo.servers import NOT_ROUTABLE, GeoServer, Reply, ors_error
from tests.referrals.conftest import referrer
from tests.transport.conftest import next_weekday_at

PICKUP = "44.9483,-93.2348"


@pytest.fixture
def routed(app):
    """The app routing through a local ORS server for this test only."""
    saved = {k: app.config.get(k) for k in ("GEO_BACKEND", "ORS_BASE_URL", "ORS_TIMEOUT")}
    with GeoServer() as server:
        app.config.update(GEO_BACKEND="openrouteservice", ORS_BASE_URL=server.url, ORS_TIMEOUT=2)
        app.extensions.pop(EXTENSION_KEY, None)
        try:
            yield server
        finally:
            app.config.update(saved)
            app.extensions.pop(EXTENSION_KEY, None)


def book(referral_id, user, **kwargs):
    booking = booking_ops.Booking(**{"place": PICKUP, **kwargs})
    return booking_ops.book_ride(
        db.session.get(Referral, referral_id), user, booking, now=next_weekday_at(10)
    )


def test_a_routed_booking_asks_once_per_distinct_trip(app, world, fleet, accepted, routed):
    first, second = accepted(next_weekday_at(11)), accepted(next_weekday_at(11, 30))
    with app.test_request_context():
        one = book(first, referrer(world).user).ride
        two = book(second, referrer(world).user).ride
        assert one.estimate_source == "routed" and one.estimate_note is None
        assert two.travel_minutes == one.travel_minutes
        assert len(routed.requests("/v2/directions")) == 1
        # A will-call return is planned from the stored answer when the client is ready.
        back = book(first, referrer(world).user, leg=Leg.RETURN, when="will_call").ride
        assert len(routed.requests("/v2/directions")) == 2  # the way back is another trip
        rides.perform_ride(back, "ready", rides.user_actor(referrer(world).user, back))
        assert len(routed.requests("/v2/directions")) == 2


@pytest.mark.parametrize(
    "reply",
    [
        Reply(429, {"error": "Rate limit exceeded"}),
        Reply(403, {"error": "Quota exceeded"}),
        Reply(503, {"error": "Service unavailable"}),
    ],
    ids=["rate-limited", "over-quota", "down"],
)
def test_routing_trouble_never_blocks_booking(app, world, fleet, accepted, routed, reply):
    referral_id = accepted(next_weekday_at(11))
    routed.script(reply)
    with app.test_request_context():
        result = book(referral_id, referrer(world).user)
        assert result.ride.id is not None and result.ride.estimate_source == "estimate"
        assert "Routing service unavailable" in result.ride.estimate_note
        assert result.ride.estimate_note in result.warnings


def test_an_unroutable_pickup_names_itself(app, world, fleet, accepted, routed):
    referral_id = accepted(next_weekday_at(11))
    routed.script(ors_error(404, 2010, f"{NOT_ROUTABLE} 0: -93.2348000 44.9483000."))
    with app.test_request_context():
        result = book(referral_id, referrer(world).user)
        assert result.ride.estimate_source == "estimate"
        assert "starting point" in result.ride.estimate_note
