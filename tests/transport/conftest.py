"""A ride world: the referral world plus a transport vendor with a dispatcher, drivers and
vehicles, and a helper that makes an accepted referral with an appointment."""

from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest

from referral_hub.accounts.models import Organization, Role, User
from referral_hub.core.db import utcnow
from referral_hub.extensions import db
from referral_hub.referrals import operations as ops
from referral_hub.referrals.models import Referral
from referral_hub.transport.models import Driver, Vehicle
from tests.referrals.conftest import World, provider, send, world  # noqa: F401 (fixtures)


@dataclass
class Fleet:
    vendor: Organization
    dispatcher: User
    driver: Driver
    other_driver: Driver
    van: Vehicle  # wheelchair accessible
    car: Vehicle


@pytest.fixture
def fleet(app, make_org, make_user) -> Fleet:
    vendor = make_org("transport_vendor", name="Metro Rides")
    dispatcher = make_user(Role.DISPATCHER, org=vendor)
    with app.test_request_context():
        driver = Driver(organization_id=vendor.id, first_name="Sam", last_name="Lee")
        other = Driver(organization_id=vendor.id, first_name="Ana", phone="+16125550100")
        van = Vehicle(organization_id=vendor.id, label="Van 1", wheelchair_accessible=True, seats=6)
        car = Vehicle(organization_id=vendor.id, label="Car 2", seats=4)
        db.session.add_all([driver, other, van, car])
        db.session.commit()
        ids = driver.id, other.id, van.id, car.id
    with app.test_request_context():
        driver, other, van, car = (
            db.session.get(Driver, ids[0]),
            db.session.get(Driver, ids[1]),
            db.session.get(Vehicle, ids[2]),
            db.session.get(Vehicle, ids[3]),
        )
    return Fleet(vendor, dispatcher, driver, other, van, car)


def next_weekday_at(hour: int, minute: int = 0, *, days_ahead: int = 1) -> datetime:
    """An aware UTC moment on a coming weekday at a Minneapolis wall-clock time."""
    from zoneinfo import ZoneInfo

    tz = ZoneInfo("America/Chicago")
    day = (utcnow().astimezone(tz) + timedelta(days=days_ahead)).date()
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=tz).astimezone(
        ZoneInfo("UTC")
    )


@pytest.fixture
def accepted(app, world, send):  # noqa: F811
    """accepted(appointment_at=...) -> the id of an accepted referral (committed)."""

    def do(appointment_at: datetime | None = None) -> int:
        referral_id = send()
        with app.test_request_context():
            referral = db.session.get(Referral, referral_id)
            ops.perform(referral, "accept", provider(world), appointment_at=appointment_at)
            db.session.commit()
        return referral_id

    return do


def dispatcher_actor(fleet: Fleet):
    from referral_hub.transport.lifecycle import RideSide
    from referral_hub.transport.operations import RideActor

    return RideActor(
        frozenset({RideSide.DISPATCH}),
        user=db.session.get(User, fleet.dispatcher.id),
        organization_id=fleet.vendor.id,
        label="dispatcher",
    )
