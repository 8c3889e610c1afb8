"""The transport vendor's pages for dispatchers: the day's board with its flags and assign
forms, driver links shown once, and the fleet of drivers and vehicles.

Only a vendor's dispatchers reach these pages; everyone else, and every ride, driver or
vehicle of another vendor, answers 404 (DESIGN.md section 8).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import quote

from flask import current_app, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from wtforms import BooleanField, IntegerField, StringField, TelField
from wtforms.validators import InputRequired, Length, NumberRange, Optional
from wtforms.widgets import HiddenInput

from referral_hub import policies
from referral_hub.accounts.models import User
from referral_hub.core.db import city_tz, utcnow
from referral_hub.core.errors import Conflict, NotFound, ValidationFailed
from referral_hub.extensions import db
from referral_hub.transport import board as board_ops
from referral_hub.transport import fleet
from referral_hub.transport import operations as ops
from referral_hub.transport.lifecycle import RideSide
from referral_hub.transport.models import Driver, Leg, Ride, RideStatus, Vehicle
from referral_hub.transport.views import bp
from referral_hub.web.forms import apply_errors

PER_PAGE = 100
# The driver link just issued, kept in the session only until the board shows it once.
LINK_KEY = "driver_link_once"


class AssignForm(FlaskForm):
    """One board row's assign form; the rules (own, active, fits the ride) are the operation's."""

    driver_id = IntegerField(_l("Driver"), validators=[Optional()])
    vehicle_id = IntegerField(_l("Vehicle"), validators=[Optional()])
    expected_version = IntegerField(validators=[InputRequired()], widget=HiddenInput())


class DriverForm(FlaskForm):
    first_name = StringField(_l("First name"), validators=[InputRequired(), Length(max=60)])
    last_name = StringField(_l("Last name"), validators=[Optional(), Length(max=60)])
    phone = TelField(
        _l("Mobile phone"),
        validators=[Optional(), Length(max=30)],
        description=_l("Driver links are texted from your own phone to this number."),
    )


class VehicleForm(FlaskForm):
    label = StringField(
        _l("Label"),
        validators=[InputRequired(), Length(max=80)],
        description=_l("What drivers call it, e.g. “Van 3 - white Ford Transit”."),
    )
    plate = StringField(_l("Plate"), validators=[Optional(), Length(max=20)])
    seats = IntegerField(
        _l("Seats"),
        default=4,
        validators=[InputRequired(), NumberRange(min=1, max=fleet.MAX_SEATS)],
    )
    wheelchair_accessible = BooleanField(_l("Wheelchair accessible"))


# --- who and what ---------------------------------------------------------------------------


def _user() -> User:
    return current_user._get_current_object()


def vendor_ids() -> set[int]:
    """The vendors the user dispatches for; anyone else finds no such page."""
    ids = policies.dispatcher_org_ids(current_user)
    if not ids:
        raise NotFound(_("Not found."))
    return ids


def _home_vendor_id(ids: set[int]) -> int:
    """Where new drivers and vehicles go: the user's first dispatcher membership."""
    membership = current_user.primary_membership
    if membership is not None and membership.organization_id in ids:
        return membership.organization_id
    return min(ids)


def _vendor_ride(ride_id: int) -> Ride:
    ids = vendor_ids()
    ride = policies.get_visible_or_404(current_user, Ride, ride_id)
    if ride.vendor_org_id not in ids:  # seen through a referral, not dispatched by us
        raise NotFound(_("Not found."))
    return ride


def dispatcher(ride: Ride) -> ops.RideActor:
    return ops.RideActor(
        frozenset({RideSide.DISPATCH}),
        user=_user(),
        organization_id=ride.vendor_org_id,
        label="dispatcher",
    )


def ride_places(ride: Ride) -> tuple[str, str]:
    """Pickup and destination as shown to dispatchers and drivers.

    The program's site is named only by its address when the program is sensitive: a van
    driver does not need to read "victim services" to find the door.
    """
    pickup, dropoff = ride.pickup_label or "", ride.dropoff_label or ""
    site = ride.site
    if site is not None and ride.referral.program.sensitive:
        address = f"{site.address_1}, {site.city}"
        if ride.leg is Leg.OUTBOUND:
            dropoff = address
        else:
            pickup = address
    return pickup, dropoff


def city_day(moment: datetime | None) -> date:
    return (moment or utcnow()).astimezone(city_tz()).date()


