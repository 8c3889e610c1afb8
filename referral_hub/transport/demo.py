"""Demo rides for the transport vendor of the demo city (DESIGN.md section 6).

Its drivers and vehicles come from seed/minneapolis/fleet.json. Rides go on the demo
referrals, in every ride state, outbound and return, vendor vehicle, escort, transit, walk
and rideshare; most of them today (city time), so the dispatch board opens on a working day
with one ride late and one driver booked twice, and a few return trips in the history.

Every ride is booked and moved through the ride operations with explicit moments, so its
events, the referral's en route / arrived steps and the no-show follow-up are real. Then,
like the referral history, the events are dated to the moments they stand for.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any

from flask import current_app
from sqlalchemy import func, select, update

from referral_hub.accounts.models import Membership, Organization, Role, User
from referral_hub.core.db import city_tz, utcnow
from referral_hub.core.errors import ValidationFailed
from referral_hub.extensions import db
from referral_hub.geo.base import Point
from referral_hub.referrals.models import Referral, ReferralEvent, Status
from referral_hub.referrals.operations import normalize_phone
from referral_hub.transport import booking as booking_ops
from referral_hub.transport import operations as ops
from referral_hub.transport.lifecycle import RideSide
from referral_hub.transport.models import (
    Driver,
    FollowUp,
    Leg,
    Ride,
    RideEvent,
    RideMode,
    Vehicle,
)

FLEET_FILE = "fleet.json"
# The demo's "now" stays inside the day, so every ride of today lands on today's board.
EARLIEST_ANCHOR = time(7, 0)
LATEST_ANCHOR = time(20, 0)
# Where a closed site sends the planner looking instead: the same hour on the next days,
# then hours most programs keep.
FALLBACK_HOURS = (time(11, 0), time(14, 0), time(17, 0), time(20, 0))
FALLBACK_DAYS = 14


Count = Callable[[str, bool], None]


def load_transport_demo(seed_dir: Path, count: Count, now: datetime | None = None) -> int:
    """Load the fleet, then the demo rides unless the vendor has rides; returns rides made."""
    fleet = load_fleet(seed_dir, count)
    if fleet is None:
        return 0
    return load_rides(fleet, demo_anchor(now or utcnow()))


# --- the fleet -------------------------------------------------------------------------------


@dataclass
class Fleet:
    vendor: Organization
    drivers: list[Driver]
    vehicles: list[Vehicle]
    places: list[tuple[str, Point]]


def load_fleet(seed_dir: Path, count: Count) -> Fleet | None:
    """Create or refresh the vendor's drivers and vehicles (by name and by label)."""
    path = seed_dir / FLEET_FILE
    if not path.exists():
        return None
    data = json.loads(path.read_text())
    vendor = db.session.scalar(select(Organization).where(Organization.slug == data["vendor"]))
    if vendor is None:
        return None
    drivers = []
    for item in data["drivers"]:
        driver = db.session.scalar(
            select(Driver).where(
                Driver.organization_id == vendor.id,
                Driver.first_name == item["first_name"],
                Driver.last_name == item["last_name"],
            )
        )
        created = driver is None
        if driver is None:
            driver = Driver(
                organization_id=vendor.id,
                first_name=item["first_name"],
                last_name=item["last_name"],
            )
            db.session.add(driver)
        driver.phone = normalize_phone(item.get("phone"))
        driver.is_active = True
        drivers.append(driver)
        count("drivers", created)
    vehicles = []
    for item in data["vehicles"]:
        vehicle = db.session.scalar(
            select(Vehicle).where(
                Vehicle.organization_id == vendor.id, Vehicle.label == item["label"]
            )
        )
        created = vehicle is None
        if vehicle is None:
            vehicle = Vehicle(organization_id=vendor.id, label=item["label"])
            db.session.add(vehicle)
        vehicle.plate = item.get("plate")
        vehicle.seats = item["seats"]
        vehicle.wheelchair_accessible = item["wheelchair_accessible"]
        vehicle.is_active = True
        vehicles.append(vehicle)
        count("vehicles", created)
    db.session.flush()
    places = [
        (item["name"], Point(item["latitude"], item["longitude"])) for item in data["pickup_places"]
    ]
    return Fleet(vendor, drivers, vehicles, places)


# --- dating what the operations wrote ----------------------------------------------------------


