"""Text messages clients send us: the SMS gateway's webhook, in Twilio's form encoding.

A STOP word ends text messages to every client with the sending number and a START word
allows them again (each noted on the clients' open referrals); anything else is kept and
noted as a reply on the client's most recent open referral. The gateway signs each request
(X-Twilio-Signature) and may deliver one twice: each MessageSid is acted on once.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass

from flask import Blueprint, Response, abort, current_app, request
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from referral_hub.extensions import csrf, db, limiter
from referral_hub.notify.models import InboundMessage
from referral_hub.referrals.models import OPEN, Client, Referral, Status
from referral_hub.referrals.operations import Actor, note_event

bp = Blueprint("sms", __name__)
csrf.exempt(bp)  # no session, no cookies: the gateway's signature authenticates each request

# The words carriers and Twilio treat as opting out and back in (the whole message, any case).
STOP_WORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"})
START_WORDS = frozenset({"START", "YES", "UNSTOP"})
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'
BODY_LENGTH = 2000  # an SMS is at most 1,600 characters once the gateway joins its parts
CLIENT = Actor(frozenset(), label="client")
# Referrals a reply can be about: sent to a program and not closed.
REPLY_STATES = OPEN - {Status.DRAFT}


def signature(url: str, params: Iterable[tuple[str, str]], auth_token: str) -> str:
    """Twilio's request signature: base64 HMAC-SHA1 of the URL followed by every POST
    parameter, sorted by name (and a repeated name's values sorted), as name then value."""
    values: dict[str, set[str]] = {}
    for name, value in params:
        values.setdefault(name, set()).add(value)
    payload = url + "".join(
        name + value for name in sorted(values) for value in sorted(values[name])
    )
    digest = hmac.new(auth_token.encode(), payload.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def signed_url() -> str:
    """The address the gateway called, as it signed it: SMS_INBOUND_URL, else BASE_URL + path.

    Built from configuration, never from the Host header, which a forger would choose.
    """
    configured = current_app.config.get("SMS_INBOUND_URL")
    if configured:
        return configured
    url = current_app.config["BASE_URL"].rstrip("/") + request.path
    query = request.query_string.decode("latin-1")
    return f"{url}?{query}" if query else url


def signature_ok() -> bool:
    token = current_app.config.get("SMS_AUTH_TOKEN")
    given = request.headers.get("X-Twilio-Signature", "")
    if not token or not given:
        return False
    expected = signature(signed_url(), request.form.items(multi=True), token)
    return hmac.compare_digest(expected.encode(), given.encode())


# --- the rules -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Inbound:
    """One text message as the gateway reported it."""

    sid: str
    from_phone: str
    to_phone: str
    body: str


def keyword(body: str) -> str:
    """The message as an opt-out keyword would be written: trimmed, upper case, no final stop."""
    return body.strip().rstrip(".!").strip().upper()


def clients_with_phone(phone: str) -> list[Client]:
    """Every client record with this number (one person may have several)."""
    candidates = {phone, phone.removeprefix("+")}
    return list(
        db.session.scalars(
            select(Client)
            .where(Client.phone.in_(candidates), Client.anonymized_at.is_(None))
            .order_by(Client.id)
        )
    )


def latest_open_referral(clients: list[Client]) -> Referral | None:
    if not clients:
        return None
    return db.session.scalar(
        select(Referral)
        .where(
            Referral.client_id.in_([c.id for c in clients]),
            Referral.status.in_(REPLY_STATES),
        )
        .order_by(Referral.id.desc())
        .limit(1)
    )


def receive(message: Inbound) -> InboundMessage | None:
    """Store an inbound text and act on it (flush only); None when it was received before."""
    if db.session.scalar(
        select(InboundMessage.id).where(InboundMessage.provider_message_id == message.sid)
    ):
        return None
    clients = clients_with_phone(message.from_phone)
    referral = latest_open_referral(clients)
    word = keyword(message.body)
    if word in STOP_WORDS:
        action = "stop"
    elif word in START_WORDS and any(not c.sms_ok for c in clients):
        action = "start"
    else:
        # A "yes" from someone who already takes our messages answers one of them.
        action = "reply"
    if referral is not None:
        client_id: int | None = referral.client_id
    else:
        client_id = clients[-1].id if clients else None
    record = InboundMessage(
        from_phone=message.from_phone,
        to_phone=message.to_phone,
        body=message.body[:BODY_LENGTH],
        provider_message_id=message.sid,
        client_id=client_id,
        referral_id=referral.id if referral is not None and action == "reply" else None,
    )
    try:
        # A savepoint: a concurrent delivery of the same message loses here, harmlessly.
        with db.session.begin_nested():
            db.session.add(record)
    except IntegrityError:
        return None
    if action == "stop":
        _set_sms_ok(clients, False, "client_sms_stopped", record)
    elif action == "start":
        _set_sms_ok(clients, True, "client_sms_started", record)
    elif referral is not None:
        # The event points at the stored text; the text itself stays out of the log.
        note_event(referral, "client_reply", CLIENT, data={"inbound_message_id": record.id})
    db.session.flush()
    return record


def _set_sms_ok(clients: list[Client], value: bool, action: str, record: InboundMessage) -> None:
    changed = [c for c in clients if c.sms_ok != value]
    for client in changed:
        client.sms_ok = value
    if not changed:
        return
    referrals = db.session.scalars(
        select(Referral)
        .where(Referral.client_id.in_([c.id for c in changed]), Referral.status.in_(OPEN))
        .order_by(Referral.id)
    )
    for referral in referrals:
        note_event(referral, action, CLIENT, data={"inbound_message_id": record.id})


# --- the webhook -----------------------------------------------------------------------------


def _rate_limit() -> str:
    return current_app.config.get("SMS_INBOUND_RATE_LIMIT", "120 per minute")


@bp.post("/sms/inbound")
@limiter.limit(_rate_limit)
def inbound():
    """Receive one text message from the gateway; answer with empty TwiML (no reply)."""
    if not signature_ok():
        abort(403)
    form = request.form
    account = current_app.config.get("SMS_ACCOUNT_SID")
    if account and form.get("AccountSid", account) != account:
        abort(403)
    sid = (form.get("MessageSid") or form.get("SmsSid") or "").strip()
    sender = (form.get("From") or "").strip()
    if not sid or len(sid) > 64 or not sender or len(sender) > 32:
        abort(400)
    receive(
        Inbound(
            sid=sid,
            from_phone=sender,
            to_phone=(form.get("To") or "").strip()[:32],
            body=form.get("Body") or "",
        )
    )
    db.session.commit()
    return Response(EMPTY_TWIML, mimetype="text/xml")
