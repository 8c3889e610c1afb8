"""Ride rules where they live: booking and planning, the lifecycle table, effects on the
referral, driver links, the dispatch board's flags and the summary for client pages."""

from datetime import timedelta

import pytest

from referral_hub.core.db import city_tz, utcnow
from referral_hub.core.errors import Conflict, Forbidden, ValidationFailed
from referral_hub.extensions import db
from referral_hub.geo.base import Point
from referral_hub.notify.models import Message
from referral_hub.referrals import operations as referral_ops
from referral_hub.referrals.models import Referral, ReferralEvent, Status
from referral_hub.transport import board as board_ops
from referral_hub.transport import booking as booking_ops
from referral_hub.transport import operations as rides
from referral_hub.transport.lifecycle import RIDE_TRANSITIONS, RideSide
from referral_hub.transport.models import (
    DriverLink,
    FollowUp,
    Leg,
    Ride,
    RideMode,
    RideStatus,
)
from tests.referrals.conftest import provider, referrer
from tests.transport.conftest import dispatcher_actor, next_weekday_at

PICKUP = "44.9483,-93.2348"  # a few km south of the site (44.97, -93.26)


def book(referral_id, user, now=None, **kwargs):
    """Book at 10:00 on a coming weekday (the test site is open 9-17 on weekdays)."""
    booking = booking_ops.Booking(**{"place": PICKUP, **kwargs})
    now = now or next_weekday_at(10)
    return booking_ops.book_ride(db.session.get(Referral, referral_id), user, booking, now=now)


def test_booking_plans_the_pickup_from_the_appointment(app, world, fleet, accepted):
    appointment = next_weekday_at(11)
    referral_id = accepted(appointment)
    with app.test_request_context():
        result = book(referral_id, referrer(world).user)
        ride = result.ride
        assert ride.status is RideStatus.REQUESTED and ride.vendor_org_id == fleet.vendor.id
        assert ride.pickup_lat == pytest.approx(44.9483) and ride.dropoff_lat == 44.97
        # pickup = appointment - check-in (10) - travel (upper) - boarding (5), 20 min window
        latest = appointment - timedelta(minutes=15 + ride.travel_minutes_high)
        assert abs((ride.window_end_at - latest).total_seconds()) < 61
        assert ride.window_end_at - ride.window_start_at == timedelta(minutes=20)
        assert ride.estimate_source == "estimate" and ride.arrive_by_at < appointment
        assert ride.eta_latest_at <= ride.arrive_by_at + timedelta(seconds=61)
        assert [e.action for e in ride.events] == ["book"]
        events = db.session.query(ReferralEvent).filter_by(referral_id=referral_id).all()
        assert events[-1].action == "ride_booked" and events[-1].data["ride_id"] == ride.id


def test_a_ride_cannot_reach_a_closed_site_or_a_past_appointment(app, world, fleet, accepted):
    referral_id = accepted(next_weekday_at(11))
    with app.test_request_context():
        saturday = next_weekday_at(11, days_ahead=1)
        while saturday.astimezone(city_tz()).weekday() != 5:
            saturday += timedelta(days=1)
        with pytest.raises(ValidationFailed) as closed:
            book(referral_id, referrer(world).user, when="at", at=saturday)
        assert "closed" in closed.value.fields["at"][0]
        with pytest.raises(ValidationFailed) as past:
            soon = next_weekday_at(10, 5)
            book(referral_id, referrer(world).user, when="at", at=soon)
        assert "not enough time" in past.value.fields["at"][0]
        assert db.session.query(Ride).count() == 0


def test_booking_needs_an_accepted_referral_and_one_open_ride_per_leg(
    app, world, fleet, send, accepted
):
    sent = send()
    with app.test_request_context(), pytest.raises(Conflict):
        book(sent, referrer(world).user, when="now")
    referral_id = accepted(next_weekday_at(11))
    with app.test_request_context():
        book(referral_id, referrer(world).user)
        with pytest.raises(Conflict):
            book(referral_id, referrer(world).user)
        # The return leg is a different trip.
        back = book(referral_id, referrer(world).user, leg=Leg.RETURN, when="will_call")
        assert back.ride.will_call and back.ride.window_start_at is None
        assert back.ride.pickup_lat == 44.97 and back.ride.dropoff_lat == pytest.approx(44.9483)


