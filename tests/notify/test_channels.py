"""Channels against real endpoints on loopback: a log file, an SMTP server, an SMS API."""

from __future__ import annotations

from datetime import timedelta

import pytest

from referral_hub.core.db import utcnow
from referral_hub.notify.channels import EmailChannel, message_id_for
from referral_hub.notify.models import MessageStatus

from .conftest import REJECTED_ADDRESS, SMS_FROM, SMS_SID, SMS_TOKEN
from .helpers import console_lines, deliver, load, queue


def test_console_channel_appends_one_json_line(app):
    message_id = queue(
        app,
        channel="console",
        recipient="intake@example.org",
        subject="New referral #3",
        body="A new referral is waiting.",
        dedupe_key="console:1",
    )
    assert deliver(app) == 1
    assert console_lines(app, message_id) == [
        {
            "id": message_id,
            "channel": "console",
            "recipient": "intake@example.org",
            "subject": "New referral #3",
            "body": "A new referral is waiting.",
        }
    ]
    stored = load(app, message_id)
    assert stored.status == MessageStatus.SENT and stored.attempts == 1
    assert stored.sent_at is not None


def test_email_reaches_a_real_smtp_server(app, smtp_server):
    body = "Remisión #5 aceptada por Programa Nueva Vida.\n\nÁbrala: http://hub/referrals/5"
    message_id = queue(
        app,
        channel="email",
        recipient="responder@example.org",
        subject="Remisión #5 aceptada",
        body=body,
        dedupe_key="referral:5:accept:9",
    )
    assert deliver(app) == 1
    [mail] = smtp_server.received
    expected_id = message_id_for("referral:5:accept:9", "referrals@hub.example.org")
    assert mail.mail_from == "referrals@hub.example.org"
    assert mail.rcpt_tos == ["responder@example.org"]
    assert mail.message["Subject"] == "Remisión #5 aceptada"
    assert mail.message["To"] == "responder@example.org"
    assert mail.message["Message-ID"] == expected_id
    assert mail.message.get_content().replace("\r\n", "\n").strip() == body
    stored = load(app, message_id)
    assert stored.status == MessageStatus.SENT
    assert stored.provider_message_id == expected_id


def test_message_id_is_stable_per_dedupe_key(app):
    class Stub:
        id, recipient, subject, body = 1, "a@example.org", "s", "b"

        def __init__(self, key):
            self.dedupe_key = key

    channel = EmailChannel(host="127.0.0.1", port=25, sender="hub@example.org")
    first = channel.build(Stub("k:1"))["Message-ID"]
    assert first == channel.build(Stub("k:1"))["Message-ID"]
    assert first != channel.build(Stub("k:2"))["Message-ID"]
    assert first.startswith("<") and first.endswith("@example.org>")


def test_email_refused_with_550_fails_permanently(app, smtp_server):
    message_id = queue(
        app, channel="email", recipient=REJECTED_ADDRESS, body="b", dedupe_key="email:rejected"
    )
    assert deliver(app) == 0
    stored = load(app, message_id)
    assert stored.status == MessageStatus.FAILED
    assert stored.attempts == 1
    assert "550" in stored.last_error
    assert smtp_server.received == []


def test_sms_speaks_the_twilio_messages_api(app, sms_gateway):
    message_id = queue(
        app,
        channel="sms",
        recipient="+16125550123",
        subject=None,
        body="Your ride is booked for 2:30 PM.",
        dedupe_key="client:8:ride",
    )
    assert deliver(app) == 1
    [post] = sms_gateway.posts
    assert post.path == f"/2010-04-01/Accounts/{SMS_SID}/Messages.json"
    assert post.form == {
        "To": "+16125550123",
        "From": SMS_FROM,
        "Body": "Your ride is booked for 2:30 PM.",
    }
    assert post.auth == (SMS_SID, SMS_TOKEN)
    assert post.idempotency_key == "client:8:ride"
    stored = load(app, message_id)
    assert stored.status == MessageStatus.SENT
    assert stored.provider_message_id.startswith("SM")


@pytest.mark.parametrize("status", [500, 503, 429])
def test_sms_server_errors_and_rate_limits_schedule_a_retry(app, sms_gateway, status):
    sms_gateway.responses.append(
        (status, {"code": 20500, "message": "Try later", "status": status})
    )
    message_id = queue(
        app, channel="sms", recipient="+16125550123", body="b", dedupe_key=f"sms:retry:{status}"
    )
    t0 = utcnow()
    assert deliver(app, now=t0) == 0
    stored = load(app, message_id)
    assert stored.status == MessageStatus.PENDING
    assert stored.attempts == 1
    assert stored.next_attempt_at == t0 + timedelta(minutes=1)
    assert f"HTTP {status}: Try later" in stored.last_error
    assert deliver(app, now=t0 + timedelta(seconds=30)) == 0  # not due yet
    assert deliver(app, now=t0 + timedelta(minutes=1)) == 1
    assert load(app, message_id).attempts == 2
    assert len(sms_gateway.posts) == 2


def test_sms_rejected_with_400_fails_permanently_with_the_gateways_reason(app, sms_gateway):
    reason = "The 'To' number +16125550000 is not a valid phone number."
    sms_gateway.responses.append((400, {"code": 21211, "message": reason, "status": 400}))
    message_id = queue(
        app, channel="sms", recipient="+16125550000", body="b", dedupe_key="sms:invalid"
    )
    t0 = utcnow()
    assert deliver(app, now=t0) == 0
    stored = load(app, message_id)
    assert stored.status == MessageStatus.FAILED
    assert stored.last_error == f"PermanentFailure: HTTP 400: {reason}"
    assert deliver(app, now=t0 + timedelta(days=1)) == 0
    assert len(sms_gateway.posts) == 1


def test_sms_without_configuration_is_kept_for_later(app, monkeypatch):
    monkeypatch.setitem(app.config, "SMS_ACCOUNT_SID", None)
    message_id = queue(
        app, channel="sms", recipient="+16125550123", body="b", dedupe_key="sms:unconfigured"
    )
    assert deliver(app) == 0
    stored = load(app, message_id)
    assert stored.status == MessageStatus.PENDING
    assert "not configured" in stored.last_error
