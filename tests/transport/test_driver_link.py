"""The driver link as a driver without an account meets it: the ride on a phone, one button
per step, the referral moving along, and the same 404 for every link that does not work."""

import re
from datetime import timedelta

from referral_hub.core.db import utcnow
from referral_hub.directory.models import Program
from referral_hub.extensions import db
from referral_hub.referrals.models import Referral, Status
from referral_hub.transport.models import DriverLink, Ride, RideEvent, RideStatus
from tests.transport.conftest import next_weekday_at
from tests.transport.test_pages_dispatch import assign, book, issue_link

GONE = "This link has expired or is not valid; ask your dispatcher."


def ride_with_link(app, world, fleet, accepted, **kwargs) -> tuple[int, int, str]:
    """(referral id, ride id, token) of an assigned ride whose driver got a link."""
    referral_id = accepted(next_weekday_at(11))
    ride_id = book(app, world, referral_id, **kwargs)
    assign(app, fleet, ride_id, fleet.driver.id, fleet.car.id)
    return referral_id, ride_id, issue_link(app, ride_id)


def tap(client, token, action):
    return client.post_form(f"/d/{token}/{action}", token_from=f"/d/{token}")


def buttons(page: str) -> list[str]:
    return re.findall(r'action="/d/[^"/]+/(\w+)"', page)


def status_of(app, ride_id) -> tuple[RideStatus, Status]:
    with app.app_context():
        ride = db.session.get(Ride, ride_id)
        return ride.status, db.session.get(Referral, ride.referral_id).status


def test_the_driver_taps_through_the_ride(client, app, world, fleet, accepted):
    _referral_id, ride_id, token = ride_with_link(
        app, world, fleet, accepted, service_animal=True, companions=1, driver_notes="Blue door"
    )
    page = client.get(f"/d/{token}").get_data(as_text=True)
    assert "Scheduled" in page and "Estimated" in page
    assert 'href="geo:44.948300,-93.234800"' in page
    assert "Main office, 1 Main St" in page and "Amina" in page
    assert "Service animal" in page and "1 companion" in page and "Blue door" in page
    assert buttons(page) == ["depart", "pick_up"]
    assert "On my way" in page
    steps = [
        ("depart", RideStatus.EN_ROUTE_TO_PICKUP, Status.ACCEPTED, ["at_pickup", "pick_up"]),
        ("at_pickup", RideStatus.EN_ROUTE_TO_PICKUP, Status.ACCEPTED, ["pick_up", "no_show"]),
        ("pick_up", RideStatus.PICKED_UP, Status.EN_ROUTE, ["drop_off"]),
        ("drop_off", RideStatus.DROPPED_OFF, Status.ARRIVED, []),
    ]
    for action, ride_status, referral_status, next_buttons in steps:
        response = tap(client, token, action)
        assert response.status_code == 303, (action, response.get_data(as_text=True))
        assert response.headers["Location"] == f"/d/{token}"
        assert status_of(app, ride_id) == (ride_status, referral_status)
        page = client.get(f"/d/{token}").get_data(as_text=True)
        assert buttons(page) == next_buttons, action
    assert "This ride is finished" in page
    with app.app_context():
        link = db.session.query(DriverLink).one()
        assert link.last_used_at is not None
        labels = {e.actor_label for e in db.session.query(RideEvent).filter_by(ride_id=ride_id)}
        assert "driver" in labels


def test_no_show_too_early_asks_the_driver_to_wait(client, app, world, fleet, accepted):
    _referral_id, ride_id, token = ride_with_link(app, world, fleet, accepted)
    assert tap(client, token, "depart").status_code == 303
    early = tap(client, token, "no_show")  # not at the pickup yet
    assert early.status_code == 422 and "Arrived at pickup" in early.get_data(as_text=True)
    assert tap(client, token, "at_pickup").status_code == 303
    # The window starts tomorrow: the wait counts from its start.
    waiting = tap(client, token, "no_show")
    body = waiting.get_data(as_text=True)
    assert waiting.status_code == 422
    assert "Please wait" in body and "more minutes for the client" in body
    assert buttons(body) == ["pick_up", "no_show"]  # the page is still usable
    assert status_of(app, ride_id)[0] is RideStatus.EN_ROUTE_TO_PICKUP
    with app.app_context():
        ride = db.session.get(Ride, ride_id)
        ride.window_start_at = utcnow() - timedelta(minutes=30)
        ride.at_pickup_at = utcnow() - timedelta(minutes=20)
        db.session.commit()
    assert tap(client, token, "no_show").status_code == 303
    assert status_of(app, ride_id) == (RideStatus.NO_SHOW, Status.ACCEPTED)


