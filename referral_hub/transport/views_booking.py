"""Ride pages for the people on a referral: book a leg, the ride page and its actions, the
referral page's rides section and resolving a follow-up.

Every lookup goes through `policies`, so a foreign referral, ride or follow-up answers 404.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask_babel import format_datetime, format_time
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from referral_hub import policies
from referral_hub.accounts.models import User
from referral_hub.core.errors import Conflict, NotFound, ValidationFailed
from referral_hub.extensions import db
from referral_hub.referrals.models import Referral
from referral_hub.referrals.views_actions import ACTOR_LABELS, city_to_utc
from referral_hub.referrals.views_common import referral_view
from referral_hub.transport import booking as booking_ops
from referral_hub.transport import operations as ops
from referral_hub.transport.forms import WHEN_TITLES, BookForm, ride_action_form_class
from referral_hub.transport.lifecycle import RIDE_BY_ACTION, RIDE_REASON_TITLES, RideTransition
from referral_hub.transport.models import (
    NOT_STARTED,
    FollowUp,
    Leg,
    Ride,
    RideEvent,
    RideMode,
    RideStatus,
)
from referral_hub.transport.planning import PickupPlan
from referral_hub.transport.schemas import available_actions, ride_view
from referral_hub.transport.views import bp
from referral_hub.web.forms import apply_errors, options

UNFINISHED = NOT_STARTED | {RideStatus.PICKED_UP}
# The dispatch board assigns drivers; the ride page offers every other action.
BOARD_ONLY = frozenset({"assign"})
EVENT_TITLES = {
    "book": _l("Ride booked"),
    "link_issued": _l("Driver link sent"),
}
FOLLOW_UP_TITLES = {"ride_no_show": _l("Client was not at the ride's pickup")}


@bp.app_context_processor
def ride_helpers() -> dict[str, Any]:
    """Titles the ride templates and the referral page's rides section need."""
    return {
        "ride_reason_title": lambda code: RIDE_REASON_TITLES.get(code, code),
        "follow_up_title": lambda code: FOLLOW_UP_TITLES.get(code, code),
    }


