"""A vendor's drivers and vehicles: the rules where they live (fleet.py) and the fleet page
as a dispatcher meets it."""

import pytest

from referral_hub.accounts.models import Role
from referral_hub.core.db import city_tz
from referral_hub.core.errors import ValidationFailed
from referral_hub.extensions import db
from referral_hub.transport import board as board_ops
from referral_hub.transport import fleet as ops
from referral_hub.transport import operations as rides
from referral_hub.transport.models import Driver, Ride, Vehicle
from tests.transport.conftest import dispatcher_actor, next_weekday_at
from tests.transport.test_pages_dispatch import book


def test_drivers_are_added_with_a_normalised_phone(app, fleet):
    with app.test_request_context():
        driver = ops.add_driver(
            fleet.vendor.id, first_name="  Lia ", last_name="Moua", phone="(612) 555-0199"
        )
        assert driver.id and driver.is_active and driver.organization_id == fleet.vendor.id
        assert driver.full_name == "Lia Moua" and driver.phone == "+16125550199"
        with pytest.raises(ValidationFailed) as bad:
            ops.add_driver(fleet.vendor.id, first_name=" ", phone="555")
        assert set(bad.value.fields) == {"first_name", "phone"}
        ops.rename_driver(driver, first_name="Lia", last_name=None, phone=None)
        assert driver.full_name == "Lia" and driver.phone is None
        with pytest.raises(ValidationFailed) as long:
            ops.rename_driver(driver, first_name="x" * 61, last_name=None, phone=None)
        assert "first_name" in long.value.fields and driver.first_name == "Lia"


def test_vehicles_need_a_label_and_1_to_60_seats(app, fleet):
    with app.test_request_context():
        vehicle = ops.add_vehicle(
            fleet.vendor.id, label="Van 3", plate=" abc 123 ", seats="8", wheelchair_accessible=True
        )
        assert vehicle.plate == "ABC 123" and vehicle.seats == 8 and vehicle.wheelchair_accessible
        for seats in (0, 61, "many", None):
            with pytest.raises(ValidationFailed) as bad:
                ops.add_vehicle(fleet.vendor.id, label="Bus", seats=seats)
            assert list(bad.value.fields) == ["seats"]
        with pytest.raises(ValidationFailed) as taken:
            ops.add_vehicle(fleet.vendor.id, label="van 3", seats=4)
        assert "label" in taken.value.fields
        # A retired label may be used again; renaming keeps its own label.
        ops.deactivate_vehicle(vehicle)
        again = ops.add_vehicle(fleet.vendor.id, label="Van 3", seats=4)
        ops.rename_vehicle(again, label="Van 3", plate=None, seats=5, wheelchair_accessible=False)
        assert again.seats == 5 and not again.wheelchair_accessible


def test_deactivated_drivers_and_vehicles_leave_the_board(app, world, fleet, accepted):
    ride_id = book(app, world, accepted(next_weekday_at(11)))
    with app.test_request_context():
        ops.deactivate_driver(db.session.get(Driver, fleet.driver.id))
        ops.deactivate_vehicle(db.session.get(Vehicle, fleet.car.id))
        ride = db.session.get(Ride, ride_id)
        day = ride.window_start_at.astimezone(city_tz()).date()
        board = board_ops.dispatch_board({fleet.vendor.id}, day)
        assert [d.id for d in board.drivers] == [fleet.other_driver.id]
        assert [v.id for v in board.vehicles] == [fleet.van.id]
        with pytest.raises(ValidationFailed) as inactive:
            rides.perform_ride(ride, "assign", dispatcher_actor(fleet), driver_id=fleet.driver.id)
        assert "driver_id" in inactive.value.fields


