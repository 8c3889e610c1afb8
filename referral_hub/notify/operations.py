"""Notification rules: render for each recipient, add to the outbox once, report delivery.

Nothing here sends: messages are written in the caller's transaction (flush only) and the
worker delivers them after that transaction commits, so a rolled-back action notifies nobody.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime

from flask import current_app
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from referral_hub.accounts.models import User
from referral_hub.core.db import utcnow
from referral_hub.extensions import db
from referral_hub.notify.models import Channel, Message, MessageStatus
from referral_hub.notify.templates import render

DEDUPE_KEY_LENGTH = 200
E164 = re.compile(r"^\+[1-9]\d{6,14}$")
STAFF_CHANNELS = (Channel.CONSOLE, Channel.EMAIL)


def staff_channel() -> Channel:
    """The channel staff notifications go out on (NOTIFY_STAFF_CHANNEL)."""
    channel = Channel(current_app.config.get("NOTIFY_STAFF_CHANNEL", Channel.CONSOLE))
    if channel not in STAFF_CHANNELS:
        raise ValueError(f"NOTIFY_STAFF_CHANNEL must be one of {[c.value for c in STAFF_CHANNELS]}")
    return channel


def user_language(user: User) -> str:
    """The language a user reads messages in: their own if we serve it, else the default."""
    supported = current_app.config.get("LANGUAGES", ("en",))
    if user.locale in supported:
        return user.locale
    return current_app.config.get("BABEL_DEFAULT_LOCALE", "en")


def _check_recipient(channel: Channel, recipient: str) -> None:
    if channel == Channel.SMS and not E164.match(recipient):
        raise ValueError("an SMS recipient must be an E.164 phone number")
    if channel == Channel.EMAIL and "@" not in recipient:
        raise ValueError("an e-mail recipient must be an address")


def enqueue(
    *,
    channel: Channel | str,
    recipient: str,
    template: str,
    language: str,
    body: str,
    dedupe_key: str,
    subject: str | None = None,
    recipient_user_id: int | None = None,
    referral_id: int | None = None,
    send_after: datetime | None = None,
) -> Message:
    """Add a rendered message to the outbox; a dedupe key already there returns that message."""
    channel = Channel(channel)
    _check_recipient(channel, recipient)
    if len(dedupe_key) > DEDUPE_KEY_LENGTH:
        raise ValueError(f"dedupe_key longer than {DEDUPE_KEY_LENGTH} characters")
    existing = _by_dedupe_key(dedupe_key)
    if existing is not None:
        return existing
    message = Message(
        channel=channel,
        recipient=recipient,
        recipient_user_id=recipient_user_id,
        referral_id=referral_id,
        template=template,
        language=language,
        subject=subject,
        body=body,
        status=MessageStatus.PENDING,
        attempts=0,
        next_attempt_at=send_after or utcnow(),
        dedupe_key=dedupe_key,
    )
    try:
        # A savepoint, so losing the race below leaves the caller's transaction usable.
        with db.session.begin_nested():
            db.session.add(message)
    except IntegrityError:
        # Another transaction enqueued the same key between our check and our insert.
        existing = _by_dedupe_key(dedupe_key)
        if existing is None:
            raise
        return existing
    return message


def _by_dedupe_key(dedupe_key: str) -> Message | None:
    return db.session.scalar(select(Message).where(Message.dedupe_key == dedupe_key))


def notify_users(
    users: Iterable[User],
    template: str,
    *,
    params: dict,
    referral_id: int | None,
    dedupe_key: str,
) -> list[Message]:
    """Queue one message per active user, in that user's language (flush only)."""
    channel = staff_channel()
    messages: list[Message] = []
    seen: set[int] = set()
    for user in users:
        if not user.is_active or user.id in seen:
            continue
        seen.add(user.id)
        lang = user_language(user)
        rendered = render(template, lang, params)
        messages.append(
            enqueue(
                channel=channel,
                recipient=user.email,
                recipient_user_id=user.id,
                referral_id=referral_id,
                template=template,
                language=lang,
                subject=rendered.subject,
                body=rendered.body,
                dedupe_key=f"{dedupe_key}:{user.id}",
            )
        )
    db.session.flush()
    return messages


def messages_for_referral(referral_id: int) -> list[Message]:
    """Every message about a referral, oldest first (for the staff page)."""
    return list(
        db.session.scalars(
            select(Message).where(Message.referral_id == referral_id).order_by(Message.id)
        )
    )


def delivery_summary(referral_id: int) -> dict[str, int]:
    """How many of a referral's messages are pending, failed and sent."""
    rows = db.session.execute(
        select(Message.status, func.count())
        .where(Message.referral_id == referral_id)
        .group_by(Message.status)
    )
    counts = {status: n for status, n in rows}
    return {
        # A message being sent right now is still on its way, as far as staff can tell.
        "pending": counts.get(MessageStatus.PENDING, 0) + counts.get(MessageStatus.SENDING, 0),
        "failed": counts.get(MessageStatus.FAILED, 0),
        "sent": counts.get(MessageStatus.SENT, 0),
    }