def demo_anchor(now: datetime) -> datetime:
    """The moment today's demo rides are arranged around: now, kept inside the working day."""
    tz = city_tz()
    local = now.astimezone(tz)
    earliest = datetime.combine(local.date(), EARLIEST_ANCHOR, tzinfo=tz)
    latest = datetime.combine(local.date(), LATEST_ANCHOR, tzinfo=tz)
    return min(max(local, earliest), latest).astimezone(UTC).replace(microsecond=0)


def _last_id(model: Any) -> int:
    return db.session.scalar(select(func.max(model.id))) or 0


@contextmanager
def _dated(moment: datetime) -> Iterator[None]:
    """Give the events and follow-ups written inside the block this moment (unless it raised)."""
    marks = {model: _last_id(model) for model in (RideEvent, ReferralEvent)}
    follow_ups = _last_id(FollowUp)
    yield
    db.session.flush()
    for model, mark in marks.items():
        db.session.execute(
            update(model)
            .where(model.id > mark)
            .values(created_at=moment)
            .execution_options(synchronize_session="fetch")
        )
    db.session.execute(
        update(FollowUp)
        .where(FollowUp.id > follow_ups)
        .values(created_at=moment, updated_at=moment)
        .execution_options(synchronize_session="fetch")
    )


# --- booking and moving rides ------------------------------------------------------------------


@dataclass
class Demo:
    fleet: Fleet
    dispatcher: User | None
    anchor: datetime
    accepted: list[Referral]  # outbound trips are booked on accepted referrals
    made: int = 0

    def past(self, moment: datetime) -> datetime:
        """A step that has happened today happened before the demo's now."""
        return min(moment, self.anchor - timedelta(minutes=1))


def _place_text(point: Point) -> str:
    return f"{point.lat:.5f},{point.lon:.5f}"


def _nearest(places: list[tuple[str, Point]], site_point: Point) -> tuple[str, Point]:
    return min(
        places,
        key=lambda item: math.hypot(item[1].lat - site_point.lat, item[1].lon - site_point.lon),
    )


def _try_outbound(
    referral: Referral,
    at: datetime,
    place: tuple[str, Point],
    booked_at: datetime,
    options: dict[str, Any],
) -> Ride | None:
    booking = booking_ops.Booking(
        leg=Leg.OUTBOUND, place=_place_text(place[1]), when="at", at=at, **options
    )
    try:
        with _dated(booked_at):
            ride = booking_ops.book_ride(
                referral, referral.referring_user, booking, now=at - timedelta(days=1)
            ).ride
    except ValidationFailed:  # the site is closed then: refused before anything was written
        return None
    ride.pickup_label = place[0]
    ride.created_at = booked_at
    return ride


def _candidates(appointment: datetime) -> Iterator[datetime]:
    tz = city_tz()
    local = appointment.astimezone(tz)
    for days in range(FALLBACK_DAYS):
        day = local.date() + timedelta(days=days)
        for hour in (local.timetz().replace(tzinfo=None), *FALLBACK_HOURS):
            yield datetime.combine(day, hour, tzinfo=tz).astimezone(UTC)


def _shift(ride: Ride, delta: timedelta) -> None:
    for name in (
        "requested_for_at",
        "window_start_at",
        "window_end_at",
        "arrive_by_at",
        "eta_earliest_at",
        "eta_latest_at",
    ):
        value = getattr(ride, name)
        if value is not None:
            setattr(ride, name, value + delta)


def book_outbound(
    demo: Demo, appointment: datetime, *, place: int | None = None, **options: Any
) -> Ride | None:
    """Book the trip to the program for the next accepted referral, booked the day before.

    The first referral whose site is open at the appointment gets it. When none is (a
    weekend, an evening), the ride is planned for a time the site is open and then moved onto
    the appointment, as the referral history moves its referrals back in time.
    """
    booked_at = appointment - timedelta(days=1)
    for shifted in (False, True):
        for referral in list(demo.accepted):
            if place is None:
                try:
                    site = booking_ops.destination_site(referral)
                except ValidationFailed:  # a program without a site: no trip to book
                    continue
                spot = _nearest(demo.fleet.places, Point(site.latitude, site.longitude))
            else:
                spot = demo.fleet.places[place % len(demo.fleet.places)]
            moments = _candidates(appointment) if shifted else iter([appointment])
            for moment in moments:
                ride = _try_outbound(referral, moment, spot, booked_at, options)
                if ride is None:
                    continue
                _shift(ride, appointment - moment)
                referral.appointment_at = appointment
                demo.accepted.remove(referral)
                demo.made += 1
                return ride
    return None