def _day(text: str | None) -> date:
    try:
        return date.fromisoformat(text or "")
    except ValueError:
        return city_day(None)


def _statuses(values: list[str]) -> list[str]:
    known = {s.value for s in RideStatus}
    return [v for v in values if v in known]


def _board_args(source: Any) -> dict[str, Any]:
    """The board's day, status filter and page, carried through the row forms."""
    args: dict[str, Any] = {"day": _day(source.get("day")).isoformat()}
    statuses = _statuses(source.getlist("status"))
    if statuses:
        args["status"] = statuses
    page = source.get("page", type=int)
    if page and page > 1:
        args["page"] = page
    return args


# --- the board ------------------------------------------------------------------------------


def _board_page(
    args: dict[str, Any],
    *,
    errors: dict[int, dict[str, Any]] | None = None,
    link: dict[str, Any] | None = None,
    status: int = 200,
):
    day = date.fromisoformat(args["day"])
    chosen = set(args.get("status", []))
    # Counts and flags cover the whole day; the filter and the pages only choose rows.
    board = board_ops.dispatch_board(
        vendor_ids(),
        day,
        statuses={RideStatus(v) for v in chosen},
        page=int(args.get("page", 1)),
        per_page=PER_PAGE,
        now=utcnow(),
    )
    base = {k: v for k, v in args.items() if k != "page"}
    return render_template(
        "transport/dispatch.html",
        day=day,
        today=city_day(None),
        prev_day=(day - timedelta(days=1)).isoformat(),
        next_day=(day + timedelta(days=1)).isoformat(),
        statuses=list(RideStatus),
        chosen=chosen,
        counts=board.counts,
        total=board.total,
        late=board.late,
        unassigned=board.unassigned,
        shown=board.shown,
        rows=board.rows,
        page=board.page,
        pages=board.pages,
        base=base,
        row_args={**base, "page": board.page} if board.page > 1 else base,
        drivers=board.drivers,
        vehicles=board.vehicles,
        errors=errors or {},
        link=link,
        places=ride_places,
    ), status


@bp.get("/dispatch")
@login_required
def dispatch():
    vendor_ids()
    return _board_page(_board_args(request.args), link=session.pop(LINK_KEY, None))


def driver_link_url(token: str) -> str:
    base = current_app.config["BASE_URL"].rstrip("/")
    return base + url_for("transport.driver_page", token=token)


def _show_link_once(ride: Ride, token: str) -> None:
    """Carry the new link to the next board view only; it is never stored on our side."""
    url = driver_link_url(token)
    driver = ride.driver
    sms = None
    if driver is not None and driver.phone:
        body = _("Your ride link: %(url)s", url=url)
        sms = f"sms:{driver.phone}?body={quote(body, safe='')}"
    session[LINK_KEY] = {
        "ride_id": ride.id,
        "driver": driver.full_name if driver else "",
        "url": url,
        "sms": sms,
    }


@bp.post("/dispatch/rides/<int:ride_id>/assign")
@login_required
def assign(ride_id: int):
    ride = _vendor_ride(ride_id)
    args = _board_args(request.args)
    form = AssignForm()
    kept = {"driver_id": form.driver_id.raw_data, "vehicle_id": form.vehicle_id.raw_data}
    if not form.validate():
        return _board_page(args, errors={ride.id: _row_errors(form, kept)}, status=422)
    try:
        ops.perform_ride(
            ride,
            "assign",
            dispatcher(ride),
            expected_version=form.expected_version.data,
            driver_id=form.driver_id.data,
            vehicle_id=form.vehicle_id.data,
        )
        token = ops.issue_driver_link(ride, _user())
    except Conflict as exc:
        db.session.rollback()
        flash(exc.message, "error")
        return redirect(url_for("transport.dispatch", **args))
    except ValidationFailed as exc:
        db.session.rollback()
        apply_errors(form, exc)
        return _board_page(args, errors={ride_id: _row_errors(form, kept)}, status=422)
    db.session.commit()
    _show_link_once(ride, token)
    flash(_("Ride %(id)d is assigned to %(driver)s.", id=ride.id, driver=ride.driver.full_name))
    return redirect(url_for("transport.dispatch", **args))


def _row_errors(form: AssignForm, kept: dict[str, Any]) -> dict[str, Any]:
    fields = {name: list(getattr(form, name).errors) for name in ("driver_id", "vehicle_id")}
    return {
        "fields": {k: v for k, v in fields.items() if v},
        "message": " ".join([*form.form_errors, *form.expected_version.errors]),
        "kept": {k: (v[0] if v else "") for k, v in kept.items()},
    }


