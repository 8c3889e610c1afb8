"""Faults: a mail gateway that is down never blocks a referral; a database restart heals."""

import socket

import pytest
import sqlalchemy as sa
from sqlalchemy import select, text
from sqlalchemy.pool import NullPool

from referral_hub.extensions import db
from referral_hub.notify.models import Message
from referral_hub.referrals.models import Referral, Status

from ..conftest import ON_POSTGRES, make_test_app


def _dead_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # closed again on exit: nothing listens there


def test_referral_is_sent_while_mail_is_down_and_the_message_waits(app, client, world, api_token):
    app.config.update(NOTIFY_STAFF_CHANNEL="email", SMTP_PORT=_dead_port(), NOTIFY_TIMEOUT=2)
    try:
        response = client.post(
            "/api/v1/referrals",
            headers={"Authorization": f"Bearer {api_token(world.responder)}"},
            json={
                "client_id": world.client.id,
                "program_id": world.program.id,
                "consent_id": world.consent.id,
            },
        )
        assert response.status_code == 201
        result = app.test_cli_runner().invoke(args=["worker", "--once"])
        assert result.exit_code == 0, result.output
        with app.app_context():
            referral = db.session.get(Referral, response.get_json()["id"])
            assert referral.status == Status.SENT
            messages = db.session.scalars(
                select(Message).where(Message.referral_id == referral.id)
            ).all()
            assert messages and all(m.status.value == "pending" for m in messages)
            assert all(m.attempts == 1 and m.last_error for m in messages)
    finally:
        app.config.update(NOTIFY_STAFF_CHANNEL="console", SMTP_PORT=25, NOTIFY_TIMEOUT=10)


@pytest.mark.skipif(not ON_POSTGRES, reason="needs PostgreSQL: set TEST_DATABASE_URL")
@pytest.mark.no_transaction
def test_app_recovers_after_the_database_drops_its_connections(app, tmp_path):
    # Its own app and engine: exactly one pooled connection, the one that will be killed.
    own = make_test_app(app.config["SQLALCHEMY_DATABASE_URI"], str(tmp_path))
    client = own.test_client()
    assert client.get("/healthz").status_code == 200
    with own.app_context():
        assert db.engine.pool.checkedin() == 1
        with db.engine.connect() as pooled:
            pid = pooled.exec_driver_sql("SELECT pg_backend_pid()").scalar()
        url = db.engine.url
    # What a server restart does to that connection, from outside the pool.
    outside = sa.create_engine(url, poolclass=NullPool)
    with outside.connect() as admin:
        assert admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}).scalar()
    outside.dispose()
    assert client.get("/healthz").status_code == 200
    assert client.get("/login").status_code == 200
    with own.app_context():
        db.engine.dispose()
