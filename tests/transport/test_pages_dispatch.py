"""The dispatch board as a vendor's dispatcher meets it: the day's rides in pickup order,
filters, flags, pages, assigning a driver with the link shown once, and 404 for others."""

import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from referral_hub.accounts.models import Role
from referral_hub.core.db import city_tz
from referral_hub.core.security import token_hash
from referral_hub.directory.models import Program
from referral_hub.extensions import db
from referral_hub.notify.models import Message
from referral_hub.referrals.models import Referral
from referral_hub.transport import booking as booking_ops
from referral_hub.transport import operations as rides
from referral_hub.transport import views_dispatch
from referral_hub.transport.models import DriverLink, Ride, RideMode, RideStatus
from tests.conftest import counting_selects
from tests.referrals.conftest import referrer
from tests.transport.conftest import dispatcher_actor, next_weekday_at

PICKUP = "44.9483,-93.2348"
LINK_RE = re.compile(r'value="(https?://[^"]+/d/(d_[^"]+))"')


def book(app, world, referral_id, **kwargs) -> int:
    """Book a vendor ride through the operation, as a responder would (committed)."""
    with app.test_request_context():
        booking = booking_ops.Booking(**{"place": PICKUP, **kwargs})
        referral = db.session.get(Referral, referral_id)
        ride = booking_ops.book_ride(
            referral, referrer(world).user, booking, now=next_weekday_at(10)
        ).ride
        db.session.commit()
        return ride.id


def assign(app, fleet, ride_id, driver_id, vehicle_id=None) -> None:
    with app.test_request_context():
        ride = db.session.get(Ride, ride_id)
        rides.perform_ride(
            ride, "assign", dispatcher_actor(fleet), driver_id=driver_id, vehicle_id=vehicle_id
        )
        db.session.commit()


def issue_link(app, ride_id) -> str:
    with app.test_request_context():
        token = rides.issue_driver_link(db.session.get(Ride, ride_id), None)
        db.session.commit()
        return token


def board_day(app, ride_id) -> str:
    with app.test_request_context():
        ride = db.session.get(Ride, ride_id)
        return ride.window_start_at.astimezone(city_tz()).date().isoformat()


def version(app, ride_id) -> int:
    with app.app_context():
        return db.session.get(Ride, ride_id).version


def bulk_rides(app, fleet, referral_ids, start, **kwargs) -> list[int]:
    """Rides written straight to the table, ten minutes apart: the board only reads them."""
    ids = []
    with app.test_request_context():
        for i, referral_id in enumerate(referral_ids):
            begin = start + timedelta(minutes=10 * i)
            ride = Ride(
                referral_id=referral_id,
                mode=RideMode.VENDOR,
                vendor_org_id=fleet.vendor.id,
                site_id=db.session.get(Referral, referral_id).site_id,
                pickup_label=f"Corner {i}",
                pickup_lat=44.95,
                pickup_lon=-93.24,
                dropoff_label="Main office, 1 Main St",
                window_start_at=begin,
                window_end_at=begin + timedelta(minutes=20),
                eta_latest_at=begin + timedelta(minutes=5),
                estimate_source="estimate",
                **kwargs,
            )
            db.session.add(ride)
            db.session.flush()
            ids.append(ride.id)
        db.session.commit()
    return ids


def row_order(page: str) -> list[int]:
    return [int(n) for n in re.findall(r'<tr id="ride-(\d+)"', page)]


def test_board_lists_the_days_rides_in_pickup_order(client, app, world, fleet, accepted, login_as):
    # A wheelchair trip is slower (rolling speed on the offline estimate): book it later.
    late_day = book(app, world, accepted(next_weekday_at(15)), wheelchair=True, companions=2)
    early = book(app, world, accepted(next_weekday_at(11)))
    middle = book(
        app, world, accepted(next_weekday_at(13)), service_animal=True, driver_notes="Blue door"
    )
    login_as(fleet.dispatcher)
    day = board_day(app, early)
    response = client.get(f"/dispatch?day={day}")
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert row_order(page) == [early, middle, late_day]
    assert "3 rides this day" in page
    assert "Estimated" in page and "Amina" in page
    assert PICKUP in page and "Main office, 1 Main St" in page
    assert "Wheelchair" in page and "Service animal" in page and "2 companions" in page
    assert page.count("UNASSIGNED") == 3
    assert 'name="expected_version" value="1"' in page
    assert f'href="/rides/{early}"' in page
    # The neighbouring days are one click away; the next day has nothing.
    nxt = re.search(r'href="([^"]+)" rel="next"', page).group(1).replace("&amp;", "&")
    assert row_order(client.get(nxt).get_data(as_text=True)) == []


