"""The inbound SMS webhook: Twilio's signature, STOP and START, replies on the referral,
one action per MessageSid, no CSRF token needed, a rate limit."""

from __future__ import annotations

import itertools

import pytest
from sqlalchemy import func, select

from referral_hub.extensions import db
from referral_hub.notify import client_messages as cm
from referral_hub.notify.inbound import EMPTY_TWIML, signature
from referral_hub.notify.models import InboundMessage, Message, MessageStatus
from referral_hub.referrals import operations as referral_ops
from referral_hub.referrals.models import Client, Referral, ReferralEvent
from tests.referrals.conftest import provider, referrer, send, world  # noqa: F401 (fixtures)
from tests.transport.conftest import next_weekday_at

from .conftest import SMS_FROM, SMS_SID, SMS_TOKEN
from .helpers import deliver

PHONE = "+16125550123"  # the world's client, normalised
_sids = itertools.count(1)


@pytest.fixture
def sms_config(app, monkeypatch) -> None:
    monkeypatch.setitem(app.config, "SMS_ACCOUNT_SID", SMS_SID)
    monkeypatch.setitem(app.config, "SMS_AUTH_TOKEN", SMS_TOKEN)
    monkeypatch.setitem(app.config, "SMS_INBOUND_URL", None)


def form(body: str, *, sid: str | None = None, sender: str = PHONE) -> dict[str, str]:
    """What Twilio posts for an incoming text message."""
    return {
        "MessageSid": sid or f"SM{next(_sids):032x}",
        "SmsSid": sid or "",
        "AccountSid": SMS_SID,
        "From": sender,
        "To": SMS_FROM,
        "Body": body,
        "NumMedia": "0",
    }


def post(client, app, data: dict[str, str], *, url: str | None = None, token: str = SMS_TOKEN):
    """POST signed as the gateway signs: over the URL it called and the sorted params."""
    url = url or app.config["BASE_URL"].rstrip("/") + "/sms/inbound"
    headers = {"X-Twilio-Signature": signature(url, data.items(), token)}
    return client.post("/sms/inbound", data=data, headers=headers)


def events(app, referral_id: int, action: str) -> list[ReferralEvent]:
    with app.app_context():
        found = db.session.scalars(
            select(ReferralEvent).where(
                ReferralEvent.referral_id == referral_id, ReferralEvent.action == action
            )
        ).all()
        for event in found:
            db.session.expunge(event)
        return list(found)


def inbound_count(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(InboundMessage))


def sms_ok(app, w) -> bool:
    with app.app_context():
        return db.session.get(Client, w.client.id).sms_ok


def set_client(app, w, **fields) -> None:
    with app.test_request_context():
        client = db.session.get(Client, w.client.id)
        for name, value in fields.items():
            setattr(client, name, value)
        db.session.commit()


# --- the signature ---------------------------------------------------------------------------


def test_signature_matches_twilios_published_examples():
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    params = {
        "CallSid": "CA1234567890ABCDE",
        "Caller": "+14158675309",
        "Digits": "1234",
        "From": "+14158675309",
        "To": "+18005551212",
    }
    assert signature(url, params.items(), "12345") == "RSOYDt4T1cUTdK1PDd93/VVr8B8="
    repeated = [
        ("Sid", "CA123"),
        ("SidAccount", "AC123"),
        ("Digits", "5678"),
        ("Digits", "1234"),
        ("Digits", "1234"),
    ]
    assert signature(url, repeated, "12345") == "IK+Dwps556ElfBT0I3Rgjkr1wJU="


