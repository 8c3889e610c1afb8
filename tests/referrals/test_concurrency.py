"""Two people act on one referral at the same moment: exactly one wins (PostgreSQL)."""

import threading

import pytest

from referral_hub.accounts import operations as accounts
from referral_hub.core.errors import Conflict
from referral_hub.directory import operations as directory
from referral_hub.extensions import db
from referral_hub.referrals import operations as ops
from referral_hub.referrals.lifecycle import Side
from referral_hub.referrals.models import Referral, ReferralEvent, Status

pytestmark = [pytest.mark.postgres, pytest.mark.no_transaction]
REPETITIONS = 50


def _setup(app):
    with app.test_request_context():
        provider = accounts.create_organization(
            name="Race Provider", slug="race-provider", kind="provider"
        )
        team = accounts.create_organization(
            name="Race Team", slug="race-team", kind="responder_team"
        )
        responder = accounts.create_user(
            email="r@example.org", name="R", password=None, organization=team, role="responder"
        )
        program = directory.create_program(provider, name="Race Program", categories=["housing"])
        site = directory.create_site(
            provider,
            name="S",
            address_1="1 St",
            postal_code="55415",
            latitude=44.97,
            longitude=-93.26,
        )
        directory.offer_at(program, site, open_24_7=True)
        client = ops.create_client(team, responder, display_name="C")
        consent = ops.record_consent(client, program, responder, method="verbal")
        ids = []
        for _ in range(REPETITIONS):
            referral = ops.send_referral(
                client=client, program=program, user=responder, organization=team, consent=consent
            )
            ids.append(referral.id)
        db.session.commit()
        return ids


def _race(app, referral_id, first, second):
    barrier = threading.Barrier(2)
    outcomes: dict[str, str] = {}

    def attempt(name, action, fields):
        with app.test_request_context():
            try:
                referral = db.session.get(Referral, referral_id)
                seen = referral.version  # what each person's page showed them
                barrier.wait(timeout=10)
                ops.perform(
                    referral,
                    action,
                    ops.Actor(frozenset(Side), label=name),
                    expected_version=seen,
                    **fields,
                )
                db.session.commit()
                outcomes[name] = "won"
            except Conflict:
                db.session.rollback()
                outcomes[name] = "conflict"
            finally:
                db.session.remove()

    threads = [
        threading.Thread(target=attempt, args=("a", *first)),
        threading.Thread(target=attempt, args=("b", *second)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return outcomes


@pytest.mark.parametrize(
    ("first", "second", "possible"),
    [
        (("accept", {}), ("accept", {}), {Status.ACCEPTED}),
        (
            ("accept", {}),
            ("cancel", {"reason_code": "client_declined"}),
            {Status.ACCEPTED, Status.CANCELLED},
        ),
    ],
    ids=["accept-vs-accept", "accept-vs-cancel"],
)
def test_exactly_one_wins(app, committed, first, second, possible):
    ids = _setup(app)
    for referral_id in ids:
        outcomes = _race(app, referral_id, first, second)
        assert sorted(outcomes.values()) == ["conflict", "won"], outcomes
    with app.app_context():
        for referral_id in ids:
            referral = db.session.get(Referral, referral_id)
            assert referral.status in possible
            # One transition event after "send", never two: no silent overwrite.
            actions = [
                e.action
                for e in db.session.query(ReferralEvent)
                .filter_by(referral_id=referral_id)
                .order_by(ReferralEvent.id)
            ]
            assert actions == ["send", first[0]] or actions == ["send", second[0]]