def test_a_sensitive_program_is_not_named_to_the_driver(client, app, world, fleet, accepted):
    _referral_id, _ride_id, token = ride_with_link(app, world, fleet, accepted)
    with app.app_context():
        db.session.get(Program, world.program.id).sensitive = True
        db.session.commit()
    page = client.get(f"/d/{token}").get_data(as_text=True)
    assert "1 Main St" in page
    assert "Main office" not in page and "Youth Housing" not in page


def test_a_step_that_no_longer_fits_is_a_message(client, app, world, fleet, accepted):
    _referral_id, ride_id, token = ride_with_link(app, world, fleet, accepted)
    assert tap(client, token, "depart").status_code == 303
    again = tap(client, token, "depart")  # a second tap from a page left open
    assert again.status_code == 303
    page = client.get(f"/d/{token}").get_data(as_text=True)
    assert "cannot be changed that way" in page
    assert status_of(app, ride_id)[0] is RideStatus.EN_ROUTE_TO_PICKUP
    assert tap(client, token, "assign").status_code == 404  # not a driver's step


def test_unknown_revoked_and_expired_links_look_alike(client, app, world, fleet, accepted):
    _r1, _ride1, expired = ride_with_link(app, world, fleet, accepted)
    with app.app_context():
        db.session.query(DriverLink).one().expires_at = utcnow() - timedelta(seconds=1)
        db.session.commit()
    _r2, ride2, revoked = ride_with_link(app, world, fleet, accepted)
    live = issue_link(app, ride2)  # a new link revokes the previous one
    unknown = "d_" + "x" * 43
    pages = []
    for token in (unknown, revoked, expired):
        response = client.get(f"/d/{token}")
        assert response.status_code == 404
        pages.append(response.get_data(as_text=True).replace(token, "TOKEN"))
        assert GONE in pages[-1]
        # Posting to one does nothing either.
        posted = client.post_form(f"/d/{token}/depart", token_from="/login")
        assert posted.status_code == 404 and GONE in posted.get_data(as_text=True)
    assert pages[0] == pages[1] == pages[2]
    assert client.get(f"/d/{live}").status_code == 200
    with app.app_context():
        assert all(link.last_used_at is None for link in db.session.query(DriverLink))
        assert db.session.query(Ride).filter_by(status=RideStatus.SCHEDULED).count() == 2


def test_private_headers_on_every_driver_response(client, app, world, fleet, accepted):
    _referral_id, _ride_id, token = ride_with_link(app, world, fleet, accepted)
    responses = [
        client.get(f"/d/{token}"),
        tap(client, token, "depart"),
        client.get("/d/d_unknown"),
        client.post(f"/d/{token}/at_pickup"),  # no CSRF token: refused
    ]
    for response in responses:
        assert response.headers["Referrer-Policy"] == "no-referrer"
        assert response.headers["Cache-Control"] == "no-store"
        assert "noindex" in response.headers["X-Robots-Tag"]
    assert [r.status_code for r in responses] == [200, 303, 404, 400]


def test_get_changes_nothing(client, app, world, fleet, accepted):
    _referral_id, ride_id, token = ride_with_link(app, world, fleet, accepted)

    def snapshot():
        with app.app_context():
            ride = db.session.get(Ride, ride_id)
            link = db.session.query(DriverLink).one()
            events = db.session.query(RideEvent).filter_by(ride_id=ride_id).count()
            return ride.version, ride.status, events, link.last_used_at, link.updated_at

    before = snapshot()
    for _ in range(3):
        assert client.get(f"/d/{token}").status_code == 200
    client.get(f"/d/{token}/depart")  # a GET to an action's address is not an action
    assert snapshot() == before


def test_csrf_is_required_for_anonymous_drivers(client, app, world, fleet, accepted):
    _referral_id, ride_id, token = ride_with_link(app, world, fleet, accepted)
    refused = client.post(f"/d/{token}/depart")
    assert refused.status_code == 400
    forged = client.post(f"/d/{token}/depart", data={"csrf_token": "forged"})
    assert forged.status_code == 400
    assert status_of(app, ride_id)[0] is RideStatus.SCHEDULED
    assert tap(client, token, "depart").status_code == 303  # with the page's token it works


def test_driver_links_are_rate_limited_per_ip(client, app):
    limit = int(app.config.get("DRIVER_LINK_RATE_LIMIT", "60 per minute").split()[0])
    statuses = [client.get("/d/d_guess").status_code for _ in range(limit + 1)]
    assert statuses[:limit] == [404] * limit and statuses[-1] == 429