def test_a_signed_reply_is_stored_on_the_clients_latest_open_referral(
    app,
    client,
    world,  # noqa: F811
    send,  # noqa: F811
    sms_config,
):
    older = send()
    newer = send()
    response = post(client, app, form("Can I come at 3 instead? I have work"))
    assert response.status_code == 200
    assert response.mimetype == "text/xml"
    assert response.get_data(as_text=True) == EMPTY_TWIML
    assert "Set-Cookie" not in response.headers
    with app.app_context():
        [stored] = db.session.scalars(select(InboundMessage)).all()
        assert stored.from_phone == PHONE and stored.to_phone == SMS_FROM
        assert stored.body == "Can I come at 3 instead? I have work"
        assert stored.client_id == world.client.id and stored.referral_id == newer
        stored_id = stored.id
    [event] = events(app, newer, "client_reply")
    assert event.data == {"inbound_message_id": stored_id}
    assert event.actor_label == "client"
    assert "work" not in str(event.data)  # the text stays out of the log
    assert events(app, older, "client_reply") == []


@pytest.mark.parametrize(
    "tamper",
    ["missing", "wrong token", "body changed", "other url", "wrong account"],
)
def test_a_bad_or_missing_signature_is_refused_and_nothing_stored(
    app,
    client,
    world,  # noqa: F811
    send,  # noqa: F811
    sms_config,
    tamper,
):
    referral_id = send()
    data = form("hello")
    url = app.config["BASE_URL"].rstrip("/") + "/sms/inbound"
    if tamper == "missing":
        response = client.post("/sms/inbound", data=data)
    elif tamper == "wrong token":
        response = post(client, app, data, token="not-the-token")
    elif tamper == "body changed":
        headers = {"X-Twilio-Signature": signature(url, data.items(), SMS_TOKEN)}
        response = client.post("/sms/inbound", data={**data, "Body": "STOP"}, headers=headers)
    elif tamper == "other url":
        response = post(client, app, data, url="https://attacker.example/sms/inbound")
    else:
        response = post(client, app, {**data, "AccountSid": "AC" + "0" * 32})
    assert response.status_code == 403
    assert inbound_count(app) == 0
    assert events(app, referral_id, "client_reply") == []


def test_without_an_auth_token_every_request_is_refused(app, client, monkeypatch):
    monkeypatch.setitem(app.config, "SMS_AUTH_TOKEN", None)
    assert post(client, app, form("hello"), token="").status_code == 403
    assert inbound_count(app) == 0


def test_the_configured_inbound_url_is_what_gets_signed(app, client, sms_config, monkeypatch):
    public = "https://hub.example.org/sms/inbound"
    monkeypatch.setitem(app.config, "SMS_INBOUND_URL", public)
    assert post(client, app, form("hello")).status_code == 403  # signed over BASE_URL
    assert post(client, app, form("hello"), url=public).status_code == 200
    assert inbound_count(app) == 1


def test_a_replayed_message_sid_is_acted_on_once(app, client, world, send, sms_config):  # noqa: F811
    referral_id = send()
    data = form("see you there", sid="SM" + "a" * 32)
    for _ in range(3):
        response = post(client, app, data)
        assert response.status_code == 200
        assert response.get_data(as_text=True) == EMPTY_TWIML
    assert inbound_count(app) == 1
    assert len(events(app, referral_id, "client_reply")) == 1


def test_a_message_without_sid_or_sender_is_refused(app, client, sms_config):
    assert post(client, app, {**form("hi"), "MessageSid": "", "SmsSid": ""}).status_code == 400
    assert post(client, app, {**form("hi"), "From": ""}).status_code == 400
    assert inbound_count(app) == 0


def test_the_webhook_is_rate_limited(app, client, sms_config, monkeypatch):
    monkeypatch.setitem(app.config, "SMS_INBOUND_RATE_LIMIT", "2 per minute")
    assert post(client, app, form("one")).status_code == 200
    assert post(client, app, form("two")).status_code == 200
    assert post(client, app, form("three")).status_code == 429
    assert inbound_count(app) == 2


def test_a_text_from_an_unknown_number_is_kept_without_a_referral(app, client, sms_config):
    assert post(client, app, form("who is this", sender="+16515550199")).status_code == 200
    with app.app_context():
        [stored] = db.session.scalars(select(InboundMessage)).all()
        assert stored.client_id is None and stored.referral_id is None