def test_typed_places_and_outside_region_warning(app, world, fleet, accepted):
    referral_id = accepted(next_weekday_at(11))
    with app.test_request_context():
        with pytest.raises(ValidationFailed) as missing:
            book(referral_id, referrer(world).user, place="")
        assert "place" in missing.value.fields
        with pytest.raises(ValidationFailed) as unknown:
            book(referral_id, referrer(world).user, place="Nowhere-at-all 99")
        assert "place" in unknown.value.fields
        # St. Cloud is outside the seven-county region: booked, with a warning.
        result = book(referral_id, referrer(world).user, place="45.5579,-94.1632", when="now")
        assert result.ride.outside_region
        assert any("outside the service region" in w for w in result.warnings)


def test_phone_location_is_used_and_marked(app, world, fleet, accepted):
    referral_id = accepted(next_weekday_at(11))
    with app.test_request_context():
        ride = book(referral_id, referrer(world).user, place="", lat=44.95, lon=-93.24).ride
        assert ride.pickup_from_device and ride.pickup_label == "44.95000, -93.24000"


def test_non_dispatched_modes_are_scheduled_and_moved_by_the_companion(app, world, fleet, accepted):
    referral_id = accepted(next_weekday_at(11))
    with app.test_request_context():
        ride = book(referral_id, referrer(world).user, mode=RideMode.ESCORT, when="now").ride
        assert ride.status is RideStatus.SCHEDULED and ride.vendor_org_id is None
        user = referrer(world).user
        actor = rides.user_actor(user, ride)
        assert RideSide.COMPANION in actor.sides
        rides.perform_ride(ride, "pick_up", actor)
        assert db.session.get(Referral, referral_id).status is Status.EN_ROUTE
        rides.perform_ride(ride, "drop_off", actor)
        referral = db.session.get(Referral, referral_id)
        assert referral.status is Status.ARRIVED and referral.arrived_at == ride.dropped_off_at


def test_walk_and_transit_estimates_are_labelled(app, world, fleet, accepted):
    referral_id = accepted(next_weekday_at(11))
    with app.test_request_context():
        walk = book(referral_id, referrer(world).user, mode=RideMode.WALK, when="now").ride
        assert walk.estimate_source == "estimate"
        drive_minutes = booking_ops.travel_for(
            Point(44.9483, -93.2348), Point(44.97, -93.26), RideMode.VENDOR, False
        ).minutes
        transit = booking_ops.travel_for(
            Point(44.9483, -93.2348), Point(44.97, -93.26), RideMode.TRANSIT, False
        )
        assert transit.minutes > drive_minutes and transit.estimated and transit.note


def test_dispatched_ride_lifecycle_moves_the_referral(app, world, fleet, accepted):
    referral_id = accepted(next_weekday_at(11))
    with app.test_request_context():
        ride = book(referral_id, referrer(world).user, when="now").ride
        dispatcher = dispatcher_actor(fleet)
        with pytest.raises(ValidationFailed):
            rides.perform_ride(ride, "assign", dispatcher)  # no driver
        rides.perform_ride(
            ride, "assign", dispatcher, driver_id=fleet.driver.id, vehicle_id=fleet.car.id
        )
        assert ride.status is RideStatus.SCHEDULED and ride.driver.first_name == "Sam"
        driver = rides.RideActor.driver()
        for action in ("depart", "at_pickup", "pick_up"):
            rides.perform_ride(ride, action, driver)
        assert ride.status is RideStatus.PICKED_UP
        assert db.session.get(Referral, referral_id).status is Status.EN_ROUTE
        rides.perform_ride(ride, "drop_off", driver)
        assert ride.status is RideStatus.DROPPED_OFF and ride.closed_at is not None
        referral = db.session.get(Referral, referral_id)
        assert referral.status is Status.ARRIVED
        labels = [e.actor_label for e in referral.events if e.action in ("depart", "arrive")]
        assert labels == ["driver", "driver"]
        assert [e.action for e in ride.events] == [
            "book",
            "assign",
            "depart",
            "at_pickup",
            "pick_up",
            "drop_off",
        ]


