"""Referral rules: consent, slots, deadlines, handoff codes, re-routing, escalation."""

from datetime import timedelta

import pytest
from sqlalchemy import select

from referral_hub.accounts.models import User
from referral_hub.core.db import utcnow
from referral_hub.core.errors import Conflict, Forbidden, ValidationFailed
from referral_hub.directory import operations as directory
from referral_hub.directory.models import Program
from referral_hub.extensions import db
from referral_hub.referrals import operations as ops
from referral_hub.referrals.models import Client, Consent, ReferralEvent, Status

from .conftest import load, provider, referrer


def test_sending_sets_deadline_code_and_holds_a_slot(app, world, send):
    referral_id = send()
    with app.test_request_context():
        referral = load(referral_id)
        assert referral.status == Status.SENT
        assert referral.response_due_at - referral.sent_at == timedelta(hours=4)
        assert referral.handoff_code and len(referral.handoff_code) == 6
        assert referral.holds_slot
        assert db.session.get(Program, world.program.id).open_slots == 1


def test_sending_without_consent_is_refused(app, world):
    with app.test_request_context():
        client = db.session.get(Client, world.client.id)
        with pytest.raises(ValidationFailed) as exc:
            ops.send_referral(
                client=client,
                program=db.session.get(Program, world.program.id),
                user=db.session.get(User, world.responder.id),
                organization=client.organization,
                consent=None,
            )
        assert "consent" in exc.value.fields


def test_consent_for_another_program_or_revoked_does_not_count(app, world):
    with app.test_request_context():
        client = db.session.get(Client, world.client.id)
        other = directory.create_program(client.organization, name="Other", categories=["housing"])
        consent = db.session.get(Consent, world.consent.id)
        assert not ops.consent_is_valid(consent, client, other)
        consent.revoked_at = utcnow()
        assert not ops.consent_is_valid(consent, client, db.session.get(Program, world.program.id))


def test_emergency_override_is_for_coordinators_with_a_reason(app, world):
    with app.test_request_context():
        client = db.session.get(Client, world.client.id)
        program = db.session.get(Program, world.program.id)
        with pytest.raises(Forbidden):
            ops.record_consent(
                client,
                program,
                db.session.get(User, world.responder.id),
                method="emergency_override",
                override_reason="unconscious",
            )
        coordinator = db.session.get(User, world.coordinator.id)
        with pytest.raises(ValidationFailed):
            ops.record_consent(client, program, coordinator, method="emergency_override")
        consent = ops.record_consent(
            client,
            program,
            coordinator,
            method="emergency_override",
            override_reason="person unconscious, imminent danger",
        )
        assert consent.override_reason


def test_revoking_consent_cancels_open_referrals(app, world, send):
    referral_id = send()
    with app.test_request_context():
        cancelled = ops.revoke_consent(
            db.session.get(Consent, world.consent.id), db.session.get(User, world.responder.id)
        )
        assert [r.id for r in cancelled] == [referral_id]
        referral = load(referral_id)
        assert referral.status == Status.CANCELLED
        assert referral.reason_code == "consent_revoked"
        assert db.session.get(Program, world.program.id).open_slots == 2  # released


def test_decline_releases_and_handoff_uses_the_slot(app, world, send):
    first, second = send(), send()
    with app.test_request_context():
        assert db.session.get(Program, world.program.id).open_slots == 0
        ops.perform(load(first), "decline", provider(world), reason_code="no_capacity")
        assert db.session.get(Program, world.program.id).open_slots == 1
        ops.perform(load(second), "accept", provider(world))
        ops.perform(load(second), "hand_off", provider(world), handed_off_to="Kou Vang")
        ops.perform(load(second), "complete", provider(world), outcome="enrolled")
        assert db.session.get(Program, world.program.id).open_slots == 1  # used, not released


def test_no_slot_left_still_sends_without_a_hold(app, world, send):
    send(), send()
    third = send()
    with app.test_request_context():
        assert load(third).status == Status.SENT and not load(third).holds_slot


