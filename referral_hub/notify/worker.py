"""The worker: delivers the outbox with retries, and runs the periodic jobs other domains register.

Claiming is its own short transaction (SELECT ... FOR UPDATE SKIP LOCKED on PostgreSQL), so
several workers share the outbox without sending a message twice and no transaction stays
open while a slow SMTP server or SMS gateway answers.

Delivery is at least once: a worker that dies between sending and recording leaves the
message "sending" until its lease runs out, and then it is sent again. The e-mail Message-ID
and the SMS Idempotency-Key come from the dedupe key, so receivers can drop the repeat.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import FrameType
from typing import Any

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy import select, update
from sqlalchemy.exc import InterfaceError, OperationalError

from referral_hub.core.db import utcnow
from referral_hub.extensions import db
from referral_hub.notify.channels import PermanentFailure, TemporaryFailure, channel_for
from referral_hub.notify.models import LAST_ERROR_LENGTH, Channel, Message, MessageStatus

log = logging.getLogger(__name__)

DEFAULT_MAX_ATTEMPTS = 8
# A worker that has held a message this long without recording a result has died.
SENDING_LEASE = timedelta(minutes=10)
MAX_BACKOFF = timedelta(hours=1)

PENDING, SENDING = MessageStatus.PENDING, MessageStatus.SENDING
SENT, FAILED = MessageStatus.SENT, MessageStatus.FAILED


@dataclass(frozen=True)
class Outgoing:
    """A claimed message, copied out of the session so sending needs no database."""

    id: int
    channel: Channel
    recipient: str
    subject: str | None
    body: str
    dedupe_key: str
    attempts: int
    template: str = ""
    referral_id: int | None = None

    @classmethod
    def of(cls, message: Message) -> Outgoing:
        return cls(
            message.id,
            message.channel,
            message.recipient,
            message.subject,
            message.body,
            message.dedupe_key,
            message.attempts,
            message.template,
            message.referral_id,
        )


# Last-moment rendering, per template: what only exists at send time (a client link's
# token, which must never be stored) goes into the copy handed to the channel, never into
# the stored body. A renderer may write (flush only; committed before sending) and raise
# PermanentFailure when the message must no longer go out.
Renderer = Callable[[Outgoing], Outgoing]
_renderers: dict[str, Renderer] = {}


def register_renderer(template: str, fn: Renderer) -> None:
    """Have `fn` turn a claimed message of this template into what is sent."""
    _renderers[template] = fn


def _prepare(item: Outgoing) -> Outgoing:
    renderer = _renderers.get(item.template)
    if renderer is None:
        return item
    try:
        ready = renderer(item)
        db.session.commit()  # before sending: what the message points at must exist
    except BaseException:
        _rollback()
        raise
    return ready


def max_attempts() -> int:
    return int(current_app.config.get("NOTIFY_MAX_ATTEMPTS", DEFAULT_MAX_ATTEMPTS))


def backoff(attempts: int) -> timedelta:
    """Wait before the next try: 1, 2, 4, 8 ... minutes after each failure, at most an hour."""
    return min(timedelta(minutes=2 ** max(attempts - 1, 0)), MAX_BACKOFF)


def _error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:LAST_ERROR_LENGTH]


def claim(limit: int, now: datetime) -> list[Outgoing]:
    """Mark up to `limit` due messages as sending, commit, and return them."""
    stmt = (
        select(Message)
        .where(Message.status.in_([PENDING, SENDING]), Message.next_attempt_at <= now)
        .order_by(Message.next_attempt_at, Message.id)
        .limit(limit)
    )
    if db.session.get_bind().dialect.name == "postgresql":
        # Rows another worker is claiming are skipped, not waited for and not taken twice.
        stmt = stmt.with_for_update(skip_locked=True)
    # SQLite: a plain select; there is a single writer, the database file lock serialises us.
    limit_attempts = max_attempts()
    claimed: list[Outgoing] = []
    for message in db.session.scalars(stmt):
        if message.status == SENDING:
            log.warning(
                "message %s: reclaimed from a worker that stopped while sending", message.id
            )
            if message.attempts >= limit_attempts:
                message.status = FAILED
                message.last_error = "abandoned while sending: the worker stopped"
                continue
        message.status = SENDING
        message.attempts += 1
        message.next_attempt_at = now + SENDING_LEASE
        claimed.append(Outgoing.of(message))
    db.session.commit()
    return claimed


def _record(item: Outgoing, **values: Any) -> None:
    """Store a send's result, unless the claim was lost (lease ran out, message reclaimed)."""
    result = db.session.execute(
        update(Message)
        .where(Message.id == item.id, Message.status == SENDING, Message.attempts == item.attempts)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    if result.rowcount == 0:  # type: ignore[attr-defined]
        log.warning("message %s: claim lost before the result was recorded", item.id)


def deliver(item: Outgoing, now: datetime) -> bool:
    """Send one claimed message and record the outcome; True when it was sent."""
    try:
        provider_id = channel_for(item.channel).send(_prepare(item))
    except PermanentFailure as exc:
        log.warning("message %s: failed permanently: %s", item.id, exc)
        _record(item, status=FAILED, last_error=_error_text(exc))
        return False
    except Exception as exc:
        # TemporaryFailure, or a bug in a channel: either way keep the message and retry.
        if not isinstance(exc, TemporaryFailure):
            log.exception("message %s: unexpected error while sending", item.id)
        if item.attempts >= max_attempts():
            log.warning("message %s: giving up after %s attempts: %s", item.id, item.attempts, exc)
            _record(item, status=FAILED, last_error=_error_text(exc))
        else:
            retry_at = now + backoff(item.attempts)
            log.info(
                "message %s: attempt %s failed (%s); next at %s",
                item.id,
                item.attempts,
                exc,
                retry_at.isoformat(),
            )
            _record(item, status=PENDING, next_attempt_at=retry_at, last_error=_error_text(exc))
        return False
    _record(item, status=SENT, sent_at=now, provider_message_id=provider_id)
    return True


def deliver_due(limit: int = 50, now: datetime | None = None) -> int:
    """Claim and send the messages due at `now` (default: now); return how many were sent."""
    claimed = claim(limit, now or utcnow())
    return sum(deliver(item, now or utcnow()) for item in claimed)


# --- jobs and the loop -------------------------------------------------------------------------

Job = Callable[[], object]
_registered: list[Job] = []


def register_job(fn: Job) -> Job:
    """Run `fn` (no arguments, flush-only) on every worker pass; usable as a decorator."""
    if fn not in _registered:
        _registered.append(fn)
    return fn


def jobs() -> list[Job]:
    """This pass's jobs: the registered ones, then delivery, so their messages go out now."""
    return [*_registered, deliver_due]


def _rollback() -> None:
    try:
        db.session.rollback()
    except Exception:  # the connection may be gone with the database; nothing to undo then
        log.debug("rollback failed", exc_info=True)


def run_pass(job_list: list[Job] | None = None) -> bool:
    """Run each job and commit after it; False when the database was unreachable."""
    for job in jobs() if job_list is None else job_list:
        name = getattr(job, "__qualname__", repr(job))
        try:
            result = job()
            db.session.commit()
        except (OperationalError, InterfaceError):
            # The database restarted or is down: drop every pooled connection, try next pass.
            log.warning("database unavailable during %s; retrying next pass", name, exc_info=True)
            _rollback()
            db.engine.dispose()
            return False
        except Exception:
            log.exception("job %s failed; the other jobs go on", name)
            _rollback()
            continue
        if result:
            log.info("job %s: %s", name, result)
    return True


def _install_stop_handlers(stop: threading.Event) -> dict[int, Any]:
    """SIGTERM and SIGINT end the loop after the current pass (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        return {}

    def handler(signum: int, frame: FrameType | None) -> None:
        log.info("signal %s: stopping after this pass", signal.Signals(signum).name)
        stop.set()

    return {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}


@click.command("worker")
@click.option("--once", is_flag=True, help="Run one pass, then exit.")
@click.option(
    "--interval",
    type=click.FloatRange(min=0.1),
    default=5.0,
    show_default=True,
    help="Seconds between passes.",
)
@with_appcontext
def worker_command(once: bool, interval: float) -> None:
    """Deliver notifications and run periodic jobs until SIGTERM or SIGINT."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    stop = threading.Event()
    previous = _install_stop_handlers(stop)
    log.info("worker started: %s", ", ".join(getattr(j, "__qualname__", "?") for j in jobs()))
    try:
        while True:
            run_pass()
            if once or stop.wait(interval):
                break
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
    log.info("worker stopped")