def test_terminal_rides_have_no_way_out_and_sides_are_enforced(app, world, fleet, accepted):
    referral_id = accepted(next_weekday_at(11))
    with app.test_request_context():
        ride = book(referral_id, referrer(world).user, when="now").ride
        with pytest.raises(Forbidden):
            rides.perform_ride(ride, "assign", rides.RideActor.driver(), driver_id=1)
        with pytest.raises(ValidationFailed):
            rides.perform_ride(ride, "cancel", dispatcher_actor(fleet))  # reason required
        rides.perform_ride(ride, "cancel", dispatcher_actor(fleet), reason_code="other")
        for transition in RIDE_TRANSITIONS:
            with pytest.raises((Conflict, ValidationFailed, Forbidden)):
                rides.perform_ride(
                    ride,
                    transition.action,
                    rides.RideActor(frozenset(RideSide)),
                    reason_code="other",
                    driver_id=fleet.driver.id,
                )


def test_stale_version_is_a_conflict(app, world, fleet, accepted):
    referral_id = accepted(next_weekday_at(11))
    with app.test_request_context():
        ride = book(referral_id, referrer(world).user, when="now").ride
        with pytest.raises(Conflict):
            rides.perform_ride(
                ride,
                "assign",
                dispatcher_actor(fleet),
                expected_version=ride.version + 1,
                driver_id=fleet.driver.id,
            )


def test_assignment_checks_the_vehicle_and_the_vendor(app, world, fleet, accepted, make_org):
    referral_id = accepted(next_weekday_at(11))
    with app.test_request_context():
        ride = book(referral_id, referrer(world).user, when="now", wheelchair=True).ride
        assert ride.travel_minutes > 0
        with pytest.raises(ValidationFailed) as car:
            rides.perform_ride(
                ride,
                "assign",
                dispatcher_actor(fleet),
                driver_id=fleet.driver.id,
                vehicle_id=fleet.car.id,
            )
        assert "wheelchair" in car.value.fields["vehicle_id"][0]
        from referral_hub.transport.models import Driver

        other_vendor = make_org("transport_vendor")
        stranger = Driver(organization_id=other_vendor.id, first_name="X")
        db.session.add(stranger)
        db.session.flush()
        with pytest.raises(ValidationFailed) as foreign:
            rides.perform_ride(ride, "assign", dispatcher_actor(fleet), driver_id=stranger.id)
        assert "driver_id" in foreign.value.fields
        rides.perform_ride(
            ride,
            "assign",
            dispatcher_actor(fleet),
            driver_id=fleet.driver.id,
            vehicle_id=fleet.van.id,
        )
        assert ride.vehicle_id == fleet.van.id


