"""The worker escalates overdue referrals once and tells the coordinator and the responder."""

from datetime import timedelta

from sqlalchemy import select

from referral_hub.core.db import utcnow
from referral_hub.extensions import db
from referral_hub.notify.models import Message
from referral_hub.referrals.models import ReferralEvent

from .conftest import load


def test_worker_pass_escalates_and_notifies_once(app, world, send):
    referral_id = send()
    with app.app_context():
        load(referral_id).response_due_at = utcnow() - timedelta(minutes=5)
        db.session.commit()
    cli = app.test_cli_runner()
    for _ in range(2):
        result = cli.invoke(args=["worker", "--once"])
        assert result.exit_code == 0, result.output
    with app.app_context():
        actions = db.session.scalars(
            select(ReferralEvent.action).where(ReferralEvent.referral_id == referral_id)
        ).all()
        assert actions.count("escalate") == 1
        escalations = db.session.scalars(
            select(Message).where(
                Message.referral_id == referral_id, Message.template == "referral_escalated"
            )
        ).all()
        assert {m.recipient_user_id for m in escalations} == {
            world.coordinator.id,
            world.responder.id,
        }
        assert load(referral_id).escalated_at is not None
