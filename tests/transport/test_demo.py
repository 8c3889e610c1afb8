"""The demo's rides: every ride state, referral states that agree with them, a dispatch board
with something on it today (one ride late, one driver booked twice), loaded once."""

from sqlalchemy import func, select

from referral_hub.accounts.models import Organization
from referral_hub.core.db import city_tz, utcnow
from referral_hub.extensions import db
from referral_hub.referrals.models import ReferralEvent, Status
from referral_hub.transport import board as board_ops
from referral_hub.transport.demo import demo_anchor
from referral_hub.transport.models import (
    NOT_STARTED,
    Driver,
    FollowUp,
    Leg,
    Ride,
    RideEvent,
    RideMode,
    RideStatus,
    Vehicle,
)

COUNTED = (Ride, RideEvent, Driver, Vehicle, FollowUp, ReferralEvent)


def counts() -> list[int]:
    return [db.session.scalar(select(func.count()).select_from(m)) for m in COUNTED]


def test_demo_rides_cover_every_state_and_agree_with_their_referrals(app):
    before = utcnow()
    result = app.test_cli_runner().invoke(args=["seed", "demo"])
    assert result.exit_code == 0, result.output
    assert " rides" in result.output
    with app.app_context():
        vendor = db.session.scalar(select(Organization).where(Organization.slug == "metro-rides"))
        drivers = db.session.scalars(select(Driver).where(Driver.organization_id == vendor.id))
        drivers = drivers.all()
        assert len(drivers) == 4 and all(d.last_name for d in drivers)
        assert all(d.phone.startswith("+161255501") for d in drivers)
        vehicles = db.session.scalars(select(Vehicle).where(Vehicle.organization_id == vendor.id))
        vehicles = vehicles.all()
        assert len(vehicles) == 3 and sum(v.wheelchair_accessible for v in vehicles) == 1

        all_rides = db.session.scalars(select(Ride).order_by(Ride.id)).all()
        assert {r.status for r in all_rides} == set(RideStatus)
        assert {r.leg for r in all_rides} == set(Leg)
        assert {RideMode.VENDOR, RideMode.ESCORT, RideMode.TRANSIT, RideMode.WALK} <= {
            r.mode for r in all_rides
        }
        assert any(r.wheelchair for r in all_rides)
        open_follow_ups = {
            f.ride_id for f in db.session.scalars(select(FollowUp)) if f.resolved_at is None
        }
        for ride in all_rides:
            referral = ride.referral
            # The operations wrote the events; the demo dated them in the order they happened.
            events = ride.events
            assert events[0].action == "book" and events[-1].to_status is ride.status
            stamps = [e.created_at for e in events]
            assert stamps == sorted(stamps), ride.id
            if ride.status is RideStatus.NO_SHOW:
                assert ride.id in open_follow_ups
            if ride.leg is not Leg.OUTBOUND:
                continue
            if ride.status is RideStatus.PICKED_UP:
                assert referral.status is Status.EN_ROUTE, ride.id
            elif ride.status is RideStatus.DROPPED_OFF:
                assert referral.status in (Status.ARRIVED, Status.HANDED_OFF, Status.COMPLETED)
                assert referral.arrived_at == ride.dropped_off_at
            elif ride.status in NOT_STARTED:
                assert referral.status is Status.ACCEPTED, ride.id

        # Today's board, as the demo left it: something in most states, a late ride and an
        # overlap of one driver's rides.
        anchor = demo_anchor(before)
        day = anchor.astimezone(city_tz()).date()
        board = board_ops.dispatch_board({vendor.id}, day, now=anchor)
        on_board = {row.ride.status for row in board.rows}
        assert {
            RideStatus.REQUESTED,
            RideStatus.SCHEDULED,
            RideStatus.EN_ROUTE_TO_PICKUP,
            RideStatus.PICKED_UP,
            RideStatus.DROPPED_OFF,
            RideStatus.NO_SHOW,
        } <= on_board
        assert sum(row.late for row in board.rows) == 1
        overlapping = [row for row in board.rows if row.overlaps]
        assert len(overlapping) == 2
        assert overlapping[0].ride.driver_id == overlapping[1].ride.driver_id
        assert any(row.unassigned for row in board.rows)
        loaded = counts()

    again = app.test_cli_runner().invoke(args=["seed", "demo"])
    assert again.exit_code == 0 and "Created: nothing" in again.output, again.output
    with app.app_context():
        assert counts() == loaded