@bp.post("/dispatch/rides/<int:ride_id>/link")
@login_required
def reissue_link(ride_id: int):
    ride = _vendor_ride(ride_id)
    args = _board_args(request.args)
    try:
        token = ops.issue_driver_link(ride, _user())
    except Conflict as exc:
        db.session.rollback()
        flash(exc.message, "error")
        return redirect(url_for("transport.dispatch", **args))
    db.session.commit()
    _show_link_once(ride, token)
    flash(_("A new link for ride %(id)d: the previous one no longer works.", id=ride.id))
    return redirect(url_for("transport.dispatch", **args))


# --- the dispatcher's home: today at a glance ----------------------------------------------


@bp.app_template_global()
def dispatch_today() -> dict[str, Any]:
    """Today's ride counts of the user's vendors, for the dispatcher's home page."""
    now = utcnow()
    summary = board_ops.day_summary(
        policies.dispatcher_org_ids(current_user), city_day(now), now=now
    )
    return {"day": city_day(now).isoformat(), **summary}


# --- the fleet ------------------------------------------------------------------------------


def _fleet_page(
    driver_form: DriverForm | None = None,
    vehicle_form: VehicleForm | None = None,
    status: int = 200,
):
    vendor_ids()
    drivers = db.session.scalars(
        policies.visible(current_user, Driver).order_by(
            Driver.is_active.desc(), Driver.first_name, Driver.id
        )
    ).all()
    vehicles = db.session.scalars(
        policies.visible(current_user, Vehicle).order_by(
            Vehicle.is_active.desc(), Vehicle.label, Vehicle.id
        )
    ).all()
    return render_template(
        "transport/fleet.html",
        drivers=drivers,
        vehicles=vehicles,
        driver_form=driver_form or DriverForm(formdata=None),
        vehicle_form=vehicle_form or VehicleForm(formdata=None),
    ), status


@bp.get("/dispatch/fleet")
@login_required
def fleet_page():
    return _fleet_page()


@bp.post("/dispatch/drivers")
@login_required
def add_driver():
    ids = vendor_ids()
    form = DriverForm()
    if not form.validate():
        return _fleet_page(driver_form=form, status=422)
    try:
        driver = fleet.add_driver(
            _home_vendor_id(ids),
            first_name=form.first_name.data,
            last_name=form.last_name.data,
            phone=form.phone.data,
        )
    except ValidationFailed as exc:
        db.session.rollback()
        apply_errors(form, exc)
        return _fleet_page(driver_form=form, status=422)
    db.session.commit()
    flash(_("%(name)s is added to your drivers.", name=driver.full_name), "success")
    return redirect(url_for("transport.fleet_page"))


@bp.post("/dispatch/drivers/<int:driver_id>/deactivate")
@login_required
def deactivate_driver(driver_id: int):
    vendor_ids()
    driver = policies.get_visible_or_404(current_user, Driver, driver_id)
    fleet.deactivate_driver(driver)
    db.session.commit()
    flash(_("%(name)s is no longer offered on the board.", name=driver.full_name), "success")
    return redirect(url_for("transport.fleet_page"))


@bp.post("/dispatch/vehicles")
@login_required
def add_vehicle():
    ids = vendor_ids()
    form = VehicleForm()
    if not form.validate():
        return _fleet_page(vehicle_form=form, status=422)
    try:
        vehicle = fleet.add_vehicle(
            _home_vendor_id(ids),
            label=form.label.data,
            plate=form.plate.data,
            seats=form.seats.data,
            wheelchair_accessible=form.wheelchair_accessible.data,
        )
    except ValidationFailed as exc:
        db.session.rollback()
        apply_errors(form, exc)
        return _fleet_page(vehicle_form=form, status=422)
    db.session.commit()
    flash(_("%(label)s is added to your vehicles.", label=vehicle.label), "success")
    return redirect(url_for("transport.fleet_page"))


@bp.post("/dispatch/vehicles/<int:vehicle_id>/deactivate")
@login_required
def deactivate_vehicle(vehicle_id: int):
    vendor_ids()
    vehicle = policies.get_visible_or_404(current_user, Vehicle, vehicle_id)
    fleet.deactivate_vehicle(vehicle)
    db.session.commit()
    flash(_("%(label)s is no longer offered on the board.", label=vehicle.label), "success")
    return redirect(url_for("transport.fleet_page"))