def book_return(
    demo: Demo,
    referral: Referral,
    *,
    booked_at: datetime,
    at: datetime,
    place: int | tuple[str, Point],
    will_call: bool = False,
    **options: Any,
) -> Ride:
    """Book the trip back from the program (a pickup time, or waiting for the client's call)."""
    name, point = (
        demo.fleet.places[place % len(demo.fleet.places)] if isinstance(place, int) else place
    )
    booking = booking_ops.Booking(
        leg=Leg.RETURN,
        place=_place_text(point),
        when="will_call" if will_call else "at",
        at=at,
        **options,
    )
    with _dated(booked_at):
        ride = booking_ops.book_ride(referral, referral.referring_user, booking, now=booked_at).ride
    ride.dropoff_label = name
    ride.created_at = booked_at
    demo.made += 1
    return ride


def home(ride: Ride) -> tuple[str, Point]:
    """Where an outbound ride collected the person: where the ride back takes them."""
    assert ride.pickup_lat is not None and ride.pickup_lon is not None
    return ride.pickup_label or "", Point(ride.pickup_lat, ride.pickup_lon)


def _actor(demo: Demo, ride: Ride, action: str) -> ops.RideActor:
    """The dispatcher assigns, drivers move vendor rides, the responder moves the others."""
    if action in ("assign", "cancel") and ride.mode.dispatched:
        return ops.RideActor(
            frozenset({RideSide.DISPATCH}),
            user=demo.dispatcher,
            organization_id=demo.fleet.vendor.id,
            label="dispatcher",
        )
    if ride.mode.dispatched:
        return ops.RideActor.driver()
    user = ride.referral.referring_user
    assert user is not None
    return ops.user_actor(user, ride)


def act(demo: Demo, ride: Ride, action: str, moment: datetime, **values: Any) -> None:
    with _dated(moment):
        ops.perform_ride(ride, action, _actor(demo, ride, action), now=moment, **values)


def assign(demo: Demo, ride: Ride, driver: Driver, vehicle: Vehicle) -> None:
    """Dispatched the evening before the pickup, or soon after booking when that is later."""
    pickup = ride.window_start_at or ride.requested_for_at or demo.anchor
    moment = max(pickup - timedelta(hours=15), ride.created_at + timedelta(minutes=10))
    act(demo, ride, "assign", moment, driver_id=driver.id, vehicle_id=vehicle.id)


def travel(demo: Demo, ride: Ride, until: str, *, live: bool = True) -> None:
    """Move a ride along its pickup window up to `until` (depart, pick_up or drop_off)."""
    start = ride.window_start_at
    assert start is not None
    riding = timedelta(minutes=ride.travel_minutes or 10)
    steps = [("depart", start - timedelta(minutes=10))]
    if ride.mode.dispatched:
        steps.append(("at_pickup", start + timedelta(minutes=2)))
    steps += [
        ("pick_up", start + timedelta(minutes=6)),
        ("drop_off", start + timedelta(minutes=6) + riding),
    ]
    for action, moment in steps:
        act(demo, ride, action, demo.past(moment) if live else moment)
        if action == until:
            return


def no_show(demo: Demo, ride: Ride) -> None:
    """The driver came, waited the configured time, and nobody was there."""
    start = ride.window_start_at
    assert start is not None
    wait = timedelta(minutes=current_app.config["RIDE_NO_SHOW_WAIT_MINUTES"])
    act(demo, ride, "depart", start - timedelta(minutes=10))
    act(demo, ride, "at_pickup", start + timedelta(minutes=1))
    act(demo, ride, "no_show", start + timedelta(minutes=4) + wait)


# --- the rides -------------------------------------------------------------------------------


def load_rides(fleet: Fleet, anchor: datetime) -> int:
    """Rides on the demo referrals in every state; nothing when the vendor has rides."""
    vendor_rides = (
        select(func.count()).select_from(Ride).where(Ride.vendor_org_id == fleet.vendor.id)
    )
    if db.session.scalar(vendor_rides):
        return 0
    dispatcher = db.session.scalar(
        select(User)
        .join(Membership)
        .where(Membership.organization_id == fleet.vendor.id, Membership.role == Role.DISPATCHER)
        .order_by(User.id)
    )
    accepted = list(
        db.session.scalars(
            select(Referral)
            .where(Referral.status == Status.ACCEPTED, Referral.referring_user_id.is_not(None))
            .order_by(Referral.id)
        )
    )
    handed_off = list(
        db.session.scalars(
            select(Referral)
            .where(
                Referral.status == Status.HANDED_OFF,
                Referral.handed_off_at.is_not(None),
                Referral.referring_user_id.is_not(None),
            )
            .order_by(Referral.id)
        )
    )
    demo = Demo(fleet, dispatcher, anchor, accepted)
    _today(demo)
    _history(demo, handed_off)
    db.session.flush()
    return demo.made