def test_handoff_code_must_match_when_given(app, world, send):
    referral_id = send()
    with app.test_request_context():
        referral = load(referral_id)
        ops.perform(referral, "accept", provider(world))
        with pytest.raises(ValidationFailed) as exc:
            ops.perform(
                referral,
                "hand_off",
                provider(world),
                handed_off_to="Kou",
                code="000000" if referral.handoff_code != "000000" else "111111",
            )
        assert "code" in exc.value.fields
        ops.perform(
            referral, "hand_off", provider(world), handed_off_to="Kou", code=referral.handoff_code
        )
        assert referral.status == Status.HANDED_OFF and referral.handed_off_to == "Kou"


def test_appointment_in_the_past_is_refused(app, world, send):
    referral_id = send()
    with app.test_request_context(), pytest.raises(ValidationFailed) as exc:
        ops.perform(
            load(referral_id),
            "accept",
            provider(world),
            appointment_at=utcnow() - timedelta(days=1),
        )
    assert "appointment_at" in exc.value.fields


def test_reroute_links_the_two_referrals(app, world, send):
    referral_id = send()
    with app.test_request_context():
        ops.perform(load(referral_id), "decline", provider(world), reason_code="no_capacity")
        client = db.session.get(Client, world.client.id)
        other = directory.create_program(
            db.session.get(Program, world.program.id).organization,
            name="Next Door Housing",
            categories=["housing"],
        )
        responder = db.session.get(User, world.responder.id)
        consent = ops.record_consent(client, other, responder, method="verbal")
        new = ops.reroute(load(referral_id), other, responder, consent=consent)
        assert new.rerouted_from_id == referral_id and new.status == Status.SENT
        assert new.answers == load(referral_id).answers
        actions = [e.action for e in load(referral_id).events]
        assert actions[-1] == "reroute"
        with pytest.raises(Conflict):
            ops.reroute(new, other, responder, consent=consent)  # not declined
        with pytest.raises(Conflict) as exc:
            ops.reroute(load(referral_id), other, responder, consent=consent)  # twice
        assert exc.value.extra["rerouted_to"] == new.id


def test_overdue_referrals_escalate_once_and_expire_later(app, world, send):
    referral_id = send()
    with app.test_request_context():
        due = load(referral_id).response_due_at
        report = ops.escalate_overdue(due + timedelta(minutes=1))
        assert report.escalated == [referral_id]
        assert ops.escalate_overdue(due + timedelta(minutes=2)).escalated == []
        events = db.session.scalars(
            select(ReferralEvent.action).where(ReferralEvent.referral_id == referral_id)
        ).all()
        assert events.count("escalate") == 1
        report = ops.escalate_overdue(due + timedelta(hours=73))
        assert report.expired == [referral_id]
        referral = load(referral_id)
        assert referral.status == Status.CANCELLED and referral.reason_code == "expired"


def test_duplicate_hint_by_name_year_or_phone(app, world):
    with app.test_request_context():
        org_id = world.team.id
        assert [c.id for c in ops.possible_duplicates(org_id, "  amina ", 1990, None)] == [
            world.client.id
        ]
        assert [
            c.id for c in ops.possible_duplicates(org_id, "Someone Else", None, "(612) 555-0123")
        ] == [world.client.id]
        assert ops.possible_duplicates(org_id, "Amina", 1975, None) == []
        assert ops.possible_duplicates(world.provider.id, "Amina", 1990, None) == []


@pytest.mark.parametrize(
    ("field", "value"), [("phone", "12"), ("birth_year", 1800), ("display_name", " ")]
)
def test_client_input_errors(app, world, field, value):
    data = {"display_name": "Ana", "phone": None, "birth_year": None}
    data[field] = value
    with app.test_request_context(), pytest.raises(ValidationFailed) as exc:
        ops.create_client(world.team, None, **data)
    assert field in exc.value.fields


def test_referrer_can_cancel_but_not_accept(app, world, send):
    referral_id = send()
    with app.test_request_context():
        with pytest.raises(Forbidden):
            ops.perform(load(referral_id), "accept", referrer(world))
        ops.perform(load(referral_id), "cancel", referrer(world), reason_code="client_declined")
        assert load(referral_id).status == Status.CANCELLED
