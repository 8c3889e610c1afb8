"""The synthetic referral history: counts, shares, and every referral and ride telling a story
the lifecycle tables allow, in time order, with the fields its final state needs."""

from collections import defaultdict
from datetime import UTC, datetime, time, timedelta
from itertools import pairwise

import pytest
from sqlalchemy import func, select

from referral_hub.accounts.models import Organization, OrgKind, Role
from referral_hub.directory import operations as directory
from referral_hub.extensions import db
from referral_hub.insights import synthetic_history
from referral_hub.insights.models import ScreeningRecord
from referral_hub.referrals.lifecycle import BY_ACTION, CANCEL_REASONS, DECLINE_REASONS, OUTCOMES
from referral_hub.referrals.models import TERMINAL, Client, Referral, ReferralEvent, Status
from referral_hub.transport.lifecycle import RIDE_BY_ACTION
from referral_hub.transport.models import RIDE_TERMINAL, Driver, Ride, RideEvent, Vehicle

NOW = datetime(2026, 6, 15, 17, 30, tzinfo=UTC)
NOTES = {"ride_booked", "ride_no_show"}


@pytest.fixture
def city(app, make_org, make_user) -> None:
    """Two providers with four programs at sites in Minneapolis, a responder team, a
    coordinator and a transport vendor with a driver and a van."""
    providers = [make_org(OrgKind.PROVIDER), make_org(OrgKind.PROVIDER)]
    team = make_org(OrgKind.RESPONDER_TEAM)
    make_user(Role.RESPONDER, org=team)
    make_user(Role.RESPONDER, org=team)
    make_user(Role.PROVIDER_STAFF, org=providers[0])
    make_user(Role.COORDINATOR)
    vendor = make_org(OrgKind.TRANSPORT_VENDOR)
    programs = [
        (0, "Youth Housing", "housing", 4),
        (0, "Job Start", "employment", 24),
        (1, "Safe Harbor", "victim_services", 4),
        (1, "Food Shelf", "food", 48),
    ]
    with app.test_request_context():
        for n, (which, name, category, hours) in enumerate(programs):
            org = db.session.get(Organization, providers[which].id)
            program = directory.create_program(
                org, name=name, categories=[category], response_target_hours=hours
            )
            site = directory.create_site(
                org,
                name=f"{name} office",
                address_1=f"{n + 1} Main St",
                postal_code="55415",
                latitude=44.97 + n / 100,
                longitude=-93.26,
            )
            directory.offer_at(program, site, weekly=[(d, time(9), time(17)) for d in range(5)])
        db.session.add(Driver(organization_id=vendor.id, first_name="Sam", last_name="Lee"))
        db.session.add(Vehicle(organization_id=vendor.id, label="Van 1"))
        db.session.commit()


def build(app, count: int, **kwargs) -> dict[str, int]:
    with app.app_context():
        counts = synthetic_history.build_history(count, days=365, seed=5, now=NOW, **kwargs)
        db.session.commit()
    return counts


def marked_referrals():
    return (
        select(Referral)
        .join(Client, Client.id == Referral.client_id)
        .where(Client.name_key.like(f"{synthetic_history.MARK} %"))
        .order_by(Referral.id)
    )


def events_by_referral(model=ReferralEvent, key="referral_id") -> dict[int, list]:
    grouped = defaultdict(list)
    for event in db.session.scalars(select(model).order_by(model.id)):
        grouped[getattr(event, key)].append(event)
    return grouped


