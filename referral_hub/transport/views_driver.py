"""The tokenized page drivers without accounts use: the ride at a glance and one big button
per step they may take now (DESIGN.md sections 6 and 8).

The token in the URL is the only credential: an unknown, revoked or expired token gets the
same answer, GET changes nothing, and responses are kept out of caches, referrers and search
engines. Rate limited per IP.
"""

from __future__ import annotations

from flask import current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from referral_hub.core.db import utcnow
from referral_hub.core.errors import Conflict, NotFound, ValidationFailed
from referral_hub.extensions import db, limiter
from referral_hub.transport import operations as ops
from referral_hub.transport.lifecycle import DRIVER_ACTIONS, RideSide, ride_available
from referral_hub.transport.models import DriverLink
from referral_hub.transport.views import bp
from referral_hub.transport.views_dispatch import ride_places

DRIVER_ENDPOINTS = frozenset({"transport.driver_page", "transport.driver_act"})


def _rate_limit() -> str:
    return current_app.config.get("DRIVER_LINK_RATE_LIMIT", "60 per minute")


@bp.after_request
def private_headers(response):
    """The token is a credential: no referrer carries it, no cache or index keeps the page."""
    if request.endpoint in DRIVER_ENDPOINTS:
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["Cache-Control"] = "no-store"
        response.headers["X-Robots-Tag"] = "noindex, nofollow"
    return response


def _gone():
    return render_template("transport/driver_gone.html"), 404


def _buttons(link: DriverLink) -> list:
    ride = link.ride
    arrived = ride.at_pickup_at is not None
    available = [
        t
        for t in ride_available(ride.status, {RideSide.DRIVER})
        if t.action in DRIVER_ACTIONS
        # Arriving is recorded once, and "not at pickup" only makes sense after it.
        and not (t.action == "at_pickup" and arrived)
        and not (t.action == "no_show" and not arrived)
    ]
    return sorted(available, key=lambda t: DRIVER_ACTIONS.index(t.action))


def _page(link: DriverLink, token: str, *, error: str | None = None, status: int = 200):
    ride = link.ride
    pickup, dropoff = ride_places(ride)
    return render_template(
        "transport/driver.html",
        ride=ride,
        token=token,
        pickup=pickup,
        dropoff=dropoff,
        client_name=ride.referral.client.display_name,
        buttons=_buttons(link),
        error=error,
    ), status


@bp.get("/d/<token>")
@limiter.limit(_rate_limit)
def driver_page(token: str):
    link = ops.link_for_token(token)
    if link is None:
        return _gone()
    return _page(link, token)


@bp.post("/d/<token>/<action>")
@limiter.limit(_rate_limit)
def driver_act(token: str, action: str):
    link = ops.link_for_token(token)
    if link is None:
        return _gone()
    if action not in DRIVER_ACTIONS:
        raise NotFound(_("Not found."))
    now = utcnow()
    try:
        ops.perform_ride(link.ride, action, ops.RideActor.driver(), now=now)
    except Conflict as exc:
        db.session.rollback()
        flash(exc.message, "error")
        return redirect(url_for("transport.driver_page", token=token), 303)
    except ValidationFailed as exc:
        db.session.rollback()
        message = " ".join(m for messages in exc.fields.values() for m in messages)
        return _page(link, token, error=message or exc.message, status=422)
    link.last_used_at = now
    db.session.commit()
    return redirect(url_for("transport.driver_page", token=token), 303)
