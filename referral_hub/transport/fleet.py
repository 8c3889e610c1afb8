"""A transport vendor's fleet: add, rename and deactivate drivers and vehicles.

Like every operation module these only `flush()`; the view commits. Deactivating never
deletes: past rides keep their driver and vehicle, and the board stops offering them.
"""

from __future__ import annotations

from flask_babel import gettext as _
from sqlalchemy import func, select

from referral_hub.core.errors import ValidationFailed
from referral_hub.extensions import db
from referral_hub.referrals.operations import normalize_phone
from referral_hub.transport.models import Driver, Vehicle

MAX_SEATS = 60


def _text(value: str | None) -> str:
    return " ".join((value or "").split())


def _driver_values(first_name: str | None, last_name: str | None, phone: str | None) -> dict:
    errors: dict[str, list[str]] = {}
    first, last = _text(first_name), _text(last_name)
    if not first:
        errors["first_name"] = [_("Give the driver's first name.")]
    elif len(first) > 60:
        errors["first_name"] = [_("At most %(num)d characters.", num=60)]
    if len(last) > 60:
        errors["last_name"] = [_("At most %(num)d characters.", num=60)]
    normalized = None
    try:
        normalized = normalize_phone(phone)
    except ValidationFailed as exc:
        errors.update(exc.fields)
    if errors:
        raise ValidationFailed(_("Please correct the marked fields."), fields=errors)
    return {"first_name": first, "last_name": last or None, "phone": normalized}


def add_driver(
    organization_id: int,
    *,
    first_name: str | None,
    last_name: str | None = None,
    phone: str | None = None,
) -> Driver:
    """A new active driver of the vendor; the phone is stored normalised (+1...)."""
    driver = Driver(organization_id=organization_id, **_driver_values(first_name, last_name, phone))
    db.session.add(driver)
    db.session.flush()
    return driver


def rename_driver(
    driver: Driver, *, first_name: str | None, last_name: str | None, phone: str | None
) -> Driver:
    """Change a driver's name and phone, with the same checks as adding one."""
    for name, value in _driver_values(first_name, last_name, phone).items():
        setattr(driver, name, value)
    db.session.flush()
    return driver


def deactivate_driver(driver: Driver) -> Driver:
    """The board stops offering the driver; rides already assigned keep them."""
    driver.is_active = False
    db.session.flush()
    return driver


def _vehicle_values(
    organization_id: int,
    label: str | None,
    plate: str | None,
    seats: int | str | None,
    exclude_id: int | None = None,
) -> dict:
    errors: dict[str, list[str]] = {}
    label, plate = _text(label), _text(plate).upper()
    if not label:
        errors["label"] = [_("Give the vehicle a label the drivers know it by.")]
    elif len(label) > 80:
        errors["label"] = [_("At most %(num)d characters.", num=80)]
    elif _label_taken(organization_id, label, exclude_id):
        errors["label"] = [_("Another active vehicle already has this label.")]
    if len(plate) > 20:
        errors["plate"] = [_("At most %(num)d characters.", num=20)]
    try:
        seat_count = int(seats)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        seat_count = 0
    if not 1 <= seat_count <= MAX_SEATS:
        errors["seats"] = [_("Between 1 and %(num)d seats.", num=MAX_SEATS)]
    if errors:
        raise ValidationFailed(_("Please correct the marked fields."), fields=errors)
    return {"label": label, "plate": plate or None, "seats": seat_count}


def _label_taken(organization_id: int, label: str, exclude_id: int | None) -> bool:
    stmt = select(Vehicle.id).where(
        Vehicle.organization_id == organization_id,
        Vehicle.is_active,
        func.lower(Vehicle.label) == label.lower(),
    )
    if exclude_id is not None:
        stmt = stmt.where(Vehicle.id != exclude_id)
    return db.session.scalar(stmt.limit(1)) is not None


def add_vehicle(
    organization_id: int,
    *,
    label: str | None,
    plate: str | None = None,
    seats: int | str | None = 4,
    wheelchair_accessible: bool = False,
) -> Vehicle:
    """A new active vehicle of the vendor: 1 to 60 seats, a label unique among active ones."""
    vehicle = Vehicle(
        organization_id=organization_id,
        wheelchair_accessible=bool(wheelchair_accessible),
        **_vehicle_values(organization_id, label, plate, seats),
    )
    db.session.add(vehicle)
    db.session.flush()
    return vehicle


def rename_vehicle(
    vehicle: Vehicle,
    *,
    label: str | None,
    plate: str | None,
    seats: int | str | None,
    wheelchair_accessible: bool,
) -> Vehicle:
    """Change a vehicle's label, plate, seats and accessibility, with the adding checks."""
    values = _vehicle_values(vehicle.organization_id, label, plate, seats, exclude_id=vehicle.id)
    for name, value in values.items():
        setattr(vehicle, name, value)
    vehicle.wheelchair_accessible = bool(wheelchair_accessible)
    db.session.flush()
    return vehicle


def deactivate_vehicle(vehicle: Vehicle) -> Vehicle:
    """The board stops offering the vehicle; rides already assigned keep it."""
    vehicle.is_active = False
    db.session.flush()
    return vehicle