def test_no_show_waits_then_asks_the_responder_to_follow_up(app, world, fleet, accepted):
    referral_id = accepted(next_weekday_at(11))
    with app.test_request_context():
        ride = book(referral_id, referrer(world).user, when="now").ride
        dispatcher = dispatcher_actor(fleet)
        rides.perform_ride(ride, "assign", dispatcher, driver_id=fleet.driver.id)
        driver = rides.RideActor.driver()
        rides.perform_ride(ride, "depart", driver)
        with pytest.raises(ValidationFailed):
            rides.perform_ride(ride, "no_show", driver)  # not at the pickup yet
        start = ride.window_start_at
        rides.perform_ride(ride, "at_pickup", driver, now=start - timedelta(minutes=30))
        with pytest.raises(ValidationFailed) as early:
            # Early at the pickup: the wait counts from the start of the window.
            rides.perform_ride(ride, "no_show", driver, now=start + timedelta(minutes=5))
        assert "wait 5 more minutes" in early.value.message
        later = start + timedelta(minutes=app.config["RIDE_NO_SHOW_WAIT_MINUTES"] + 1)
        rides.perform_ride(ride, "no_show", driver, now=later)
        assert ride.status is RideStatus.NO_SHOW
        follow_up = db.session.query(FollowUp).one()
        assert follow_up.referral_id == referral_id and follow_up.organization_id == world.team.id
        assert follow_up.assigned_to_id == world.responder.id
        message = db.session.query(Message).filter_by(template="ride_no_show").one()
        assert message.recipient_user_id == world.responder.id
        assert "Amina" not in message.body and "612" not in message.body
        # The referral stays open: the responder decides what happens next.
        assert db.session.get(Referral, referral_id).status is Status.ACCEPTED
        rides.resolve_follow_up(follow_up, referrer(world).user)
        with pytest.raises(Conflict):
            rides.resolve_follow_up(follow_up, referrer(world).user)


def test_a_closed_referral_cancels_rides_not_started(app, world, fleet, accepted):
    referral_id = accepted(next_weekday_at(11))
    with app.test_request_context():
        out = book(referral_id, referrer(world).user, when="now").ride
        back = book(referral_id, referrer(world).user, leg=Leg.RETURN, when="will_call").ride
        referral_ops.perform(
            db.session.get(Referral, referral_id),
            "cancel",
            referrer(world),
            reason_code="client_declined",
        )
        for ride in (out, back):
            db.session.refresh(ride)
            assert ride.status is RideStatus.CANCELLED and ride.reason_code == "referral_closed"
            assert ride.events[-1].actor_label == "system"


def test_a_started_ride_survives_a_closed_referral(app, world, fleet, accepted):
    referral_id = accepted(next_weekday_at(11))
    with app.test_request_context():
        ride = book(referral_id, referrer(world).user, mode=RideMode.ESCORT, when="now").ride
        rides.perform_ride(ride, "pick_up", rides.user_actor(referrer(world).user, ride))
        referral_ops.perform(
            db.session.get(Referral, referral_id), "cancel", referrer(world), reason_code="other"
        )
        db.session.refresh(ride)
        assert ride.status is RideStatus.PICKED_UP


def test_will_call_return_is_planned_when_the_client_is_ready(app, world, fleet, accepted):
    referral_id = accepted(next_weekday_at(11))
    with app.test_request_context():
        back = book(referral_id, referrer(world).user, leg=Leg.RETURN, when="will_call").ride
        # The dispatcher may line up a driver, who cannot leave before the call.
        rides.perform_ride(back, "assign", dispatcher_actor(fleet), driver_id=fleet.driver.id)
        with pytest.raises(Conflict):
            rides.perform_ride(back, "depart", rides.RideActor.driver())
        rides.perform_ride(back, "ready", rides.user_actor(provider(world).user, back))
        assert back.window_start_at is not None and back.eta_latest_at > back.window_start_at
        assert [e.action for e in back.events][-1] == "ready"
        with pytest.raises(Conflict):
            rides.perform_ride(back, "ready", rides.user_actor(provider(world).user, back))
        rides.perform_ride(back, "depart", rides.RideActor.driver())