def test_the_fleet_page_lists_and_adds(client, app, fleet, login_as):
    login_as(fleet.dispatcher)
    page = client.get("/dispatch/fleet").get_data(as_text=True)
    assert "Sam Lee" in page and "+16125550100" in page
    assert "Van 1" in page and "Car 2" in page
    added = client.post_form(
        "/dispatch/drivers",
        {"first_name": "Lia", "last_name": "Moua", "phone": "612 555 0199"},
        token_from="/dispatch/fleet",
    )
    assert added.status_code == 302
    assert "Lia Moua is added" in client.get("/dispatch/fleet").get_data(as_text=True)
    bus = client.post_form(
        "/dispatch/vehicles",
        {"label": "Bus 9", "plate": "xyz", "seats": "20", "wheelchair_accessible": "y"},
        token_from="/dispatch/fleet",
    )
    assert bus.status_code == 302
    with app.app_context():
        lia = db.session.query(Driver).filter_by(first_name="Lia").one()
        assert lia.phone == "+16125550199" and lia.organization_id == fleet.vendor.id
        vehicle = db.session.query(Vehicle).filter_by(label="Bus 9").one()
        assert vehicle.seats == 20 and vehicle.wheelchair_accessible and vehicle.plate == "XYZ"


def test_fleet_forms_keep_input_on_error(client, app, fleet, login_as):
    login_as(fleet.dispatcher)
    bad_phone = client.post_form(
        "/dispatch/drivers",
        {"first_name": "Kofi", "last_name": "Mensah", "phone": "12"},
        token_from="/dispatch/fleet",
    )
    body = bad_phone.get_data(as_text=True)
    assert bad_phone.status_code == 422
    assert 'id="phone-error"' in body and "area code" in body
    assert 'value="Kofi"' in body and 'value="Mensah"' in body and 'value="12"' in body
    too_big = client.post_form(
        "/dispatch/vehicles", {"label": "Coach", "seats": "61"}, token_from="/dispatch/fleet"
    )
    body = too_big.get_data(as_text=True)
    assert too_big.status_code == 422 and 'id="seats-error"' in body and 'value="Coach"' in body
    duplicate = client.post_form(
        "/dispatch/vehicles", {"label": "car 2", "seats": "4"}, token_from="/dispatch/fleet"
    )
    assert duplicate.status_code == 422
    assert "already has this label" in duplicate.get_data(as_text=True)
    with app.app_context():
        assert db.session.query(Driver).filter_by(first_name="Kofi").count() == 0
        assert db.session.query(Vehicle).filter_by(organization_id=fleet.vendor.id).count() == 2


def test_deactivate_from_the_fleet_page(client, app, fleet, login_as):
    login_as(fleet.dispatcher)
    for path in (
        f"/dispatch/drivers/{fleet.driver.id}/deactivate",
        f"/dispatch/vehicles/{fleet.car.id}/deactivate",
    ):
        response = client.post_form(path, token_from="/dispatch/fleet")
        assert response.status_code == 302, path
    page = client.get("/dispatch/fleet").get_data(as_text=True)
    assert "no longer offered on the board" in page
    assert f'action="/dispatch/drivers/{fleet.driver.id}/deactivate"' not in page
    assert f'action="/dispatch/drivers/{fleet.other_driver.id}/deactivate"' in page
    with app.app_context():
        assert not db.session.get(Driver, fleet.driver.id).is_active
        assert not db.session.get(Vehicle, fleet.car.id).is_active
        assert db.session.get(Vehicle, fleet.van.id).is_active


def test_another_vendors_fleet_is_out_of_reach(client, app, fleet, login_as, make_org, make_user):
    rival = make_user(Role.DISPATCHER, org=make_org("transport_vendor"))
    login_as(rival)
    page = client.get("/dispatch/fleet").get_data(as_text=True)
    assert "Sam Lee" not in page and "Van 1" not in page
    for path in (
        f"/dispatch/drivers/{fleet.driver.id}/deactivate",
        f"/dispatch/vehicles/{fleet.van.id}/deactivate",
    ):
        assert client.post_form(path, token_from="/dispatch/fleet").status_code == 404
    added = client.post_form("/dispatch/drivers", {"first_name": "Rin"}, token_from="/account")
    assert added.status_code == 302
    with app.app_context():
        assert db.session.get(Driver, fleet.driver.id).is_active
        assert db.session.get(Vehicle, fleet.van.id).is_active
        rin = db.session.query(Driver).filter_by(first_name="Rin").one()
        assert rin.organization_id == rival.memberships[0].organization_id


def test_non_dispatchers_cannot_add_to_a_fleet(client, app, fleet, login_as):
    login_as(Role.PROVIDER_ADMIN)
    response = client.post_form("/dispatch/drivers", {"first_name": "X"}, token_from="/account")
    assert response.status_code == 404
    with app.app_context():
        assert db.session.query(Driver).filter_by(first_name="X").count() == 0
