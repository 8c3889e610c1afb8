"""Client links: random tokens stored as hashes, expiry from the referral's dates, created when
a referral is sent and revoked when it is cancelled."""

from datetime import timedelta

import pytest
from sqlalchemy import select

from referral_hub.accounts.models import User
from referral_hub.core.db import utcnow
from referral_hub.core.errors import Conflict
from referral_hub.core.security import token_hash
from referral_hub.extensions import db
from referral_hub.portal import operations as ops
from referral_hub.portal.models import ClientLink
from referral_hub.referrals import operations as referral_ops
from referral_hub.referrals.models import Referral, ReferralEvent
from tests.referrals.conftest import provider, referrer


def links_of(referral_id: int) -> list[ClientLink]:
    return list(
        db.session.scalars(
            select(ClientLink).where(ClientLink.referral_id == referral_id).order_by(ClientLink.id)
        )
    )


def test_sending_a_referral_creates_a_link(app, send):
    referral_id = send()
    with app.app_context():
        links = links_of(referral_id)
        assert len(links) == 1
        assert links[0].revoked_at is None
        assert links[0].created_by_id is not None
        assert links[0].expires_at > utcnow() + timedelta(days=13)


def test_only_the_hash_of_a_long_random_token_is_stored(app, send):
    referral_id = send()
    with app.test_request_context():
        token = ops.create_link(db.session.get(Referral, referral_id), None)
        other = ops.create_link(db.session.get(Referral, referral_id), None)
        db.session.commit()
        assert token.startswith("c_") and token != other
        assert len(token.removeprefix("c_")) * 6 >= 128  # base64url: 6 bits a character
        link = ops.link_for_token(token)
        assert link is not None and link.token_hash == token_hash(token)
        rows = db.session.execute(select(ClientLink.__table__)).all()
        assert not any(token in str(value) for row in rows for value in row)


def test_unknown_revoked_and_expired_tokens_all_give_none(app, send):
    referral_id = send()
    with app.test_request_context():
        referral = db.session.get(Referral, referral_id)
        live = ops.create_link(referral, None)
        old = ops.create_link(referral, None, now=utcnow() - timedelta(days=30))
        revoked = ops.create_link(referral, None)
        db.session.get(ClientLink, ops.link_for_token(revoked).id).revoked_at = utcnow()
        db.session.commit()
        assert ops.link_for_token(live) is not None
        assert ops.link_for_token(old) is None
        assert ops.link_for_token(revoked) is None
        assert ops.link_for_token("c_" + "A" * 43) is None
        assert ops.link_for_token("") is None
        assert ops.link_for_token("c_" + "A" * 200) is None


def test_a_new_link_keeps_older_ones_unless_asked_to_revoke(app, send):
    referral_id = send()
    with app.test_request_context():
        referral = db.session.get(Referral, referral_id)
        first = ops.create_link(referral, None)
        second = ops.create_link(referral, None)
        assert ops.link_for_token(first) and ops.link_for_token(second)
        third = ops.create_link(referral, None, revoke=True)
        assert ops.link_for_token(first) is None and ops.link_for_token(second) is None
        assert ops.link_for_token(third) is not None


def test_an_appointment_set_later_extends_the_link(app, world, send):
    referral_id = send()
    appointment = utcnow() + timedelta(days=30)
    with app.test_request_context():
        referral = db.session.get(Referral, referral_id)
        token = ops.create_link(referral, None)
        referral_ops.perform(referral, "accept", provider(world), appointment_at=appointment)
        db.session.commit()
        assert ops.link_for_token(token, now=utcnow() + timedelta(days=20)) is not None
        assert ops.link_for_token(token, now=appointment + timedelta(days=13)) is not None
        assert ops.link_for_token(token, now=appointment + timedelta(days=15)) is None


def test_days_after_closing_count_from_the_closing(app, world, send):
    referral_id = send()
    with app.test_request_context():
        referral = db.session.get(Referral, referral_id)
        token = ops.create_link(referral, None)
        referral_ops.perform(referral, "decline", provider(world), reason_code="no_capacity")
        db.session.commit()
        closed_at = db.session.get(Referral, referral_id).closed_at
        # Declined is not cancelled: the client still reads the answer for a while.
        assert ops.link_for_token(token) is not None
        assert ops.link_for_token(token, now=closed_at + timedelta(days=13)) is not None
        assert ops.link_for_token(token, now=closed_at + timedelta(days=14)) is None


def test_the_setting_decides_the_days(app, send, monkeypatch):
    monkeypatch.setitem(app.config, "CLIENT_LINK_DAYS_AFTER", 2)
    referral_id = send()
    with app.test_request_context():
        token = ops.create_link(db.session.get(Referral, referral_id), None)
        assert ops.link_for_token(token, now=utcnow() + timedelta(days=1)) is not None
        assert ops.link_for_token(token, now=utcnow() + timedelta(days=3)) is None


def test_cancelling_the_referral_revokes_its_links(app, world, send):
    referral_id = send()
    with app.test_request_context():
        referral = db.session.get(Referral, referral_id)
        token = ops.create_link(referral, None)
        referral_ops.perform(referral, "cancel", referrer(world), reason_code="client_declined")
        db.session.commit()
        assert ops.link_for_token(token) is None
        assert all(link.revoked_at is not None for link in links_of(referral_id))
        with pytest.raises(Conflict):
            ops.create_link(db.session.get(Referral, referral_id), None)


def test_entered_in_error_revokes_too(app, world, send):
    referral_id = send()
    with app.test_request_context():
        referral = db.session.get(Referral, referral_id)
        token = ops.create_link(referral, None)
        coordinator = referral_ops.Actor(
            frozenset({referral_ops.Side.COORDINATOR}),
            user=db.session.get(User, world.coordinator.id),
        )
        referral_ops.perform(referral, "enter_in_error", coordinator, reason_note="Wrong person")
        db.session.commit()
        assert ops.link_for_token(token) is None


def test_a_link_on_demand_is_noted_on_the_referral(app, world, send):
    referral_id = send()
    with app.test_request_context():
        referral = db.session.get(Referral, referral_id)
        ops.issue_link(referral, db.session.get(User, world.responder.id))
        db.session.commit()
        actions = db.session.scalars(
            select(ReferralEvent.action).where(ReferralEvent.referral_id == referral_id)
        ).all()
        assert actions == ["send", "client_link"]
