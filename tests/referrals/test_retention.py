"""Retention: personal data goes, states and events (and so metrics) stay."""

from datetime import timedelta

from referral_hub.core.db import utcnow
from referral_hub.extensions import db
from referral_hub.referrals import operations as ops
from referral_hub.referrals.models import Client, ReferralEvent, Status
from referral_hub.transport import booking as booking_ops
from referral_hub.transport import operations as rides
from referral_hub.transport.models import DriverLink, Leg, Ride, RideMode, RideStatus
from tests.transport import conftest as transport
from tests.transport.conftest import accepted, fleet  # noqa: F401 (fixtures)

from .conftest import load, provider, referrer


def _close(app, world, referral_id, days_ago):
    with app.test_request_context():
        referral = load(referral_id)
        ops.perform(
            referral,
            "decline",
            provider(world),
            reason_code="no_capacity",
            note="spoke with Amina's sister",
        )
        referral.closed_at = utcnow() - timedelta(days=days_ago)
        db.session.commit()


def test_retention_anonymises_only_clients_past_their_time(app, world, send):
    referral_id = send(note="Amina at 12 Elm St")
    _close(app, world, referral_id, days_ago=400)
    cli = app.test_cli_runner()
    dry = cli.invoke(args=["retention", "run", "--days", "365", "--dry-run"])
    assert "Would anonymise 1 clients" in dry.output
    with app.app_context():
        assert db.session.get(Client, world.client.id).phone is not None
    result = cli.invoke(args=["retention", "run", "--days", "365"])
    assert result.exit_code == 0 and "Anonymised 1 clients" in result.output
    with app.app_context():
        client = db.session.get(Client, world.client.id)
        assert client.phone is None and client.birth_year is None
        assert client.display_name != "Amina" and client.anonymized_at is not None
        referral = load(referral_id)
        assert referral.note is None and referral.reason_note is None
        assert referral.status == Status.DECLINED and referral.reason_code == "no_capacity"
        events = db.session.query(ReferralEvent).filter_by(referral_id=referral_id).count()
        assert events == 2
    again = cli.invoke(args=["retention", "run", "--days", "365"])
    assert "Anonymised 0 clients" in again.output


def test_open_or_recent_referrals_keep_the_client(app, world, send):
    closed = send()
    _close(app, world, closed, days_ago=400)
    send()  # still open
    result = app.test_cli_runner().invoke(args=["retention", "run", "--days", "365"])
    assert "Anonymised 0 clients" in result.output
    with app.app_context():
        assert db.session.get(Client, world.client.id).display_name == "Amina"


def test_retention_clears_ride_places_and_revokes_driver_links(
    app,
    world,
    fleet,  # noqa: F811 (the fixture imported above)
    accepted,  # noqa: F811
):
    referral_id = accepted(transport.next_weekday_at(11))
    with app.test_request_context():
        referral = load(referral_id)
        user = referrer(world).user
        outbound = booking_ops.book_ride(
            referral,
            user,
            booking_ops.Booking(
                place="44.9483,-93.2348", driver_notes="Amina, blue door at 12 Elm St"
            ),
            now=transport.next_weekday_at(9),
        ).ride
        back = booking_ops.book_ride(
            referral,
            user,
            booking_ops.Booking(
                leg=Leg.RETURN,
                mode=RideMode.RIDESHARE,
                place="44.9483,-93.2348",
                when="will_call",
                booking_reference="Voucher 4821",
            ),
            now=transport.next_weekday_at(9),
        ).ride
        rides.perform_ride(
            outbound, "assign", transport.dispatcher_actor(fleet), driver_id=fleet.driver.id
        )
        token = rides.issue_driver_link(outbound, None)
        travel = outbound.travel_minutes, outbound.window_start_at
        ride_ids = outbound.id, back.id
        ops.perform(load(referral_id), "cancel", referrer(world), reason_code="client_declined")
        load(referral_id).closed_at = utcnow() - timedelta(days=400)
        db.session.commit()

    result = app.test_cli_runner().invoke(args=["retention", "run", "--days", "365"])
    assert "Anonymised 1 clients" in result.output
    with app.app_context():
        for ride_id in ride_ids:
            ride = db.session.get(Ride, ride_id)
            assert (ride.pickup_label, ride.pickup_lat, ride.pickup_lon) == (None, None, None)
            assert (ride.dropoff_label, ride.dropoff_lat, ride.dropoff_lon) == (None, None, None)
            assert ride.driver_notes is None and ride.booking_reference is None
            # What the aggregates count stays: the state, the mode, the times, the estimate.
            assert ride.status is RideStatus.CANCELLED and ride.site_id == world.site.id
        ride = db.session.get(Ride, ride_ids[0])
        assert ride.mode is RideMode.VENDOR and ride.driver_id == fleet.driver.id
        assert (ride.travel_minutes, ride.window_start_at) == travel
        assert db.session.get(Ride, ride_ids[1]).mode is RideMode.RIDESHARE
        links = db.session.query(DriverLink).filter_by(ride_id=ride_ids[0]).all()
        assert links and all(link.revoked_at is not None for link in links)
        assert rides.link_for_token(token, now=utcnow() - timedelta(days=1)) is None


def test_retention_clears_text_replies_and_ends_client_links(app, world, send):
    from referral_hub.notify.models import InboundMessage
    from referral_hub.portal import operations as portal
    from referral_hub.portal.models import ClientLink

    referral_id = send()
    with app.test_request_context():
        token = portal.issue_link(load(referral_id), None)
        db.session.add(
            InboundMessage(
                from_phone="+16125550123",
                to_phone="+16125550000",
                body="I am at the shelter on Elm St",
                provider_message_id="SM" + "1" * 32,
                client_id=world.client.id,
                referral_id=referral_id,
                created_at=utcnow(),
            )
        )
        db.session.commit()
    _close(app, world, referral_id, days_ago=400)
    result = app.test_cli_runner().invoke(args=["retention", "run", "--days", "365"])
    assert "Anonymised 1 clients" in result.output
    with app.test_request_context():
        reply = db.session.query(InboundMessage).one()
        assert reply.body == "" and reply.from_phone == ""
        assert portal.link_for_token(token) is None
        assert db.session.query(ClientLink).filter(ClientLink.revoked_at.is_(None)).count() == 0