def _user() -> User:
    return current_user._get_current_object()


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _float(value: Any) -> float | None:
    try:
        return float(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def _bookable(referral: Referral, leg: Leg, rides: list[Ride]) -> bool:
    """The referral is in a state the leg may be booked in, and the leg has no open ride."""
    states = booking_ops.OUTBOUND_STATES if leg is Leg.OUTBOUND else booking_ops.RETURN_STATES
    return referral.status in states and not any(
        r.leg is leg and r.status in UNFINISHED for r in rides
    )


def _rides_of(user: User, referral: Referral) -> list[Ride]:
    return list(
        db.session.scalars(
            policies.visible(user, Ride)
            .where(Ride.referral_id == referral.id)
            .options(selectinload(Ride.driver), selectinload(Ride.vehicle))
            .order_by(Ride.id)
        )
    )


def referral_rides(user: User, referral: Referral) -> dict[str, Any]:
    """The referral page's rides section: a fixed number of queries whatever the rides."""
    rides = _rides_of(user, referral)
    on_referral = bool(policies.referral_sides(user, referral))
    follow_ups = db.session.scalars(
        policies.visible(user, FollowUp)
        .where(FollowUp.referral_id == referral.id, FollowUp.resolved_at.is_(None))
        .order_by(FollowUp.id)
    ).all()
    return {
        "rides": [ops.ride_summary(ride) for ride in rides],
        "book_outbound": on_referral and _bookable(referral, Leg.OUTBOUND, rides),
        "book_return": on_referral and _bookable(referral, Leg.RETURN, rides),
        "follow_ups": list(follow_ups),
    }


# --- booking ---------------------------------------------------------------------------------


def _when_choices(referral: Referral, leg: Leg) -> list:
    """When the leg is for; the appointment only when there is one (and its time when the
    viewer may see it: a sensitive program keeps it from the referring side)."""
    titles = dict(WHEN_TITLES[leg])
    if referral.appointment_at is None:
        titles.pop("appointment")
    else:
        shown = referral_view(current_user, referral)["appointment_at"]
        if shown is not None:
            moment = format_datetime(shown, "short")
            titles["appointment"] = (
                _("In time for the appointment (%(time)s)", time=moment)
                if leg is Leg.OUTBOUND
                else _("When the appointment starts (%(time)s)", time=moment)
            )
    return options(titles.items())


def _vendor_choices() -> tuple[list, str | None]:
    vendors = booking_ops.transport_vendors()
    if len(vendors) == 1:
        return options([(str(vendors[0].id), vendors[0].name)]), str(vendors[0].id)
    pairs = [("", _("Choose…") if vendors else _("No transport vendor is available"))]
    return options([*pairs, *((str(v.id), v.name) for v in vendors)]), None


def _book_form(referral: Referral, leg: Leg, rides: list[Ride], posted: bool) -> BookForm:
    form = BookForm() if posted else BookForm(formdata=None, leg=leg.value)
    form.when.choices = _when_choices(referral, leg)
    form.vendor_org_id.choices, only = _vendor_choices()
    if leg is Leg.RETURN:
        form.place.label.text = _("Destination (where the person goes afterwards)")
    if not posted:
        form.vendor_org_id.data = only
        if leg is Leg.OUTBOUND:
            form.when.data = "appointment" if referral.appointment_at else "at"
        else:
            form.when.data = "will_call"
            outbound = [r for r in rides if r.leg is Leg.OUTBOUND]
            if outbound and outbound[-1].pickup_label:
                form.place.data = outbound[-1].pickup_label
    return form


def _booking(form: BookForm, leg: Leg) -> booking_ops.Booking:
    when = form.when.data or ""
    return booking_ops.Booking(
        leg=leg,
        mode=RideMode(form.mode.data),
        place=(form.place.data or "").strip(),
        lat=_float(form.lat.data),
        lon=_float(form.lon.data),
        when=when,
        at=city_to_utc(form.at.data) if when == "at" else None,
        vendor_org_id=_int(form.vendor_org_id.data),
        wheelchair=form.wheelchair.data,
        service_animal=form.service_animal.data,
        companions=form.companions.data or 0,
        driver_notes=form.driver_notes.data,
        booking_reference=form.booking_reference.data,
    )


def _booked_message(plan: PickupPlan | None) -> str:
    """The plan in city time, saying whether the times were routed or estimated."""
    if plan is None:
        return _("Ride booked. The pickup will be planned when the client calls.")
    times = {
        "start": format_datetime(plan.window_start, "short"),
        "end": format_time(plan.window_end, "short"),
        "earliest": format_time(plan.arrival_earliest, "short"),
        "latest": format_time(plan.arrival_latest, "short"),
    }
    if plan.estimated:
        return _(
            "Ride booked. Pickup between %(start)s and %(end)s (estimated). "
            "Arrival between %(earliest)s and %(latest)s (estimated).",
            **times,
        )
    return _(
        "Ride booked. Pickup between %(start)s and %(end)s (routed). "
        "Arrival between %(earliest)s and %(latest)s (routed).",
        **times,
    )


def _book_page(referral: Referral, form: BookForm, leg: Leg, status: int = 200):
    return render_template(
        "transport/book.html",
        referral=referral,
        view=referral_view(current_user, referral),
        form=form,
        leg=leg,
    ), status


@bp.route("/referrals/<int:referral_id>/rides/new", methods=["GET", "POST"])
@login_required
def book(referral_id: int):
    found = policies.get_visible_or_404(current_user, Referral, referral_id)
    policies.require(bool(policies.referral_sides(current_user, found)))
    posted = request.method == "POST"
    try:
        leg = Leg((request.form if posted else request.args).get("leg") or Leg.OUTBOUND.value)
    except ValueError:
        raise NotFound(_("Not found.")) from None
    rides = [] if posted else _rides_of(current_user, found)
    form = _book_form(found, leg, rides, posted)
    if not posted:
        if not _bookable(found, leg, rides):
            flash(_("This trip cannot be booked now."), "info")
            return redirect(url_for("referrals.referral", referral_id=found.id))
        return _book_page(found, form, leg)
    if not form.validate():
        return _book_page(found, form, leg, 422)
    try:
        result = booking_ops.book_ride(found, _user(), _booking(form, leg))
    except ValidationFailed as exc:
        db.session.rollback()
        if "appointment_at" in exc.fields:  # the planner names the appointment: our "when"
            exc.fields["when"] = exc.fields.pop("appointment_at")
        apply_errors(form, exc)
        return _book_page(found, form, leg, 422)
    except Conflict as exc:
        db.session.rollback()
        flash(exc.message, "error")
        return redirect(url_for("referrals.referral", referral_id=found.id))
    ride_id = result.ride.id
    db.session.commit()
    flash(_booked_message(result.plan), "success")
    for warning in result.warnings:
        flash(str(warning), "info")
    return redirect(url_for("transport.ride", ride_id=ride_id))


# --- the ride page and its actions -----------------------------------------------------------


@dataclass
class ActionForm:
    transition: RideTransition
    form: FlaskForm


@dataclass
class Entry:
    at: datetime
    title: str
    who: str
    change: str | None
    reason: str | None


def _action_forms(ride: Ride, kept: dict[str, FlaskForm]) -> list[ActionForm]:
    found = []
    for transition in available_actions(current_user, ride):
        if transition.action in BOARD_ONLY:
            continue
        form = kept.get(transition.action)
        if form is None:
            form = ride_action_form_class(transition.action)(formdata=None)
        form.expected_version.data = ride.version  # a re-render answers the current state
        found.append(ActionForm(transition, form))
    return found


def _events(ride: Ride, hide_staff: bool) -> list[Entry]:
    """The ride's log, oldest first. A dispatcher kept from a sensitive referral sees the
    people on it as "staff on the referral", never their names."""
    events = db.session.scalars(
        select(RideEvent)
        .where(RideEvent.ride_id == ride.id)
        .options(selectinload(RideEvent.actor_user))
        .order_by(RideEvent.id)
    ).all()
    mine = current_user.organization_ids
    entries = []
    for event in events:
        transition = RIDE_BY_ACTION.get(event.action)
        title = transition.label if transition else EVENT_TITLES.get(event.action, event.action)
        user = event.actor_user
        if user is not None:
            colleague = bool(user.organization_ids & mine)
            who = _("Staff on the referral") if hide_staff and not colleague else user.name
        else:
            who = ACTOR_LABELS.get(event.actor_label or "", event.actor_label or "")
        change = None
        if event.from_status and event.to_status and event.from_status != event.to_status:
            change = f"{event.from_status.title} → {event.to_status.title}"
        reason = event.reason_code
        entries.append(
            Entry(
                at=event.created_at,
                title=str(title),
                who=str(who),
                change=change,
                reason=str(RIDE_REASON_TITLES.get(reason, reason)) if reason else None,
            )
        )
    return entries


def _ride_page(ride: Ride, *, kept: dict[str, FlaskForm] | None = None, status: int = 200):
    view = ride_view(current_user, ride)
    return render_template(
        "transport/ride.html",
        ride=ride,
        view=view,
        actions=_action_forms(ride, kept or {}),
        events=_events(ride, hide_staff=view["program_name"] is None),
    ), status


@bp.get("/rides/<int:ride_id>")
@login_required
def ride(ride_id: int):
    return _ride_page(policies.get_visible_or_404(current_user, Ride, ride_id))


@bp.post("/rides/<int:ride_id>/actions/<action>")
@login_required
def ride_act(ride_id: int, action: str):
    found = policies.get_visible_or_404(current_user, Ride, ride_id)
    transition = RIDE_BY_ACTION.get(action)
    if transition is None or action in BOARD_ONLY:
        raise NotFound(_("Not found."))
    form = ride_action_form_class(action)()
    if not form.validate():
        return _ride_page(found, kept={action: form}, status=422)
    values = {"reason_code": form.reason_code.data} if "reason_code" in form else {}
    try:
        ops.perform_ride(
            found,
            action,
            ops.user_actor(_user(), found),
            expected_version=form.expected_version.data,
            **values,
        )
    except Conflict as exc:
        db.session.rollback()
        flash(exc.message, "error")
        return redirect(url_for("transport.ride", ride_id=found.id))
    except ValidationFailed as exc:
        db.session.rollback()
        apply_errors(form, exc)
        return _ride_page(found, kept={action: form}, status=422)
    db.session.commit()
    flash(_("Saved: %(action)s.", action=transition.label), "success")
    return redirect(url_for("transport.ride", ride_id=found.id))


# --- follow-ups ------------------------------------------------------------------------------


@bp.post("/follow-ups/<int:follow_up_id>/resolve")
@login_required
def resolve_follow_up(follow_up_id: int):
    found = policies.get_visible_or_404(current_user, FollowUp, follow_up_id)
    referral_id = found.referral_id
    try:
        ops.resolve_follow_up(found, _user())
    except Conflict as exc:
        db.session.rollback()
        flash(exc.message, "info")
    else:
        db.session.commit()
        flash(_("Marked as followed up."), "success")
    return redirect(url_for("referrals.referral", referral_id=referral_id))
