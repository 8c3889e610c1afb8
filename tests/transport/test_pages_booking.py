"""Booking a ride and the ride page, as responders, providers and dispatchers meet them.

The test site is open Monday to Friday, 9 to 17 city time: bookings here are for a coming
weekday's appointment or time, never "now" (which would depend on the wall clock).
"""

import re
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from referral_hub.accounts.models import Role
from referral_hub.directory.models import Program
from referral_hub.extensions import db
from referral_hub.referrals.models import Referral, Status
from referral_hub.transport import booking as booking_ops
from referral_hub.transport import operations as rides
from referral_hub.transport.models import FollowUp, Leg, Ride, RideMode, RideStatus
from tests.conftest import counting_selects
from tests.referrals.conftest import referrer
from tests.transport.conftest import next_weekday_at

PICKUP = "44.9483,-93.2348"  # a few km south of the site (44.97, -93.26)
CITY = ZoneInfo("America/Chicago")


def city_input(moment):
    """A datetime-local input's value for an aware moment, in city time."""
    return moment.astimezone(CITY).strftime("%Y-%m-%dT%H:%M")


def clock(moment):
    """How a short time reads in city time on an English page ("9:35")."""
    return moment.astimezone(CITY).strftime("%-I:%M")


def book_path(rid, leg="outbound"):
    return f"/referrals/{rid}/rides/new?leg={leg}"


def post_booking(client, rid, leg="outbound", **data):
    form = {"leg": leg, "mode": "vendor", "when": "appointment", "companions": "0", **data}
    return client.post_form(f"/referrals/{rid}/rides/new", form, token_from=f"/referrals/{rid}")


def only_ride(app, rid):
    with app.app_context():
        return db.session.scalars(select(Ride).where(Ride.referral_id == rid)).one()


def load_ride(app, ride_id):
    with app.app_context():
        ride = db.session.get(Ride, ride_id)
        ride.referral  # noqa: B018 (loaded for use after the context)
        return ride


def ride_act(client, ride_id, action, **data):
    data.setdefault("expected_version", load_ride(client.application, ride_id).version)
    return client.post_form(
        f"/rides/{ride_id}/actions/{action}", data, token_from=f"/rides/{ride_id}"
    )


def book_directly(app, world, rid, **kwargs):
    """Book through the operation (as the responder) and return the ride id."""
    with app.test_request_context():
        booking = booking_ops.Booking(**{"place": PICKUP, **kwargs})
        referral = db.session.get(Referral, rid)
        result = booking_ops.book_ride(referral, referrer(world).user, booking)
        db.session.commit()
        return result.ride.id


def test_booking_form_offers_the_phone_location_without_needing_it(
    client, world, fleet, accepted, login_as
):
    rid = accepted(next_weekday_at(11))
    login_as(world.responder)
    page = client.get(book_path(rid)).get_data(as_text=True)
    assert 'id="location"' in page and 'id="lat"' in page and 'id="lon"' in page
    assert re.search(r'<button[^>]*id="use-location"[^>]*hidden', page)
    assert "only when you press this button" in page
    assert "Pickup place" in page and "will-call" not in page
    assert re.search(rf'<option selected value="{fleet.vendor.id}">Metro Rides', page)
    assert "In time for the appointment (" in page
    back = client.get(book_path(rid, "return")).get_data(as_text=True)
    assert "Destination" in back and "will-call" in back