def test_a_sensitive_program_is_never_named_on_the_board(
    client, app, world, fleet, accepted, login_as
):
    ride_id = book(app, world, accepted(next_weekday_at(11)))
    with app.app_context():
        db.session.get(Program, world.program.id).sensitive = True
        db.session.commit()
    login_as(fleet.dispatcher)
    page = client.get(f"/dispatch?day={board_day(app, ride_id)}").get_data(as_text=True)
    assert "1 Main St" in page
    assert "Main office" not in page and "Youth Housing" not in page


def test_status_filter_keeps_the_days_counts(client, app, world, fleet, accepted, login_as):
    scheduled = book(app, world, accepted(next_weekday_at(11)))
    requested = book(app, world, accepted(next_weekday_at(13)))
    assign(app, fleet, scheduled, fleet.driver.id, fleet.car.id)
    login_as(fleet.dispatcher)
    day = board_day(app, scheduled)
    page = client.get(f"/dispatch?day={day}&status=scheduled").get_data(as_text=True)
    assert row_order(page) == [scheduled]
    assert "Scheduled (1)" in page and "Requested (1)" in page
    assert 'value="scheduled" id="status-scheduled" checked' in page
    both = client.get(f"/dispatch?day={day}&status=scheduled&status=requested")
    assert row_order(both.get_data(as_text=True)) == [scheduled, requested]
    # An unknown status is ignored rather than hiding everything.
    assert len(row_order(client.get(f"/dispatch?day={day}&status=bogus").get_data(True))) == 2


def test_late_overlap_and_unassigned_flags(client, app, world, fleet, accepted, login_as):
    first = book(app, world, accepted(next_weekday_at(11)))
    second = book(app, world, accepted(next_weekday_at(11, 10)))
    alone = book(app, world, accepted(next_weekday_at(15)))
    for ride_id in (first, second):
        assign(app, fleet, ride_id, fleet.driver.id)
    login_as(fleet.dispatcher)
    page = client.get(f"/dispatch?day={board_day(app, first)}").get_data(as_text=True)
    assert f"OVERLAP with rides #{second} of the same driver" in page
    assert f"OVERLAP with rides #{first} of the same driver" in page
    assert page.count("UNASSIGNED") == 1 and "LATE" not in page
    assert "1 without a driver" in page
    # The pickup window of the unassigned ride passed without a pickup: late.
    with app.app_context():
        ride = db.session.get(Ride, alone)
        ride.window_start_at = rides.utcnow() - timedelta(minutes=50)
        ride.window_end_at = rides.utcnow() - timedelta(minutes=30)
        db.session.commit()
    page = client.get(f"/dispatch?day={board_day(app, alone)}").get_data(as_text=True)
    row = page.split(f'<tr id="ride-{alone}"')[1].split("</tr>")[0]
    assert "is-late" in page and "LATE" in row and "UNASSIGNED" in row
    assert "1 late" in page


def test_rows_are_paginated_but_counts_cover_the_day(
    client, app, world, fleet, send, login_as, monkeypatch
):
    monkeypatch.setattr(views_dispatch, "PER_PAGE", 2)
    start = next_weekday_at(11)
    ids = bulk_rides(app, fleet, [send() for _ in range(5)], start)
    login_as(fleet.dispatcher)
    day = board_day(app, ids[0])
    first = client.get(f"/dispatch?day={day}").get_data(as_text=True)
    assert row_order(first) == ids[:2]
    assert "Page 1 of 3" in first and "5 rides this day" in first and "Requested (5)" in first
    last = client.get(f"/dispatch?day={day}&page=3").get_data(as_text=True)
    assert row_order(last) == ids[4:] and "Page 3 of 3" in last
    # The row forms come back to the same page.
    assert f"/dispatch/rides/{ids[4]}/assign?day={day}&amp;page=3" in last
    beyond = client.get(f"/dispatch?day={day}&page=99").get_data(as_text=True)
    assert row_order(beyond) == ids[4:]


