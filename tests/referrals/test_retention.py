"""Retention: personal data goes, states and events (and so metrics) stay."""

from datetime import timedelta

from referral_hub.core.db import utcnow
from referral_hub.extensions import db
from referral_hub.referrals import operations as ops
from referral_hub.referrals.models import Client, ReferralEvent, Status

from .conftest import load, provider


def _close(app, world, referral_id, days_ago):
    with app.test_request_context():
        referral = load(referral_id)
        ops.perform(
            referral,
            "decline",
            provider(world),
            reason_code="no_capacity",
            note="spoke with Amina's sister",
        )
        referral.closed_at = utcnow() - timedelta(days=days_ago)
        db.session.commit()


def test_retention_anonymises_only_clients_past_their_time(app, world, send):
    referral_id = send(note="Amina at 12 Elm St")
    _close(app, world, referral_id, days_ago=400)
    cli = app.test_cli_runner()
    dry = cli.invoke(args=["retention", "run", "--days", "365", "--dry-run"])
    assert "Would anonymise 1 clients" in dry.output
    with app.app_context():
        assert db.session.get(Client, world.client.id).phone is not None
    result = cli.invoke(args=["retention", "run", "--days", "365"])
    assert result.exit_code == 0 and "Anonymised 1 clients" in result.output
    with app.app_context():
        client = db.session.get(Client, world.client.id)
        assert client.phone is None and client.birth_year is None
        assert client.display_name != "Amina" and client.anonymized_at is not None
        referral = load(referral_id)
        assert referral.note is None and referral.reason_note is None
        assert referral.status == Status.DECLINED and referral.reason_code == "no_capacity"
        events = db.session.query(ReferralEvent).filter_by(referral_id=referral_id).count()
        assert events == 2
    again = cli.invoke(args=["retention", "run", "--days", "365"])
    assert "Anonymised 0 clients" in again.output


def test_open_or_recent_referrals_keep_the_client(app, world, send):
    closed = send()
    _close(app, world, closed, days_ago=400)
    send()  # still open
    result = app.test_cli_runner().invoke(args=["retention", "run", "--days", "365"])
    assert "Anonymised 0 clients" in result.output
    with app.app_context():
        assert db.session.get(Client, world.client.id).display_name == "Amina"
