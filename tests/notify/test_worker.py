"""The worker: retries with backoff, reclaims crashed claims, survives outages, runs jobs."""

from __future__ import annotations

import os
import signal
import threading
import uuid
from collections import Counter
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy import delete, select

from referral_hub.core.db import utcnow
from referral_hub.extensions import db
from referral_hub.notify import worker
from referral_hub.notify.models import Message, MessageStatus
from referral_hub.notify.operations import enqueue
from referral_hub.notify.worker import claim, deliver_due, run_pass, worker_command

from .helpers import console_lines, deliver, load, queue


def test_backoff_doubles_from_one_minute_and_is_capped():
    assert [worker.backoff(n).total_seconds() / 60 for n in range(1, 9)] == [
        1,
        2,
        4,
        8,
        16,
        32,
        60,
        60,
    ]


def test_retries_back_off_then_the_message_fails(app, sms_gateway, monkeypatch):
    monkeypatch.setitem(app.config, "NOTIFY_MAX_ATTEMPTS", 4)
    sms_gateway.responses.extend([(503, {"message": "busy"})] * 4)
    message_id = queue(
        app, channel="sms", recipient="+16125550123", body="b", dedupe_key="worker:backoff"
    )
    now = utcnow()
    retries = []
    for _ in range(3):
        assert deliver(app, now=now) == 0
        stored = load(app, message_id)
        assert stored.status == MessageStatus.PENDING
        retries.append(stored.next_attempt_at - now)
        now = stored.next_attempt_at
    assert retries == [timedelta(minutes=1), timedelta(minutes=2), timedelta(minutes=4)]
    assert deliver(app, now=now) == 0
    stored = load(app, message_id)
    assert stored.status == MessageStatus.FAILED
    assert stored.attempts == 4
    assert "HTTP 503: busy" in stored.last_error
    assert deliver(app, now=now + timedelta(days=1)) == 0
    assert len(sms_gateway.posts) == 4


def test_a_message_left_sending_by_a_crashed_worker_is_reclaimed(app):
    message_id = queue(
        app, channel="console", recipient="a@example.org", body="b", dedupe_key="worker:crash"
    )
    t0 = utcnow()
    with app.app_context():
        [claimed] = claim(10, t0)  # ... and the worker dies before sending
    assert load(app, message_id).status == MessageStatus.SENDING
    assert deliver(app, now=t0 + timedelta(minutes=5)) == 0  # its lease still runs
    assert deliver(app, now=t0 + timedelta(minutes=11)) == 1
    stored = load(app, message_id)
    assert stored.status == MessageStatus.SENT and stored.attempts == 2
    assert len(console_lines(app, message_id)) == 1
    # The dead worker's late result must not overwrite what the new claim recorded.
    with app.app_context():
        worker._record(claimed, status=MessageStatus.FAILED, last_error="late")
    assert load(app, message_id).status == MessageStatus.SENT


def test_a_message_reclaimed_at_the_attempt_limit_fails(app, monkeypatch):
    monkeypatch.setitem(app.config, "NOTIFY_MAX_ATTEMPTS", 1)
    message_id = queue(
        app, channel="console", recipient="a@example.org", body="b", dedupe_key="worker:crash-limit"
    )
    t0 = utcnow()
    with app.app_context():
        claim(10, t0)
    assert deliver(app, now=t0 + timedelta(minutes=11)) == 0
    stored = load(app, message_id)
    assert stored.status == MessageStatus.FAILED
    assert "worker stopped" in stored.last_error
    assert console_lines(app, message_id) == []


def test_both_servers_down_then_back_nothing_lost_nothing_doubled(app, smtp_server, sms_gateway):
    smtp_server.stop()
    sms_gateway.stop()
    email_id = queue(
        app, channel="email", recipient="staff@example.org", body="e", dedupe_key="outage:email"
    )
    sms_id = queue(app, channel="sms", recipient="+16125550123", body="s", dedupe_key="outage:sms")
    t0 = utcnow()
    assert deliver(app, now=t0) == 0
    for message_id in (email_id, sms_id):
        stored = load(app, message_id)
        assert stored.status == MessageStatus.PENDING
        assert stored.attempts == 1
        assert stored.next_attempt_at > t0
        assert stored.last_error
    smtp_server.start()
    sms_gateway.start()
    assert deliver(app, now=t0 + timedelta(seconds=30)) == 0  # still waiting out the backoff
    assert deliver(app, now=t0 + timedelta(minutes=2)) == 2
    assert deliver(app, now=t0 + timedelta(hours=1)) == 0
    assert len(smtp_server.received) == 1
    assert [p.idempotency_key for p in sms_gateway.posts] == ["outage:sms"]
    for message_id in (email_id, sms_id):
        stored = load(app, message_id)
        assert stored.status == MessageStatus.SENT and stored.attempts == 2