def test_the_board_query_count_does_not_grow_with_rides(client, app, world, fleet, send, login_as):
    login_as(fleet.dispatcher)
    counts = []
    for n, day_offset in ((2, 1), (7, 2)):
        start = next_weekday_at(11, days_ahead=day_offset + 7)
        ids = bulk_rides(app, fleet, [send() for _ in range(n)], start)
        with app.app_context():
            for i, ride_id in enumerate(ids):  # a mix of drivers and vehicles on the rows
                ride = db.session.get(Ride, ride_id)
                ride.driver_id = (fleet.driver.id, fleet.other_driver.id, None)[i % 3]
                ride.vehicle_id = (fleet.van.id, fleet.car.id, None)[i % 3]
            db.session.commit()
        with counting_selects(app) as statements:
            page = client.get(f"/dispatch?day={board_day(app, ids[0])}").get_data(as_text=True)
        assert len(row_order(page)) == n
        counts.append(len(statements))
    assert counts[0] == counts[1], counts


def test_only_dispatchers_reach_the_board(client, app, world, fleet, accepted, login_as):
    ride_id = book(app, world, accepted(next_weekday_at(11)))
    login_as(Role.RESPONDER)
    assert client.get("/dispatch").status_code == 404
    assert client.get("/dispatch/fleet").status_code == 404
    token = client.csrf("/account")
    response = client.post(
        f"/dispatch/rides/{ride_id}/assign",
        data={"csrf_token": token, "driver_id": fleet.driver.id, "expected_version": 1},
    )
    assert response.status_code == 404
    home = client.get("/").get_data(as_text=True)
    assert 'href="/dispatch"' not in home


def test_dispatcher_home_links_the_board_with_todays_counts(
    client, app, world, fleet, send, login_as
):
    # Noon of today in the city: inside "today" whatever the hour the test runs.
    chicago = ZoneInfo("America/Chicago")
    today = rides.utcnow().astimezone(chicago).date()
    noon = datetime(today.year, today.month, today.day, 12, tzinfo=chicago)
    ids = bulk_rides(app, fleet, [send(), send()], noon)
    assign(app, fleet, ids[0], fleet.driver.id, fleet.car.id)
    login_as(fleet.dispatcher)
    home = client.get("/").get_data(as_text=True)
    assert 'href="/dispatch"' in home  # the navigation entry and the home link
    assert "2 rides today" in home and "1 without a driver" in home
    assert "Scheduled: 1" in home and "Requested: 1" in home


def test_another_vendors_ride_answers_404(
    client, app, world, fleet, accepted, login_as, make_org, make_user
):
    ride_id = book(app, world, accepted(next_weekday_at(11)))
    rival = make_user(Role.DISPATCHER, org=make_org("transport_vendor"))
    login_as(rival)
    day = board_day(app, ride_id)
    assert row_order(client.get(f"/dispatch?day={day}").get_data(as_text=True)) == []
    for path in (f"/dispatch/rides/{ride_id}/assign", f"/dispatch/rides/{ride_id}/link"):
        response = client.post_form(
            path,
            {"driver_id": fleet.driver.id, "expected_version": 1},
            token_from="/dispatch",
        )
        assert response.status_code == 404, path
    with app.app_context():
        assert db.session.get(Ride, ride_id).driver_id is None
        assert db.session.query(DriverLink).count() == 0


def test_assign_shows_the_driver_link_once(client, app, world, fleet, accepted, login_as):
    ride_id = book(app, world, accepted(next_weekday_at(14)), wheelchair=True)
    login_as(fleet.dispatcher)
    day = board_day(app, ride_id)
    response = client.post_form(
        f"/dispatch/rides/{ride_id}/assign?day={day}",
        {
            "driver_id": fleet.other_driver.id,
            "vehicle_id": fleet.van.id,
            "expected_version": version(app, ride_id),
        },
        token_from=f"/dispatch?day={day}",
    )
    assert response.status_code == 302
    assert response.headers["Location"] == f"/dispatch?day={day}"
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    url, token = LINK_RE.search(page).groups()
    assert url == f"{app.config['BASE_URL']}/d/{token}"
    assert f"Ride {ride_id} is assigned to Ana." in page
    # The driver has a phone: the dispatcher's own phone can text the link.
    assert 'href="sms:+16125550100?body=' in page and token in page.split("sms:")[1]
    with app.app_context():
        ride = db.session.get(Ride, ride_id)
        assert ride.status is RideStatus.SCHEDULED and ride.vehicle_id == fleet.van.id
        link = db.session.query(DriverLink).one()
        assert link.token_hash == token_hash(token) and token not in link.token_hash
        assert all(token not in (m.body or "") for m in db.session.query(Message))
    again = client.get(f"/dispatch?day={day}").get_data(as_text=True)
    assert token not in again and LINK_RE.search(again) is None