def test_counts_match_the_rows_and_shares_are_realistic(app, city):
    counts = build(app, 2000)
    with app.app_context():
        referrals = db.session.scalars(marked_referrals()).all()
        ids = [r.id for r in referrals]
        assert counts["referrals"] == len(referrals) == 2000
        for model, name in (
            (ReferralEvent, "referral_events"),
            (Ride, "rides"),
            (Client, "clients"),
            (RideEvent, "ride_events"),
            (ScreeningRecord, "screening_records"),
        ):
            assert counts[name] == db.session.scalar(select(func.count()).select_from(model))
        assert counts["screening_records"] == 2 * 2000
        assert 4 <= counts["referral_events"] / 2000 <= 6
        assert ids == list(range(ids[0], ids[0] + 2000))  # ids follow the time of sending

        def share(rows, test) -> float:
            rows = list(rows)
            return sum(1 for r in rows if test(r)) / len(rows)

        accepted = [r for r in referrals if r.accepted_at is not None]
        assert 0.62 <= len(accepted) / 2000 <= 0.78
        assert 0.09 <= share(referrals, lambda r: r.status == Status.DECLINED) <= 0.2
        assert 0.01 <= share(referrals, lambda r: r.reason_code == "expired") <= 0.1
        assert 0.65 <= share(accepted, lambda r: r.handed_off_at is not None) <= 0.85
        assert 0.04 <= share(accepted, lambda r: r.status == Status.NO_SHOW) <= 0.13
        assert 0.02 <= share(referrals, lambda r: r.escalated_at is not None) <= 0.5
        assert 0.15 <= counts["rides"] / len(accepted) <= 0.4
        # Two years by default; here one, oldest to newest, none in the future.
        sent = sorted(r.sent_at for r in referrals)
        assert sent[0] >= NOW - timedelta(days=366)
        assert sent[0] < NOW - timedelta(days=330)
        assert NOW - timedelta(days=3) < sent[-1] <= NOW


def test_every_referral_tells_a_story_the_lifecycle_allows(app, city):
    build(app, 1500)
    with app.app_context():
        events = events_by_referral()
        statuses = set()
        for referral in db.session.scalars(marked_referrals()):
            statuses.add(referral.status)
            story = events[referral.id]
            send = story[0]
            assert (send.action, send.from_status, send.to_status) == ("send", "draft", "sent")
            assert send.created_at == referral.sent_at == referral.created_at
            times = [e.created_at for e in story]
            assert times == sorted(times) and times[-1] <= NOW
            assert referral.updated_at == times[-1]
            state = Status.SENT
            at: dict[str, datetime] = {}
            for event in story[1:]:
                assert event.from_status == state, (referral.id, event.action)
                if event.action in NOTES:
                    assert event.to_status == state and event.data["ride_id"]
                elif event.action == "escalate":
                    assert event.from_status == event.to_status == Status.SENT
                else:
                    transition = BY_ACTION[event.action]
                    assert event.from_status in transition.sources
                    assert event.to_status == (transition.target or event.to_status)
                state = event.to_status
                at[event.action] = event.created_at
            assert referral.status == state
            assert referral.accepted_at == at.get("accept")
            assert referral.escalated_at == at.get("escalate")
            assert referral.handed_off_at == at.get("hand_off")
            assert (referral.handed_off_to is not None) == ("hand_off" in at)
            if "hand_off" in at:
                assert referral.arrived_at <= referral.handed_off_at
                assert referral.accepted_at < referral.handed_off_at
            if "accept" in at:
                assert referral.appointment_at > referral.accepted_at
            if referral.status in TERMINAL:
                assert referral.closed_at == times[-1]
            else:
                assert referral.closed_at is None
            if referral.status == Status.DECLINED:
                assert referral.reason_code in DECLINE_REASONS
                assert story[-1].reason_code == referral.reason_code
            if referral.status == Status.CANCELLED:
                assert referral.reason_code in CANCEL_REASONS
            if referral.status == Status.COMPLETED:
                assert referral.outcome in OUTCOMES
                assert story[-1].data == {"outcome": referral.outcome}
            if referral.status == Status.SENT:
                # The worker expires an unanswered referral 72 h after its deadline.
                assert referral.sent_at > NOW - timedelta(hours=48 + 73)
        assert {Status.COMPLETED, Status.HANDED_OFF, Status.DECLINED, Status.CANCELLED} <= statuses
        assert {Status.NO_SHOW, Status.ENTERED_IN_ERROR} <= statuses


