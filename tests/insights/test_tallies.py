"""The daily tallies: always what a rewrite from the referrals would give, and answering the
same as the referrals themselves; on PostgreSQL also when two transactions change
referrals of the same day and program at once."""

import threading
from dataclasses import fields

import pytest
from sqlalchemy import delete, select

from referral_hub.extensions import db
from referral_hub.insights import metrics as m
from referral_hub.insights import tallies
from referral_hub.insights.metrics import Dimension, Filters
from referral_hub.insights.models import ReferralDayCode, ReferralDayTally
from referral_hub.referrals import operations as ops
from referral_hub.referrals.lifecycle import Side
from referral_hub.referrals.models import Referral, Status
from referral_hub.transport.models import Ride
from tests.conftest import ON_POSTGRES
from tests.insights.conftest import local
from tests.referrals.test_concurrency import _setup as race_referrals

WEEKS = Filters(start=local(1, 12).date(), end=local(20, 12).date())
TALLIED = [None, Dimension.PROGRAM, Dimension.ORGANIZATION, Dimension.CATEGORY]
TALLIED += [Dimension.REFERRING_ORG, Dimension.WEEK]


def snapshot() -> list[tuple]:
    """Every tally and code row, without ids and timestamps, in one order."""
    t, c = ReferralDayTally, ReferralDayCode
    group = (t.day, t.program_id, t.provider_org_id, t.referring_org_id)
    counts = [getattr(t, name) for name in tallies.TALLIED]
    rows = db.session.execute(select(*group, *counts).order_by(*group)).all()
    codes = db.session.execute(
        select(
            c.day, c.program_id, c.provider_org_id, c.referring_org_id, c.status, c.code, c.count
        )
    ).all()
    return [tuple(r) for r in rows] + sorted((tuple(r) for r in codes), key=repr)


def rebuilt() -> list[tuple]:
    """The tallies as a rewrite from scratch gives them."""
    tallies.rebuild(db.session.connection())
    return snapshot()


def test_history_tallies_match_a_rewrite_from_scratch(history, ctx):
    kept = snapshot()
    assert kept, "the constructed history has tallies"
    assert sum(row[4] for row in kept if len(row) == 4 + len(tallies.TALLIED)) > 0
    assert kept == rebuilt()


def test_each_change_rewrites_its_day(history, ctx):
    """A referral accepted, a ride picked up on time, a referral sent and another declined:
    the tallies follow each flush."""
    referral = db.session.get(Referral, history.referrals["r5"])
    day = tallies.day_of(referral.sent_at)

    # The rewrite replaces the rows: read the numbers, not a row object.
    counts = select(ReferralDayTally.sent, ReferralDayTally.accepted).where(
        ReferralDayTally.day == day,
        ReferralDayTally.program_id == referral.program_id,
        ReferralDayTally.referring_org_id == referral.referring_org_id,
    )
    before = db.session.execute(counts).one()
    sent, accepted = before.sent, before.accepted
    referral.status = Status.ACCEPTED
    referral.accepted_at = referral.sent_at
    db.session.flush()
    after = db.session.execute(counts).one()
    assert (after.sent, after.accepted) == (sent, accepted + 1)

    referral.status = Status.ENTERED_IN_ERROR  # no longer counted at all
    db.session.flush()
    after = db.session.execute(counts).one_or_none() or (0, 0)  # the row goes with the last
    assert tuple(after) == (sent - 1, accepted)
    assert snapshot() == rebuilt()


def test_a_ride_rewrites_its_referrals_day(history, ctx):
    ride = db.session.scalars(select(Ride).where(Ride.picked_up_at.is_not(None))).first()
    day = tallies.day_of(ride.referral.sent_at)
    where = (ReferralDayTally.day == day, ReferralDayTally.program_id == ride.referral.program_id)
    picked = db.session.scalar(select(ReferralDayTally.rides_picked_up).where(*where))
    db.session.delete(ride)
    db.session.flush()
    assert db.session.scalar(select(ReferralDayTally.rides_picked_up).where(*where)) == picked - 1
    assert snapshot() == rebuilt()


@pytest.mark.parametrize("by", TALLIED, ids=lambda by: str(by))
def test_tallies_answer_as_the_referrals_do(history, ctx, monkeypatch, by):
    from_tallies = m.summary(WEEKS, by)
    reasons = m.decline_reasons(WEEKS, by)
    monkeypatch.setattr(m, "_tallied", lambda filters, by: False)
    assert from_tallies == m.summary(WEEKS, by)
    assert reasons == m.decline_reasons(WEEKS, by)
    # The tallies answered from rows, not from an empty table.
    assert sum(row.sent for row in from_tallies) > 0


def test_summaries_reads_the_whole_and_programs_together(history, ctx):
    together = m.summaries(WEEKS, [None, Dimension.PROGRAM, Dimension.CATEGORY])
    for by, rows in together.items():
        assert rows == m.summary(WEEKS, by)
        for row in rows:
            assert {f.name for f in fields(row)} >= {"sent", "accept_hours_median"}


def test_bulk_rows_need_a_rebuild(history, ctx):
    """Rows written past the session (COPY, executemany) are not seen until rebuild()."""
    db.session.execute(delete(ReferralDayTally))
    db.session.execute(delete(ReferralDayCode))
    assert m.overall(WEEKS).sent == 0
    tallies.rebuild(db.session.connection())
    assert m.overall(WEEKS).sent > 0


# --- two transactions at once (PostgreSQL) ---------------------------------------------------

PAIRS = 10


@pytest.mark.postgres
@pytest.mark.no_transaction
@pytest.mark.skipif(not ON_POSTGRES, reason="needs PostgreSQL: set TEST_DATABASE_URL")
def test_concurrent_changes_on_one_day_are_all_counted(app, committed):
    """Pairs of referrals of one program sent the same day, accepted at the same moment by
    two transactions: each transaction rewrites the same tally, and neither is lost."""
    ids = race_referrals(app)[: 2 * PAIRS]

    def accept(referral_id: int, barrier: threading.Barrier) -> None:
        with app.test_request_context():
            try:
                referral = db.session.get(Referral, referral_id)
                barrier.wait(timeout=10)
                ops.perform(referral, "accept", ops.Actor(frozenset(Side), label="staff"))
                db.session.commit()
            finally:
                db.session.remove()

    for n in range(PAIRS):
        barrier = threading.Barrier(2)
        threads = [
            threading.Thread(target=accept, args=(ids[2 * n + i], barrier)) for i in range(2)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)

    with app.app_context():
        accepted = db.session.scalar(select(db.func.sum(ReferralDayTally.accepted)))
        assert accepted == 2 * PAIRS
        kept = snapshot()
        assert kept == rebuilt()
        db.session.rollback()


def test_rebuild_command_restores_lost_tallies(app, history):
    cli = app.test_cli_runner()
    with app.test_request_context():
        kept = snapshot()
        db.session.execute(delete(ReferralDayTally))
        db.session.execute(delete(ReferralDayCode))
        db.session.flush()
    result = cli.invoke(args=["insights", "rebuild-tallies"])
    assert result.exit_code == 0, result.output
    sent = sum(row[4] for row in kept if len(row) == 4 + len(tallies.TALLIED))
    assert f"Tallied {sent} referrals over" in result.output
    with app.test_request_context():
        assert snapshot() == kept
