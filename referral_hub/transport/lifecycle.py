"""The ride lifecycle: one declared table that operations, the API, the dispatch board, the
driver link and tests all read (DESIGN.md section 6).

requested -> scheduled (driver and vehicle assigned) -> en_route_to_pickup -> picked_up
-> dropped_off, or cancelled / no_show. Rides that nobody dispatches (responder escort,
rideshare, transit, walk) are scheduled when booked, and the person travelling with the
client (the companion side) moves them along.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from flask_babel import lazy_gettext as _l

from referral_hub.transport.models import NOT_STARTED, RideStatus

R = RideStatus


class RideSide(enum.StrEnum):
    BOOKER = "booker"  # someone on the referral: referrer, provider, coordinator
    COMPANION = "companion"  # the booker, on a ride nobody dispatches (escort, walk, ...)
    DISPATCH = "dispatch"  # the transport vendor's dispatcher
    DRIVER = "driver"  # through the driver link
    CLIENT = "client"  # through the client's link
    SYSTEM = "system"  # effects of the referral's lifecycle, the worker


@dataclass(frozen=True)
class RideTransition:
    action: str
    sources: frozenset[RideStatus]
    target: RideStatus | None  # None: the state stays (re-assignment, at pickup, ready)
    sides: frozenset[RideSide]
    label: object
    requires: tuple[str, ...] = ()
    reasons: tuple[str, ...] = ()
    button: str = "secondary"


CANCEL_REASONS = (
    "client_declined",
    "no_longer_needed",
    "rebooked",
    "vehicle_unavailable",
    "referral_closed",
    "other",
)
RIDE_REASON_TITLES = {
    "client_declined": _l("Client declined the ride"),
    "no_longer_needed": _l("No longer needed"),
    "rebooked": _l("Booked again"),
    "vehicle_unavailable": _l("No vehicle available"),
    "referral_closed": _l("Referral closed"),
    "other": _l("Other"),
}

BOOKER, COMPANION, DISPATCH = RideSide.BOOKER, RideSide.COMPANION, RideSide.DISPATCH
DRIVER, CLIENT, SYSTEM = RideSide.DRIVER, RideSide.CLIENT, RideSide.SYSTEM

RIDE_TRANSITIONS: tuple[RideTransition, ...] = (
    RideTransition(
        "assign",
        frozenset({R.REQUESTED, R.SCHEDULED}),
        R.SCHEDULED,
        frozenset({DISPATCH}),
        _l("Assign driver"),
        requires=("driver_id",),
        button="primary",
    ),
    RideTransition(
        "ready",
        frozenset({R.REQUESTED, R.SCHEDULED}),
        None,
        frozenset({BOOKER, DISPATCH, CLIENT}),
        _l("Client is ready to be picked up"),
        button="primary",
    ),
    RideTransition(
        "depart",
        frozenset({R.SCHEDULED}),
        R.EN_ROUTE_TO_PICKUP,
        frozenset({DRIVER, DISPATCH, COMPANION}),
        _l("On my way"),
        button="primary",
    ),
    RideTransition(
        "at_pickup",
        frozenset({R.EN_ROUTE_TO_PICKUP}),
        None,
        frozenset({DRIVER, DISPATCH}),
        _l("Arrived at pickup"),
        button="primary",
    ),
    RideTransition(
        "pick_up",
        frozenset({R.SCHEDULED, R.EN_ROUTE_TO_PICKUP}),
        R.PICKED_UP,
        frozenset({DRIVER, DISPATCH, COMPANION}),
        _l("Picked up"),
        button="primary",
    ),
    RideTransition(
        "drop_off",
        frozenset({R.PICKED_UP}),
        R.DROPPED_OFF,
        frozenset({DRIVER, DISPATCH, COMPANION}),
        _l("Dropped off"),
        button="primary",
    ),
    RideTransition(
        "no_show",
        frozenset({R.EN_ROUTE_TO_PICKUP}),
        R.NO_SHOW,
        frozenset({DRIVER, DISPATCH}),
        _l("Client not at pickup"),
        button="danger",
    ),
    RideTransition(
        "cancel",
        NOT_STARTED,
        R.CANCELLED,
        frozenset({BOOKER, DISPATCH, CLIENT, SYSTEM}),
        _l("Cancel ride"),
        requires=("reason_code",),
        reasons=CANCEL_REASONS,
        button="danger",
    ),
)

RIDE_BY_ACTION: dict[str, RideTransition] = {t.action: t for t in RIDE_TRANSITIONS}

# The driver link's buttons, in the order a ride happens.
DRIVER_ACTIONS = ("depart", "at_pickup", "pick_up", "drop_off", "no_show")


def ride_available(status: RideStatus, sides: set[RideSide]) -> list[RideTransition]:
    """Actions these sides may take from this state, in declared order."""
    return [t for t in RIDE_TRANSITIONS if status in t.sources and t.sides & sides]