def test_booking_from_a_typed_place_flashes_the_estimated_plan(
    client, world, fleet, accepted, login_as, app
):
    rid = accepted(next_weekday_at(11))
    login_as(world.responder)
    response = post_booking(
        client, rid, place=PICKUP, wheelchair="y", companions="1", driver_notes="Blue door"
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    ride = only_ride(app, rid)
    assert response.headers["Location"].endswith(f"/rides/{ride.id}")
    assert ride.mode is RideMode.VENDOR and ride.vendor_org_id == fleet.vendor.id
    assert ride.pickup_label == PICKUP and not ride.pickup_from_device
    assert ride.wheelchair and ride.companions == 1 and ride.driver_notes == "Blue door"
    page = client.get(f"/rides/{ride.id}").get_data(as_text=True)
    flash = re.search(r'class="flash flash-success"[^>]*>([^<]+)<', page).group(1)
    assert "(estimated)" in flash and "(routed)" not in flash
    for moment in (ride.window_start_at, ride.window_end_at, ride.eta_latest_at):
        assert clock(moment) in flash
    assert "Estimated" in page and "Blue door" in page and "Uses a wheelchair" in page
    assert "Requested" in page and "Vendor vehicle" in page and "Youth Housing" in page


def test_booking_from_the_phones_location(client, world, fleet, accepted, login_as, app):
    rid = accepted(next_weekday_at(11))
    login_as(world.responder)
    response = post_booking(client, rid, place="", lat="44.948300", lon="-93.234800")
    assert response.status_code == 302, response.get_data(as_text=True)
    ride = only_ride(app, rid)
    assert ride.pickup_from_device
    assert ride.pickup_lat == pytest.approx(44.9483) and ride.pickup_lon == pytest.approx(-93.2348)


def test_a_closed_site_keeps_the_input_and_marks_the_time(
    client, world, fleet, accepted, login_as, app
):
    rid = accepted(next_weekday_at(11))
    saturday = next_weekday_at(11)
    while saturday.astimezone(CITY).weekday() != 5:
        saturday += timedelta(days=1)
    login_as(world.responder)
    response = post_booking(
        client, rid, place=PICKUP, when="at", at=city_input(saturday), driver_notes="Side gate"
    )
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    error = re.search(r'<p class="error" id="at-error">([^<]+)</p>', page)
    assert error and "closed" in error.group(1)
    assert f'value="{PICKUP}"' in page and "Side gate" in page
    assert f'value="{city_input(saturday)}"' in page
    assert re.search(r'checked[^>]*value="at"|value="at"[^>]*checked', page)
    missing = post_booking(client, rid, place="", when="appointment")
    assert missing.status_code == 422 and 'id="location-error"' in missing.get_data(as_text=True)
    with app.app_context():
        assert db.session.query(Ride).count() == 0


def test_provider_can_book_and_a_second_open_ride_is_refused(
    client, world, fleet, accepted, login_as, app
):
    rid = accepted(next_weekday_at(11))
    login_as(world.staff)
    assert post_booking(client, rid, place=PICKUP).status_code == 302
    with app.app_context():
        assert db.session.get(Ride, only_ride(app, rid).id).booked_by_org_id == world.provider.id
    again = post_booking(client, rid, place=PICKUP)
    assert again.status_code == 302 and again.headers["Location"].endswith(f"/referrals/{rid}")
    shown = client.get(f"/referrals/{rid}").get_data(as_text=True)
    assert "already has a ride that is not finished" in shown
    # Opening the form for a leg that cannot be booked goes back to the referral.
    assert client.get(book_path(rid)).status_code == 302


def test_foreign_referral_and_ride_answer_404(
    client, world, fleet, accepted, login_as, make_user, app
):
    rid = accepted(next_weekday_at(11))
    ride_id = book_directly(app, world, rid)
    login_as(make_user(Role.RESPONDER))
    assert client.get(book_path(rid)).status_code == 404
    token = client.csrf("/account")
    posted = client.post(f"/referrals/{rid}/rides/new", data={"csrf_token": token, "leg": "return"})
    assert posted.status_code == 404
    assert client.get(f"/rides/{ride_id}").status_code == 404
    cancel = client.post(
        f"/rides/{ride_id}/actions/cancel",
        data={"csrf_token": token, "expected_version": 1, "reason_code": "other"},
    )
    assert cancel.status_code == 404
    assert load_ride(app, ride_id).status is RideStatus.REQUESTED


@pytest.mark.parametrize("sensitive", [False, True])
def test_dispatcher_sees_the_ride_not_a_sensitive_program(
    client, world, fleet, accepted, login_as, app, sensitive
):
    with app.app_context():
        db.session.get(Program, world.program.id).sensitive = sensitive
        db.session.commit()
    rid = accepted(next_weekday_at(11))
    ride_id = book_directly(app, world, rid)
    login_as(fleet.dispatcher)
    page = client.get(f"/rides/{ride_id}").get_data(as_text=True)
    assert "Requested" in page and PICKUP in page and "1 Main St" in page
    assert f"/referrals/{rid}" not in page  # the dispatcher is not on the referral
    assert ("Youth Housing" in page) is not sensitive
    assert ("Main office" in page) is not sensitive
    assert (world.responder.name in page) is not sensitive  # who booked: staff on the referral
    assert 'action="/rides/' in page and "/actions/cancel" in page
    assert "/actions/assign" not in page  # the dispatch board assigns
    assert client.get(f"/referrals/{rid}").status_code == 404


def test_cancel_needs_a_reason_from_the_list(client, world, fleet, accepted, login_as, app):
    rid = accepted(next_weekday_at(11))
    ride_id = book_directly(app, world, rid)
    login_as(world.responder)
    page = client.get(f"/rides/{ride_id}").get_data(as_text=True)
    assert 'name="reason_code"' in page and "No longer needed" in page
    missing = ride_act(client, ride_id, "cancel")
    assert missing.status_code == 422
    assert 'id="cancel-reason_code-error"' in missing.get_data(as_text=True)
    invented = ride_act(client, ride_id, "cancel", reason_code="bored")
    assert invented.status_code == 422
    done = ride_act(client, ride_id, "cancel", reason_code="no_longer_needed")
    assert done.status_code == 302
    shown = client.get(f"/rides/{ride_id}").get_data(as_text=True)
    assert "Saved: Cancel ride." in shown and "Cancelled" in shown
    assert "Reason: No longer needed" in shown and world.responder.name in shown
    assert "/actions/cancel" not in shown
    ride = load_ride(app, ride_id)
    assert ride.status is RideStatus.CANCELLED and ride.reason_code == "no_longer_needed"


def test_a_stale_ride_page_gets_the_current_state(client, world, fleet, accepted, login_as, app):
    rid = accepted(next_weekday_at(11))
    ride_id = book_directly(app, world, rid)
    login_as(world.responder)
    seen = load_ride(app, ride_id).version
    with app.test_request_context():
        ride = db.session.get(Ride, ride_id)
        rides.perform_ride(ride, "cancel", rides.RideActor.system(), reason_code="rebooked")
        db.session.commit()
    stale = ride_act(client, ride_id, "cancel", reason_code="other", expected_version=seen)
    assert stale.status_code == 302
    page = client.get(f"/rides/{ride_id}").get_data(as_text=True)
    assert "Someone else changed this ride first" in page and "Booked again" in page
    assert load_ride(app, ride_id).reason_code == "rebooked"


def test_escort_companion_moves_the_referral_en_route_then_arrived(
    client, world, fleet, accepted, login_as, app
):
    rid = accepted(next_weekday_at(11))
    login_as(world.responder)
    assert post_booking(client, rid, mode="escort", place=PICKUP).status_code == 302
    ride = only_ride(app, rid)
    assert ride.status is RideStatus.SCHEDULED and ride.vendor_org_id is None
    page = client.get(f"/rides/{ride.id}").get_data(as_text=True)
    assert "/actions/pick_up" in page and "/actions/depart" in page
    assert "/actions/drop_off" not in page
    assert ride_act(client, ride.id, "pick_up").status_code == 302
    with app.app_context():
        assert db.session.get(Referral, rid).status == Status.EN_ROUTE
    assert ride_act(client, ride.id, "drop_off").status_code == 302
    with app.app_context():
        assert db.session.get(Referral, rid).status == Status.ARRIVED
        assert db.session.get(Ride, ride.id).status is RideStatus.DROPPED_OFF
    wrong = ride_act(client, ride.id, "teleport", expected_version=1)
    assert wrong.status_code == 404


def test_actions_need_the_csrf_token(client, world, fleet, accepted, login_as, app):
    rid = accepted(next_weekday_at(11))
    ride_id = book_directly(app, world, rid)
    login_as(world.responder)
    response = client.post(
        f"/rides/{ride_id}/actions/cancel", data={"expected_version": 1, "reason_code": "other"}
    )
    assert response.status_code == 400
    assert load_ride(app, ride_id).status is RideStatus.REQUESTED


def test_a_dispatcher_may_not_take_the_companions_steps(
    client, world, fleet, accepted, login_as, app
):
    rid = accepted(next_weekday_at(11))
    ride_id = book_directly(app, world, rid)
    login_as(world.responder)
    # Booker of a dispatched ride: no companion side, so driving steps are forbidden.
    response = ride_act(client, ride_id, "no_show")
    assert response.status_code == 403


def test_referral_page_lists_rides_and_offers_the_return_trip(
    client, world, fleet, accepted, send, login_as, app
):
    sent = send()
    rid = accepted(next_weekday_at(11))
    login_as(world.responder)
    fresh = client.get(f"/referrals/{rid}").get_data(as_text=True)
    assert "Book a ride" in fresh and f"/referrals/{rid}/rides/new?leg=outbound" in fresh
    assert "Book the return trip" in fresh
    assert "Book a ride" not in client.get(f"/referrals/{sent}").get_data(as_text=True)

    ride_id = book_directly(app, world, rid)

    def measure():
        with counting_selects(app) as statements:
            page = client.get(f"/referrals/{rid}").get_data(as_text=True)
        return len(statements), page

    one, page = measure()
    assert f'href="/rides/{ride_id}"' in page and "To the program" in page
    assert "Requested" in page and "Estimated" in page
    assert "Book a ride" not in page and "Book the return trip" in page
    form = client.get(book_path(rid, "return")).get_data(as_text=True)
    assert f'value="{PICKUP}"' in form  # the way back defaults to where the person was
    back = book_directly(app, world, rid, leg=Leg.RETURN, when="will_call")
    two, page = measure()
    assert f'href="/rides/{back}"' in page and "Pickup when the client calls" in page
    assert "Book the return trip" not in page
    assert one == two


def test_a_follow_up_is_listed_and_resolved(client, world, fleet, accepted, login_as, app):
    rid = accepted(next_weekday_at(11))
    ride_id = book_directly(app, world, rid)
    with app.app_context():
        follow_up = FollowUp(
            referral_id=rid, ride_id=ride_id, organization_id=world.team.id, reason="ride_no_show"
        )
        db.session.add(follow_up)
        db.session.commit()
        follow_up_id = follow_up.id
    login_as(world.responder)
    home = client.get("/").get_data(as_text=True)
    assert "Needs follow-up" in home and f'href="/referrals/{rid}"' in home
    assert "Client was not at the ride" in home
    page = client.get(f"/referrals/{rid}").get_data(as_text=True)
    assert f'action="/follow-ups/{follow_up_id}/resolve"' in page and "Mark followed up" in page
    response = client.post_form(
        f"/follow-ups/{follow_up_id}/resolve", token_from=f"/referrals/{rid}"
    )
    assert response.status_code == 302 and response.headers["Location"].endswith(
        f"/referrals/{rid}"
    )
    with app.app_context():
        done = db.session.get(FollowUp, follow_up_id)
        assert done.resolved_at is not None and done.resolved_by_id == world.responder.id
    assert "Needs follow-up" not in client.get("/").get_data(as_text=True)
    assert "Mark followed up" not in client.get(f"/referrals/{rid}").get_data(as_text=True)


def test_a_sensitive_programs_appointment_time_stays_off_the_referrers_form(
    client, world, fleet, accepted, login_as, app
):
    with app.app_context():
        db.session.get(Program, world.program.id).sensitive = True
        db.session.commit()
    rid = accepted(next_weekday_at(11))
    login_as(world.responder)
    page = client.get(book_path(rid)).get_data(as_text=True)
    assert "In time for the appointment<" in page.replace("</label>", "<")
    assert "In time for the appointment (" not in page