# --- STOP and START ---------------------------------------------------------------------------


@pytest.mark.parametrize("word", ["STOP", "stop", " Unsubscribe ", "Cancel", "END", "quit."])
def test_stop_words_end_text_messages_for_every_client_with_the_number(
    app,
    client,
    world,  # noqa: F811
    send,  # noqa: F811
    sms_config,
    word,
):
    set_client(app, world, sms_ok=True)
    referral_id = send()
    assert post(client, app, form(word)).status_code == 200
    assert sms_ok(app, world) is False
    [event] = events(app, referral_id, "client_sms_stopped")
    assert event.actor_label == "client" and set(event.data) == {"inbound_message_id"}
    assert events(app, referral_id, "client_reply") == []


def test_stop_stops_further_messages_and_start_allows_them_again(
    app,
    client,
    world,  # noqa: F811
    send,  # noqa: F811
    sms_gateway,
):
    set_client(app, world, sms_ok=True)
    referral_id = send()  # the link is queued
    assert post(client, app, form("STOP")).status_code == 200
    deliver(app)
    assert [p for p in sms_gateway.posts if p.form["To"] == PHONE] == []
    [queued] = [m for m in _client_messages(app) if m.referral_id == referral_id]
    assert queued.status == MessageStatus.FAILED
    assert "no longer takes text messages" in queued.last_error
    # Nothing new is queued while stopped.
    with app.test_request_context():
        referral = db.session.get(Referral, referral_id)
        referral_ops.perform(
            referral, "accept", provider(world), appointment_at=next_weekday_at(11, days_ahead=3)
        )
        db.session.commit()
    with app.app_context():
        assert cm.appointment_notices() == 0
        db.session.commit()
    # START: allowed again; the client's next message goes out.
    assert post(client, app, form("start")).status_code == 200
    assert sms_ok(app, world) is True
    assert len(events(app, referral_id, "client_sms_started")) == 1
    with app.app_context():
        assert cm.appointment_notices() == 1
        db.session.commit()
    deliver(app)
    [sent] = [p for p in sms_gateway.posts if p.form["To"] == PHONE]
    assert "/c/c_" in sent.form["Body"]


def test_yes_from_a_client_who_takes_messages_is_a_reply(
    app,
    client,
    world,  # noqa: F811
    send,  # noqa: F811
    sms_config,
):
    set_client(app, world, sms_ok=True)
    referral_id = send()
    assert post(client, app, form("Yes")).status_code == 200
    assert len(events(app, referral_id, "client_reply")) == 1
    assert events(app, referral_id, "client_sms_started") == []


def test_stop_reaches_a_second_record_of_the_same_person(app, client, world, send, sms_config):  # noqa: F811
    set_client(app, world, sms_ok=True)
    first = send()
    with app.test_request_context():
        original = db.session.get(Client, world.client.id)
        twin = Client(
            organization_id=original.organization_id,
            display_name="A. W.",
            name_key="a w",
            phone=PHONE,
            sms_ok=True,
        )
        db.session.add(twin)
        db.session.commit()
        twin_id = twin.id
    assert post(client, app, form("STOP")).status_code == 200
    with app.app_context():
        assert db.session.get(Client, twin_id).sms_ok is False
        assert db.session.get(Client, world.client.id).sms_ok is False
    assert len(events(app, first, "client_sms_stopped")) == 1
    # A closed referral gets no event.
    with app.test_request_context():
        referral = db.session.get(Referral, first)
        referral_ops.perform(referral, "cancel", referrer(world), reason_code="other")
        db.session.commit()
    assert post(client, app, form("START")).status_code == 200
    assert events(app, first, "client_sms_started") == []


def _client_messages(app) -> list[Message]:
    with app.app_context():
        found = db.session.scalars(select(Message).where(Message.channel == "sms")).all()
        for message in found:
            db.session.expunge(message)
        return list(found)