def test_worker_once_runs_registered_jobs_then_delivers(app, monkeypatch):
    calls = []

    def escalate():
        calls.append("escalate")
        enqueue(
            channel="console",
            recipient="coord@example.org",
            template="t",
            language="en",
            body="escalated",
            dedupe_key="worker:job-message",
        )

    monkeypatch.setattr(worker, "_registered", [escalate])
    result = app.test_cli_runner().invoke(worker_command, ["--once"])
    assert result.exit_code == 0, result.output
    assert calls == ["escalate"]
    with app.app_context():
        message = db.session.scalar(
            select(Message).where(Message.dedupe_key == "worker:job-message")
        )
        # Delivery runs after the jobs, so what they queued goes out in the same pass.
        assert message.status == MessageStatus.SENT


def test_a_failing_job_is_rolled_back_and_the_others_go_on(app, monkeypatch):
    def broken():
        enqueue(
            channel="console",
            recipient="a@example.org",
            template="t",
            language="en",
            body="half done",
            dedupe_key="worker:broken",
        )
        raise RuntimeError("bug in a job")

    ran = []
    monkeypatch.setattr(worker, "_registered", [broken, lambda: ran.append(True)])
    message_id = queue(
        app, channel="console", recipient="a@example.org", body="b", dedupe_key="worker:survivor"
    )
    result = app.test_cli_runner().invoke(worker_command, ["--once"])
    assert result.exit_code == 0, result.output
    assert ran == [True]
    assert load(app, message_id).status == MessageStatus.SENT
    with app.app_context():
        assert (
            db.session.scalar(select(Message).where(Message.dedupe_key == "worker:broken")) is None
        )


def test_an_unreachable_database_ends_the_pass_and_the_next_pass_works(app):
    # A real OperationalError: nothing listens on port 1.
    dead = sa.create_engine(
        "postgresql+psycopg://postgres@127.0.0.1:1/none", connect_args={"connect_timeout": 2}
    )
    later = []

    def needs_database():
        with dead.connect():
            pass

    message_id = queue(
        app, channel="console", recipient="a@example.org", body="b", dedupe_key="worker:db-down"
    )
    with app.app_context():
        assert run_pass([needs_database, lambda: later.append(True)]) is False
        assert later == []  # the rest of the pass waits for the database
        assert run_pass([deliver_due]) is True
    dead.dispose()
    assert load(app, message_id).status == MessageStatus.SENT


def test_sigterm_stops_the_loop_after_the_current_pass(app, monkeypatch):
    passes = []

    def stop_me():
        passes.append(True)
        os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(worker, "_registered", [stop_me])
    before = signal.getsignal(signal.SIGTERM)
    result = app.test_cli_runner().invoke(worker_command, ["--interval", "0.1"])
    assert result.exit_code == 0, result.output
    assert passes == [True]
    assert signal.getsignal(signal.SIGTERM) is before


@pytest.mark.postgres
@pytest.mark.no_transaction  # two workers need two real transactions
def test_two_workers_deliver_each_message_exactly_once(app, sms_gateway):
    prefix = f"two-workers:{uuid.uuid4().hex}"
    with app.app_context():
        messages = [
            enqueue(
                channel="sms",
                recipient=f"+1612555{n:04d}",
                template="t",
                language="en",
                body=f"sms {n}",
                dedupe_key=f"{prefix}:{n}",
            )
            if n % 2
            else enqueue(
                channel="console",
                recipient=f"staff{n}@example.org",
                template="t",
                language="en",
                body=f"console {n}",
                dedupe_key=f"{prefix}:{n}",
            )
            for n in range(40)
        ]
        db.session.commit()
        console_ids = [m.id for m in messages if m.channel == "console"]
        sms_keys = [m.dedupe_key for m in messages if m.channel == "sms"]
    barrier = threading.Barrier(2)
    sent = [0, 0]
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            with app.app_context():
                barrier.wait(timeout=30)
                while batch := deliver_due(limit=1):
                    sent[n] += batch
        except BaseException as exc:  # surfaced by the assertions below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(2)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert not errors, errors
        assert sum(sent) == 40
        posted = Counter(p.idempotency_key for p in sms_gateway.posts)
        assert all(posted[key] == 1 for key in sms_keys), posted
        assert all(len(console_lines(app, i)) == 1 for i in console_ids)
        with app.app_context():
            statuses = db.session.scalars(
                select(Message.status).where(Message.dedupe_key.like(f"{prefix}:%"))
            ).all()
        assert Counter(statuses) == {MessageStatus.SENT: 40}
    finally:
        with app.app_context():
            db.session.execute(delete(Message).where(Message.dedupe_key.like(f"{prefix}:%")))
            db.session.commit()
