"""The referral lifecycle: one declared table that operations, API, pages, buttons and tests
all read. Each state also maps to FHIR R4 Task.status / businessStatus (SDOH Clinical Care
IG, TaskForReferralManagement).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from flask_babel import lazy_gettext as _l

from referral_hub.referrals.models import OPEN, Status

S = Status


class Side(enum.StrEnum):
    """How an actor relates to a referral; who may do what is declared per side."""

    REFERRER = "referrer"  # a member of the referring organization
    PROVIDER = "provider"  # staff of the program's organization
    COORDINATOR = "coordinator"  # city-wide coordination (and administrators)
    TRANSPORT = "transport"  # the ride (driver link, dispatcher)
    CLIENT = "client"  # the person, through their link
    SYSTEM = "system"  # the worker: expiry, escalation


@dataclass(frozen=True)
class Transition:
    action: str
    sources: frozenset[Status]
    target: Status | None  # None: the state stays (scheduling) or is computed (resume)
    sides: frozenset[Side]
    label: object
    requires: tuple[str, ...] = ()
    reasons: tuple[str, ...] = ()  # allowed reason_code values, when a reason is required
    button: str = "secondary"  # how pages render it: primary | secondary | danger


DECLINE_REASONS = (
    "no_capacity",
    "not_eligible",
    "unable_to_contact",
    "client_declined",
    "duplicate",
    "other",
)
HOLD_REASONS = ("client_asked_to_wait", "program_closed", "awaiting_documents", "other")
CANCEL_REASONS = (
    "client_declined",
    "client_unreachable",
    "referred_elsewhere",
    "consent_revoked",
    "expired",
    "entered_by_mistake",
    "other",
)
OUTCOMES = (
    "enrolled",
    "services_delivered",
    "housed",
    "employed",
    "referred_elsewhere",
    "not_eligible_after_assessment",
    "client_declined_service",
    "other",
)

REASON_TITLES = {
    "no_capacity": _l("No capacity"),
    "not_eligible": _l("Not eligible"),
    "unable_to_contact": _l("Unable to contact"),
    "client_declined": _l("Client declined"),
    "duplicate": _l("Duplicate referral"),
    "other": _l("Other"),
    "client_asked_to_wait": _l("Client asked to wait"),
    "program_closed": _l("Program temporarily closed"),
    "awaiting_documents": _l("Waiting for documents"),
    "client_unreachable": _l("Client unreachable"),
    "referred_elsewhere": _l("Referred elsewhere"),
    "consent_revoked": _l("Consent revoked"),
    "expired": _l("Not answered in time"),
    "entered_by_mistake": _l("Entered by mistake"),
    "enrolled": _l("Enrolled"),
    "services_delivered": _l("Services delivered"),
    "housed": _l("Housed"),
    "employed": _l("Employed"),
    "not_eligible_after_assessment": _l("Not eligible after assessment"),
    "client_declined_service": _l("Client declined service"),
}

REFERRER, PROVIDER, COORDINATOR = Side.REFERRER, Side.PROVIDER, Side.COORDINATOR
TRANSPORT, CLIENT, SYSTEM = Side.TRANSPORT, Side.CLIENT, Side.SYSTEM

TRANSITIONS: tuple[Transition, ...] = (
    Transition(
        "send",
        frozenset({S.DRAFT}),
        S.SENT,
        frozenset({REFERRER, COORDINATOR}),
        _l("Send referral"),
        button="primary",
    ),
    Transition(
        "accept",
        frozenset({S.SENT}),
        S.ACCEPTED,
        frozenset({PROVIDER}),
        _l("Accept"),
        button="primary",
    ),
    Transition(
        "decline",
        frozenset({S.SENT, S.ON_HOLD}),
        S.DECLINED,
        frozenset({PROVIDER}),
        _l("Decline"),
        requires=("reason_code",),
        reasons=DECLINE_REASONS,
        button="danger",
    ),
    Transition(
        "schedule",
        frozenset({S.ACCEPTED}),
        None,
        frozenset({PROVIDER}),
        _l("Set appointment"),
        requires=("appointment_at",),
    ),
    Transition(
        "hold",
        frozenset({S.SENT, S.ACCEPTED}),
        S.ON_HOLD,
        frozenset({PROVIDER, COORDINATOR}),
        _l("Put on hold"),
        requires=("reason_code",),
        reasons=HOLD_REASONS,
    ),
    Transition(
        "resume", frozenset({S.ON_HOLD}), None, frozenset({PROVIDER, COORDINATOR}), _l("Resume")
    ),
    Transition(
        "depart",
        frozenset({S.ACCEPTED}),
        S.EN_ROUTE,
        frozenset({REFERRER, TRANSPORT, PROVIDER}),
        _l("Client is on the way"),
    ),
    Transition(
        "arrive",
        frozenset({S.ACCEPTED, S.EN_ROUTE}),
        S.ARRIVED,
        frozenset({TRANSPORT, PROVIDER, REFERRER}),
        _l("Client arrived"),
    ),
    Transition(
        "hand_off",
        frozenset({S.ACCEPTED, S.EN_ROUTE, S.ARRIVED}),
        S.HANDED_OFF,
        frozenset({PROVIDER}),
        _l("Confirm handoff"),
        requires=("handed_off_to",),
        button="primary",
    ),
    Transition(
        "complete",
        frozenset({S.HANDED_OFF}),
        S.COMPLETED,
        frozenset({PROVIDER}),
        _l("Record outcome"),
        requires=("outcome",),
        reasons=OUTCOMES,
        button="primary",
    ),
    Transition(
        "no_show",
        frozenset({S.ACCEPTED, S.EN_ROUTE}),
        S.NO_SHOW,
        frozenset({PROVIDER, TRANSPORT}),
        _l("Mark no-show"),
        button="danger",
    ),
    Transition(
        "cancel",
        frozenset({S.DRAFT, S.SENT, S.ACCEPTED, S.ON_HOLD, S.EN_ROUTE, S.ARRIVED}),
        S.CANCELLED,
        frozenset({REFERRER, COORDINATOR, CLIENT}),
        _l("Cancel referral"),
        requires=("reason_code",),
        reasons=CANCEL_REASONS,
        button="danger",
    ),
    Transition("expire", frozenset({S.SENT}), S.CANCELLED, frozenset({SYSTEM}), _l("Expire")),
    Transition(
        "enter_in_error",
        frozenset(OPEN),
        S.ENTERED_IN_ERROR,
        frozenset({COORDINATOR}),
        _l("Mark entered in error"),
        requires=("reason_note",),
        button="danger",
    ),
)

BY_ACTION: dict[str, Transition] = {t.action: t for t in TRANSITIONS}


def available(status: Status, sides: set[Side]) -> list[Transition]:
    """Actions these sides may take from this state, in declared order (the buttons)."""
    return [t for t in TRANSITIONS if status in t.sources and t.sides & sides]


# FHIR R4 Task.status and businessStatus per state (DESIGN.md section 4).
FHIR_STATUS: dict[Status, tuple[str, str | None]] = {
    S.DRAFT: ("draft", None),
    S.SENT: ("requested", None),
    S.ACCEPTED: ("accepted", None),  # businessStatus "scheduled" once an appointment is set
    S.DECLINED: ("rejected", "reason"),
    S.EN_ROUTE: ("accepted", "en-route"),
    S.ARRIVED: ("accepted", "arrived"),
    S.HANDED_OFF: ("in-progress", "handed-off"),
    S.ON_HOLD: ("on-hold", "reason"),
    S.COMPLETED: ("completed", "outcome"),
    S.NO_SHOW: ("failed", "no-show"),
    S.CANCELLED: ("cancelled", "reason"),
    S.ENTERED_IN_ERROR: ("entered-in-error", None),
}