def test_a_vehicle_that_does_not_fit_is_an_error_beside_the_row(
    client, app, world, fleet, accepted, login_as
):
    ride_id = book(app, world, accepted(next_weekday_at(14)), wheelchair=True)
    other = book(app, world, accepted(next_weekday_at(15)))
    login_as(fleet.dispatcher)
    day = board_day(app, ride_id)
    response = client.post_form(
        f"/dispatch/rides/{ride_id}/assign?day={day}",
        {"driver_id": fleet.driver.id, "vehicle_id": fleet.car.id, "expected_version": 1},
        token_from=f"/dispatch?day={day}",
    )
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    row = page.split(f'<tr id="ride-{ride_id}"')[1].split("</tr>")[0]
    assert f'id="vehicle-{ride_id}-error"' in row and "wheelchair-accessible" in row
    assert f'<option value="{fleet.car.id}" selected>' in row  # the choice is kept
    assert "wheelchair-accessible" not in page.split(f'<tr id="ride-{other}"')[1]
    assert row_order(page) == [ride_id, other]
    with app.app_context():
        ride = db.session.get(Ride, ride_id)
        assert ride.status is RideStatus.REQUESTED and ride.driver_id is None
        assert db.session.query(DriverLink).count() == 0


def test_a_stale_assign_is_a_conflict(client, app, world, fleet, accepted, login_as):
    ride_id = book(app, world, accepted(next_weekday_at(11)))
    login_as(fleet.dispatcher)
    day = board_day(app, ride_id)
    response = client.post_form(
        f"/dispatch/rides/{ride_id}/assign?day={day}",
        {"driver_id": fleet.driver.id, "expected_version": version(app, ride_id) + 1},
        token_from="/dispatch",
    )
    assert response.status_code == 302
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Someone else changed this ride first" in page and LINK_RE.search(page) is None
    with app.app_context():
        assert db.session.get(Ride, ride_id).driver_id is None


def test_a_new_link_revokes_the_previous_one(client, app, world, fleet, accepted, login_as):
    ride_id = book(app, world, accepted(next_weekday_at(11)))
    login_as(fleet.dispatcher)
    day = board_day(app, ride_id)
    assigned = client.post_form(
        f"/dispatch/rides/{ride_id}/assign?day={day}",
        {"driver_id": fleet.driver.id, "expected_version": 1},
        token_from="/dispatch",
    )
    first = LINK_RE.search(client.get(assigned.headers["Location"]).get_data(True)).group(2)
    assert 'href="sms:' not in client.get(f"/dispatch?day={day}").get_data(True)  # no phone
    assert client.get(f"/d/{first}").status_code == 200
    again = client.post_form(f"/dispatch/rides/{ride_id}/link?day={day}", token_from="/dispatch")
    assert again.status_code == 302
    page = client.get(again.headers["Location"]).get_data(as_text=True)
    second = LINK_RE.search(page).group(2)
    assert second != first and "the previous one no longer works" in page
    assert client.get(f"/d/{first}").status_code == 404
    assert client.get(f"/d/{second}").status_code == 200
    with app.app_context():
        links = db.session.query(DriverLink).order_by(DriverLink.id).all()
        assert [link.revoked_at is not None for link in links] == [True, False]


def test_a_link_needs_a_driver(client, app, world, fleet, accepted, login_as):
    ride_id = book(app, world, accepted(next_weekday_at(11)))
    login_as(fleet.dispatcher)
    response = client.post_form(f"/dispatch/rides/{ride_id}/link", token_from="/dispatch")
    assert response.status_code == 302
    assert "Assign a driver first." in client.get(response.headers["Location"]).get_data(True)
