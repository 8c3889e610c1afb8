"""The outbox: one row per dedupe key, written in the caller's transaction, summarised."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from referral_hub.extensions import db
from referral_hub.notify.models import Channel, Message, MessageStatus
from referral_hub.notify.operations import (
    delivery_summary,
    enqueue,
    messages_for_referral,
    notify_users,
)

PARAMS = {"program_name": "Eastside Job Readiness", "referral_id": 7, "priority": "routine"}


def count_messages() -> int:
    return db.session.scalar(select(func.count()).select_from(Message))


def test_the_same_dedupe_key_twice_makes_one_message_per_user(app, make_user):
    staff = [make_user("provider_staff"), make_user("provider_staff")]
    with app.test_request_context():
        first = notify_users(
            staff, "referral_new", params=PARAMS, referral_id=None, dedupe_key="referral:7:send"
        )
        db.session.commit()
        again = notify_users(
            staff, "referral_new", params=PARAMS, referral_id=None, dedupe_key="referral:7:send"
        )
        db.session.commit()
        assert [m.id for m in again] == [m.id for m in first]
        assert count_messages() == 2
        assert {m.dedupe_key for m in first} == {f"referral:7:send:{u.id}" for u in staff}


def test_enqueue_is_idempotent_within_one_transaction_too(app):
    with app.test_request_context():
        one = enqueue(
            channel="sms",
            recipient="+16125550123",
            template="t",
            language="en",
            body="Your ride is booked.",
            dedupe_key="client:1:ride",
        )
        two = enqueue(
            channel="sms",
            recipient="+16125550123",
            template="t",
            language="en",
            body="Your ride is booked.",
            dedupe_key="client:1:ride",
        )
        assert one is two
        assert count_messages() == 1


def test_notify_users_only_flushes_so_a_rolled_back_action_notifies_nobody(app, make_user):
    staff = make_user("provider_staff")
    with app.test_request_context():
        notify_users(
            [staff],
            "referral_new",
            params=PARAMS,
            referral_id=None,
            dedupe_key="referral:7:rollback",
        )
        assert count_messages() == 1
        db.session.rollback()
        assert count_messages() == 0


def test_staff_channel_email_sends_to_the_users_address(app, make_user, monkeypatch):
    monkeypatch.setitem(app.config, "NOTIFY_STAFF_CHANNEL", "email")
    staff = make_user("provider_staff", email="intake@northside.example.org")
    with app.test_request_context():
        [message] = notify_users(
            [staff], "referral_new", params=PARAMS, referral_id=None, dedupe_key="referral:7:email"
        )
        assert message.channel == Channel.EMAIL
        assert message.recipient == "intake@northside.example.org"
        assert message.status == MessageStatus.PENDING
        assert message.attempts == 0
        assert message.subject == "New referral #7 for Eastside Job Readiness"


def test_default_staff_channel_is_console_and_sms_is_refused_for_staff(app, make_user, monkeypatch):
    staff = make_user("provider_staff")
    with app.test_request_context():
        [message] = notify_users(
            [staff],
            "referral_new",
            params=PARAMS,
            referral_id=None,
            dedupe_key="referral:7:console",
        )
        assert message.channel == Channel.CONSOLE
    monkeypatch.setitem(app.config, "NOTIFY_STAFF_CHANNEL", "sms")
    with app.test_request_context(), pytest.raises(ValueError, match="NOTIFY_STAFF_CHANNEL"):
        notify_users(
            [staff], "referral_new", params=PARAMS, referral_id=None, dedupe_key="referral:7:sms"
        )


def test_recipients_are_checked_for_their_channel(app):
    with app.test_request_context():
        with pytest.raises(ValueError, match=r"E\.164"):
            enqueue(
                channel="sms",
                recipient="612-555-0123",
                template="t",
                language="en",
                body="b",
                dedupe_key="k1",
            )
        with pytest.raises(ValueError, match="address"):
            enqueue(
                channel="email",
                recipient="not an address",
                template="t",
                language="en",
                body="b",
                dedupe_key="k2",
            )


def test_messages_and_delivery_summary_for_a_referral(app, make_user, make_referral):
    referral_id = make_referral()
    other_referral_id = make_referral()
    staff = [make_user("provider_staff") for _ in range(3)]
    params = {**PARAMS, "referral_id": referral_id}
    with app.test_request_context():
        messages = notify_users(
            staff,
            "referral_new",
            params=params,
            referral_id=referral_id,
            dedupe_key=f"referral:{referral_id}:send",
        )
        notify_users(
            staff[:1],
            "referral_new",
            params=params,
            referral_id=other_referral_id,
            dedupe_key=f"referral:{other_referral_id}:send",
        )
        messages[0].status = MessageStatus.SENT
        messages[1].status = MessageStatus.FAILED
        db.session.commit()
        listed = messages_for_referral(referral_id)
        assert [m.id for m in listed] == sorted(m.id for m in messages)
        assert delivery_summary(referral_id) == {"pending": 1, "failed": 1, "sent": 1}
        assert delivery_summary(other_referral_id) == {"pending": 1, "failed": 0, "sent": 0}
        assert delivery_summary(referral_id + 1000) == {"pending": 0, "failed": 0, "sent": 0}
