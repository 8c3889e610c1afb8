"""Small helpers shared by the notify tests: queue a message, deliver, read it back."""

from __future__ import annotations

import json
import os
from datetime import datetime
from typing import Any

from flask import Flask

from referral_hub.extensions import db
from referral_hub.notify.models import Message
from referral_hub.notify.operations import enqueue
from referral_hub.notify.worker import deliver_due


def queue(app: Flask, **fields: Any) -> int:
    """Commit one message to the outbox; returns its id."""
    values = {"template": "test", "language": "en", "subject": "Test message", **fields}
    with app.test_request_context():
        message = enqueue(**values)
        db.session.commit()
        return message.id


def deliver(app: Flask, now: datetime | None = None, limit: int = 50) -> int:
    """One worker pass over the outbox, as the worker runs it (own app context)."""
    with app.app_context():
        return deliver_due(limit=limit, now=now)


def load(app: Flask, message_id: int) -> Message:
    """The message as stored now (detached, every column loaded)."""
    with app.app_context():
        message = db.session.get(Message, message_id)
        db.session.expunge(message)
        return message


def console_lines(app: Flask, message_id: int) -> list[dict]:
    """The console channel's log lines for one message."""
    path = os.path.join(app.instance_path, "notifications.log")
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as fh:
        lines = [json.loads(line) for line in fh if line.strip()]
    return [line for line in lines if line["id"] == message_id]