def test_driver_links_hash_expire_and_are_revoked_on_reassignment(app, world, fleet, accepted):
    referral_id = accepted(next_weekday_at(11))
    with app.test_request_context():
        ride = book(referral_id, referrer(world).user, when="now").ride
        with pytest.raises(Conflict):
            rides.issue_driver_link(ride, None)  # nobody assigned
        rides.perform_ride(ride, "assign", dispatcher_actor(fleet), driver_id=fleet.driver.id)
        token = rides.issue_driver_link(ride, None)
        assert len(token) > 40
        link = db.session.query(DriverLink).one()
        assert token not in link.token_hash and rides.link_for_token(token).ride_id == ride.id
        assert rides.link_for_token(token, now=link.expires_at) is None
        rides.perform_ride(ride, "assign", dispatcher_actor(fleet), driver_id=fleet.other_driver.id)
        assert rides.link_for_token(token) is None  # the previous driver's link is revoked
        second = rides.issue_driver_link(ride, None)
        rides.perform_ride(ride, "cancel", dispatcher_actor(fleet), reason_code="other")
        shortened = rides.link_for_token(second)
        assert shortened is not None and shortened.expires_at <= utcnow() + timedelta(minutes=31)


def test_ride_summary_has_no_addresses_or_notes(app, world, fleet, accepted):
    referral_id = accepted(next_weekday_at(11))
    with app.test_request_context():
        ride = book(referral_id, referrer(world).user, when="now", driver_notes="Blue door").ride
        rides.perform_ride(
            ride,
            "assign",
            dispatcher_actor(fleet),
            driver_id=fleet.driver.id,
            vehicle_id=fleet.car.id,
        )
        summary = rides.ride_summary(ride).as_dict()
        assert summary["driver_first_name"] == "Sam" and summary["vehicle"] == "Car 2"
        assert summary["estimated"] is True and summary["status"] == "scheduled"
        assert "Blue door" not in str(summary) and "Lee" not in str(summary)
        assert "44.9483" not in str(summary)


def test_dispatch_board_orders_flags_late_and_overlapping_rides(app, world, fleet, accepted):
    with app.test_request_context():
        now = utcnow()
    first = accepted(next_weekday_at(11))
    second = accepted(next_weekday_at(11, 10))
    with app.test_request_context():
        a = book(first, referrer(world).user).ride
        b = book(second, referrer(world).user).ride
        for ride in (a, b):
            rides.perform_ride(ride, "assign", dispatcher_actor(fleet), driver_id=fleet.driver.id)
        day = a.window_start_at.astimezone(city_tz()).date()
        board = board_ops.dispatch_board({fleet.vendor.id}, day, now=now)
        assert [row.ride.id for row in board.rows] == [a.id, b.id]
        assert board.rows[0].overlaps == [b.id] and board.rows[1].overlaps == [a.id]
        assert not any(row.late for row in board.rows)
        late = board_ops.dispatch_board({fleet.vendor.id}, day, now=b.window_end_at + timedelta(1))
        assert all(row.late for row in late.rows)
        assert board.counts["scheduled"] == 2
        # A page shows its rows; counts and flags still cover the whole day.
        second = board_ops.dispatch_board(
            {fleet.vendor.id}, day, page=2, per_page=1, now=b.window_end_at + timedelta(1)
        )
        assert [row.ride.id for row in second.rows] == [b.id] and second.rows[0].overlaps == [a.id]
        assert (second.total, second.pages, second.late) == (2, 2, 2)
        only = board_ops.dispatch_board({fleet.vendor.id}, day, statuses={RideStatus.REQUESTED})
        assert only.rows == []
        # Another vendor's board is empty.
        assert board_ops.dispatch_board({-5}, day).rows == []
        rides.perform_ride(b, "assign", dispatcher_actor(fleet), driver_id=fleet.other_driver.id)
        board = board_ops.dispatch_board({fleet.vendor.id}, day, now=now)
        assert all(row.overlaps == [] for row in board.rows)


def test_a_wheelchair_changes_the_profile_only_when_wheeled_there():
    from referral_hub.geo.base import Mode

    assert rides.travel_mode(RideMode.VENDOR, True) is Mode.DRIVE  # a ramp van drives
    assert rides.travel_mode(RideMode.RIDESHARE, True) is Mode.DRIVE
    assert rides.travel_mode(RideMode.WALK, True) is Mode.WHEELCHAIR
    assert rides.travel_mode(RideMode.WALK, False) is Mode.WALK
