"""The declared lifecycle table, exhaustively: every state against every action."""

from datetime import timedelta

import pytest

from referral_hub.core.db import utcnow
from referral_hub.core.errors import Conflict, Forbidden, ValidationFailed
from referral_hub.extensions import db
from referral_hub.referrals import operations as ops
from referral_hub.referrals.lifecycle import BY_ACTION, FHIR_STATUS, TRANSITIONS, Side, available
from referral_hub.referrals.models import TERMINAL, ReferralEvent, Status

from .conftest import load

ALL_SIDES = frozenset(Side)
FIELDS = {
    "reason_code": None,  # filled per transition from its declared reasons
    "appointment_at": utcnow() + timedelta(days=1),
    "handed_off_to": "Kou Vang",
    "outcome": "enrolled",
    "reason_note": "duplicate of another record",
}


def fields_for(transition):
    values = {name: FIELDS[name] for name in transition.requires}
    if "reason_code" in values:
        values["reason_code"] = transition.reasons[0]
    if "outcome" in values:
        values["outcome"] = transition.reasons[0]
    return values


def test_every_state_has_a_fhir_mapping():
    assert set(FHIR_STATUS) == set(Status)


def test_terminal_states_have_no_way_out():
    for status in TERMINAL:
        assert available(status, set(ALL_SIDES)) == []


def test_every_open_state_can_be_left():
    for status in set(Status) - TERMINAL:
        assert available(status, set(ALL_SIDES)), status


def test_reasons_are_declared_where_required():
    for transition in TRANSITIONS:
        if "reason_code" in transition.requires or "outcome" in transition.requires:
            assert transition.reasons, transition.action


@pytest.mark.parametrize("status", list(Status))
@pytest.mark.parametrize("transition", TRANSITIONS, ids=lambda t: t.action)
def test_transition_allowed_exactly_from_declared_states(app, world, send, status, transition):
    referral_id = send()
    with app.test_request_context():
        referral = load(referral_id)
        referral.status = status
        referral.accepted_at = utcnow() if status != Status.SENT else None
        db.session.commit()
    with app.test_request_context():
        referral = load(referral_id)
        events_before = db.session.query(ReferralEvent).filter_by(referral_id=referral_id).count()
        actor = ops.Actor(ALL_SIDES, label="test")
        if status in transition.sources:
            ops.perform(referral, transition.action, actor, **fields_for(transition))
            expected = transition.target
            if transition.action == "resume":
                expected = Status.ACCEPTED
            assert referral.status == (expected or status)
            events = db.session.query(ReferralEvent).filter_by(referral_id=referral_id).count()
            assert events == events_before + 1
        else:
            with pytest.raises(Conflict) as exc:
                ops.perform(referral, transition.action, actor, **fields_for(transition))
            assert exc.value.extra["status"] == status.value
            assert load(referral_id).status == status


@pytest.mark.parametrize("action", ["decline", "hold", "cancel"])
def test_reasons_are_required(app, world, send, action):
    referral_id = send()
    with app.test_request_context():
        with pytest.raises(ValidationFailed) as exc:
            ops.perform(load(referral_id), action, ops.Actor(ALL_SIDES))
        assert set(exc.value.fields) == {"reason_code"}
        with pytest.raises(ValidationFailed):
            ops.perform(
                load(referral_id), action, ops.Actor(ALL_SIDES), reason_code="because I said so"
            )


def test_sides_are_enforced(app, world, send):
    referral_id = send()
    with app.test_request_context():
        with pytest.raises(Forbidden):
            ops.perform(load(referral_id), "accept", ops.Actor(frozenset({Side.REFERRER})))
        with pytest.raises(Forbidden):
            ops.perform(
                load(referral_id),
                "cancel",
                ops.Actor(frozenset({Side.PROVIDER})),
                reason_code="other",
            )


def test_stale_version_is_a_conflict(app, world, send):
    referral_id = send()
    with app.test_request_context():
        referral = load(referral_id)
        with pytest.raises(Conflict):
            ops.perform(
                referral, "accept", ops.Actor(ALL_SIDES), expected_version=referral.version - 1
            )


def test_unknown_action(app, world, send):
    referral_id = send()
    with app.test_request_context(), pytest.raises(ValidationFailed):
        ops.perform(load(referral_id), "teleport", ops.Actor(ALL_SIDES))


def test_table_has_the_design_actions():
    assert {
        "send",
        "accept",
        "decline",
        "schedule",
        "hold",
        "resume",
        "depart",
        "arrive",
        "hand_off",
        "complete",
        "no_show",
        "cancel",
        "expire",
        "enter_in_error",
    } == set(BY_ACTION)