def test_rides_go_only_with_accepted_referrals_and_agree_with_them(app, city):
    build(app, 1500)
    with app.app_context():
        referral_events = events_by_referral()
        ride_events = events_by_referral(RideEvent, "ride_id")
        rides = db.session.scalars(select(Ride).order_by(Ride.id)).all()
        assert rides
        late = 0
        for ride in rides:
            referral = ride.referral
            story = {e.action: e for e in referral_events[referral.id]}
            assert referral.accepted_at is not None
            assert referral.accepted_at <= ride.created_at
            booked = story["ride_booked"]
            assert booked.data == {"ride_id": ride.id, "leg": "outbound", "mode": ride.mode}
            assert booked.created_at == ride.created_at
            assert ride.window_start_at <= ride.window_end_at < ride.arrive_by_at
            assert ride.arrive_by_at < ride.requested_for_at == referral.appointment_at
            steps = ride_events[ride.id]
            assert steps[0].action == "book" and steps[0].from_status is None
            times = [e.created_at for e in steps]
            assert times == sorted(times) and times[-1] <= NOW
            for before, event in pairwise(steps):
                transition = RIDE_BY_ACTION[event.action]
                assert event.from_status == before.to_status
                assert event.from_status in transition.sources
                assert event.to_status == (transition.target or event.from_status)
            assert ride.status == steps[-1].to_status
            assert (ride.closed_at is not None) == (ride.status in RIDE_TERMINAL)
            if ride.picked_up_at is not None:
                assert story["depart"].created_at == ride.picked_up_at
                late += ride.picked_up_at > ride.window_end_at
            if ride.dropped_off_at is not None:
                assert story["arrive"].created_at == ride.dropped_off_at
                assert ride.dropped_off_at > ride.picked_up_at
            if ride.status == "cancelled":
                assert ride.reason_code == "referral_closed"
                assert referral.closed_at == ride.closed_at
            if ride.driver_id is not None:
                assert ride.mode == "vendor" and ride.vehicle_id is not None
        picked_up = sum(r.picked_up_at is not None for r in rides)
        assert 0.04 <= late / picked_up <= 0.3


def test_screenings_are_anonymous_and_show_unmet_need(app, city):
    build(app, 1000)
    with app.app_context():
        records = db.session.scalars(select(ScreeningRecord)).all()
        assert len(records) == 2000
        assert all(r.created_at.minute == r.created_at.second == 0 for r in records)
        assert all(0 <= r.hour_of_week < 168 and len(r.zip) == 5 for r in records)
        unmet = [r for r in records if not r.any_capacity]
        assert 0.15 <= len(unmet) / len(records) <= 0.5
        # Office-hours-only needs at night: almost never an open site.
        nights = [
            r
            for r in records
            if r.needs == ["victim_services"] and r.hour_of_week % 24 in (0, 1, 2, 3, 4)
        ]
        assert nights and sum(r.any_open for r in nights) / len(nights) < 0.5


def test_same_seed_same_history(app, city):
    def snapshot(seed: int) -> list:
        nested = db.session.begin_nested()
        synthetic_history.build_history(300, days=90, seed=seed, now=NOW)
        # Sorted here: without ORDER BY, PostgreSQL may return rows in any order.
        rows = [
            sorted(
                db.session.execute(select(Referral.uuid, Referral.status, Referral.sent_at)).all()
            ),
            sorted(
                db.session.execute(select(ReferralEvent.created_at, ReferralEvent.action)).all()
            ),
            sorted(
                db.session.execute(select(Ride.uuid, Ride.status, Ride.picked_up_at)).all(),
                key=lambda row: row[0],
            ),
        ]
        nested.rollback()
        return rows

    with app.app_context():
        first = snapshot(5)
        assert first == snapshot(5)
        assert first != snapshot(6)


def test_cli_builds_on_the_demo_and_refuses_a_second_history(app):
    runner = app.test_cli_runner()
    assert runner.invoke(args=["seed", "demo"]).exit_code == 0
    demo_events = (
        select(func.count())
        .select_from(ReferralEvent)
        .join(Referral)
        .join(Client)
        .where(Client.name_key.not_like(f"{synthetic_history.MARK} %"))
    )
    with app.app_context():
        before = db.session.scalar(demo_events)
    result = runner.invoke(args=["seed", "synthetic-history", "--referrals", "300"])
    assert result.exit_code == 0, result.output
    assert "300 referrals" in result.output and "600 screening_records" in result.output

    again = runner.invoke(args=["seed", "synthetic-history", "--referrals", "300"])
    assert again.exit_code == 1
    assert "already has a synthetic history" in again.output

    more = runner.invoke(args=["seed", "synthetic-history", "--referrals", "100", "--append"])
    assert more.exit_code == 0, more.output
    with app.app_context():
        assert len(db.session.scalars(marked_referrals()).all()) == 400
        uuids = db.session.scalars(select(Referral.uuid)).all()
        assert len(set(uuids)) == len(uuids)
        assert db.session.scalar(demo_events) == before  # the demo's history is left alone


def test_cli_explains_what_is_missing_on_an_empty_database(app):
    result = app.test_cli_runner().invoke(args=["seed", "synthetic-history", "--referrals", "10"])
    assert result.exit_code == 1
    assert "seed demo" in result.output