def _today(demo: Demo) -> None:
    a = demo.anchor
    maria, abdi, greg, mai = demo.fleet.drivers
    van, car, minivan = demo.fleet.vehicles
    hour = timedelta(hours=1)
    minute = timedelta(minutes=1)

    # Done this morning: the client arrived; the ride home waits for their call.
    done = book_outbound(demo, a - 2 * hour, place=0)
    if done:
        assign(demo, done, maria, car)
        travel(demo, done, "drop_off")
        book_return(
            demo,
            done.referral,
            booked_at=done.dropped_off_at,
            at=a + hour,
            place=home(done),
            will_call=True,
        )

    # In the van now, wheelchair and a companion (from the place nearest the program).
    riding = book_outbound(demo, a + 25 * minute, wheelchair=True, companions=1)
    if riding:
        assign(demo, riding, abdi, van)
        travel(demo, riding, "pick_up")

    # The driver is on the way (the pickup window still open, however long the trip).
    coming = book_outbound(demo, a + 80 * minute, place=2)
    if coming:
        assign(demo, coming, greg, minivan)
        travel(demo, coming, "depart")

    # Late: the pickup window has closed and nobody has left yet.
    late = book_outbound(demo, a + 10 * minute, place=3)
    if late:
        assign(demo, late, mai, car)

    # Later today: a wheelchair ride in the van, and Maria is also given the ride home of the
    # client in the van now, at an overlapping time (the board flags the overlap).
    later = book_outbound(demo, a + 2 * hour + 30 * minute, wheelchair=True)
    if later:
        assign(demo, later, maria, van)
        if riding:
            back = book_return(
                demo,
                riding.referral,
                booked_at=riding.created_at,
                at=later.window_start_at + 15 * minute,
                place=home(riding),
                wheelchair=True,
                companions=1,
            )
            assign(demo, back, maria, van)

    # Not yet given to a driver.
    book_outbound(demo, a + 3 * hour, place=5, driver_notes="Ring the side door, unit 2.")

    # Nobody at the pickup: the responder gets a follow-up.
    missed = book_outbound(demo, a - hour - 15 * minute, place=6)
    if missed:
        assign(demo, missed, greg, minivan)
        no_show(demo, missed)

    # Rides nobody dispatches: the responder takes the person, or they walk and take the bus.
    escort = book_outbound(demo, a + 35 * minute, place=7, mode=RideMode.ESCORT)
    if escort:
        travel(demo, escort, "pick_up")
    walk = book_outbound(demo, a - 3 * hour, mode=RideMode.WALK)
    if walk:
        travel(demo, walk, "drop_off")
        book_return(
            demo,
            walk.referral,
            booked_at=walk.dropped_off_at,
            at=a + hour + 30 * minute,
            place=home(walk),
            mode=RideMode.TRANSIT,
        )

    # Booked, then called off by the vendor: no vehicle free at that hour.
    called_off = book_outbound(demo, a + 3 * hour + 30 * minute, place=9)
    if called_off:
        act(
            demo,
            called_off,
            "cancel",
            demo.past(called_off.created_at + 3 * hour),
            reason_code="vehicle_unavailable",
        )


def _history(demo: Demo, handed_off: list[Referral]) -> None:
    """Return trips of referrals received in person, days or weeks ago."""
    abdi, van = demo.fleet.drivers[1], demo.fleet.vehicles[0]
    rides = []
    for n, referral in enumerate(handed_off[:3]):
        assert referral.handed_off_at is not None
        mode = RideMode.RIDESHARE if n == 2 else RideMode.VENDOR
        rides.append(
            book_return(
                demo,
                referral,
                booked_at=referral.handed_off_at,
                at=referral.handed_off_at + timedelta(minutes=40),
                place=n + 3,
                mode=mode,
                booking_reference="Voucher 48213" if mode is RideMode.RIDESHARE else None,
            )
        )
    if rides:
        assign(demo, rides[0], abdi, van)
        travel(demo, rides[0], "drop_off", live=False)
    if len(rides) > 1:
        act(
            demo,
            rides[1],
            "cancel",
            rides[1].created_at + timedelta(minutes=20),
            reason_code="no_longer_needed",
        )
    if len(rides) > 2:
        travel(demo, rides[2], "drop_off", live=False)
