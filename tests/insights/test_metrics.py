"""Every metric on the constructed history (conftest.py), where the answers are known."""

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from referral_hub.accounts.models import Role
from referral_hub.extensions import db
from referral_hub.insights import definitions
from referral_hub.insights import metrics as m
from referral_hub.insights.localtime import offset_steps
from referral_hub.insights.metrics import Dimension, Filters
from referral_hub.insights.models import Comparator, Goal

from ..conftest import ON_POSTGRES, counting_selects

WEEK = Filters(start=date(2026, 3, 2), end=date(2026, 3, 6))


def test_overall_metrics_have_the_known_values(history, ctx):
    row = m.overall(WEEK)
    assert row.key is None
    assert row.sent == 8  # not the entered-in-error one, not the draft, not the Sundays
    assert row.accepted == 4 and row.accepted_share == 0.5
    # Within each program's own target: r1 (1 h of 4), r2 (3 of 4), r6 (2 of 24); not r3.
    assert row.accepted_in_target == 3 and row.accepted_within_target_share == 3 / 8
    # Hours to accept 1, 2, 3, 6: median 2.5; 90th percentile 3 + 0.7 * (6 - 3).
    assert row.accept_hours_median == pytest.approx(2.5)
    assert row.accept_hours_p90 == pytest.approx(5.1)
    assert row.declined == 3
    assert row.handed_off == 3 and row.handoff_completion == 0.75
    assert row.handoff_hours_median == pytest.approx(10)  # of 5, 10, 20
    assert row.no_show == 1 and row.no_show_share == 0.25
    assert row.escalated == 2 and row.escalation_share == 0.25
    assert row.completed == 2
    # Outbound rides picked up: r1 on time, r2 late, r6 on time; r6's late return is not
    # counted, nor r3's ride that never picked anyone up.
    assert (row.rides_picked_up, row.rides_on_time) == (3, 2)
    assert row.ride_on_time_share == pytest.approx(2 / 3)


def test_by_program(history, ctx):
    rows = {r.key: r for r in m.summary(WEEK, Dimension.PROGRAM)}
    assert set(rows) == {history.housing, history.jobs}
    housing, jobs = rows[history.housing], rows[history.jobs]
    assert housing.label == "Youth Housing" and jobs.label == "Job Start"
    assert (housing.sent, housing.accepted, housing.accepted_in_target) == (5, 3, 2)
    assert housing.accept_hours_median == pytest.approx(3)  # of 1, 3, 6
    assert housing.accept_hours_p90 == pytest.approx(5.4)  # 3 + 0.8 * 3
    assert housing.handoff_completion == pytest.approx(2 / 3)
    assert housing.handoff_hours_median == pytest.approx(7.5)
    assert housing.no_show_share == pytest.approx(1 / 3)
    assert (housing.escalated, housing.rides_picked_up, housing.rides_on_time) == (2, 2, 1)
    assert (jobs.sent, jobs.accepted, jobs.declined, jobs.handed_off) == (3, 1, 2, 1)
    assert jobs.accept_hours_median == jobs.accept_hours_p90 == pytest.approx(2)
    assert jobs.handoff_hours_median == pytest.approx(20)
    assert jobs.no_show_share == 0 and jobs.escalated == 0
    assert jobs.ride_on_time_share == 1
    # Ordered by name.
    assert [r.label for r in m.summary(WEEK, Dimension.PROGRAM)] == ["Job Start", "Youth Housing"]


@pytest.mark.parametrize(
    ("by", "housing_key", "jobs_key"),
    [
        (Dimension.ZIP, "55415", "55404"),
        (Dimension.ROLE, Role.RESPONDER, Role.COORDINATOR),
        (Dimension.ORGANIZATION, "provider_a", "provider_b"),
        (Dimension.REFERRING_ORG, "team", "city"),
    ],
)
def test_other_groupings_split_the_same_way(history, ctx, by, housing_key, jobs_key):
    keys = {"provider_a", "provider_b", "team", "city"}
    housing_key = getattr(history, housing_key) if housing_key in keys else housing_key
    jobs_key = getattr(history, jobs_key) if jobs_key in keys else jobs_key
    rows = {r.key: r for r in m.summary(WEEK, by)}
    assert set(rows) == {housing_key, jobs_key}
    assert (rows[housing_key].sent, rows[housing_key].accepted) == (5, 3)
    assert (rows[jobs_key].sent, rows[jobs_key].accepted) == (3, 1)
    assert rows[housing_key].accept_hours_median == pytest.approx(3)
    assert all(isinstance(r.label, str) and r.label for r in rows.values())


def test_role_labels_are_translated_titles(history, ctx):
    labels = {r.key: r.label for r in m.summary(WEEK, Dimension.ROLE)}
    assert labels == {Role.RESPONDER: "Responder", Role.COORDINATOR: "Coordinator"}


def test_a_referral_counts_in_each_category_of_its_program(history, ctx):
    rows = {r.key: r for r in m.summary(WEEK, Dimension.CATEGORY)}
    assert set(rows) == {"housing", "employment", "legal"}
    assert rows["housing"].sent == 5 and rows["housing"].label == "Housing or shelter"
    assert rows["employment"].sent == rows["legal"].sent == 3
    assert rows["legal"].handoff_hours_median == pytest.approx(20)


def test_weeks_are_cut_in_city_time_across_the_clock_change(history, ctx):
    rows = m.summary(Filters(program_id=history.housing), Dimension.WEEK)
    # Sunday 1 March 23:30 is already Monday in UTC, and Sunday 8 March 23:30 (after the
    # clocks went forward) is Monday 9 March in UTC: both stay in their city week.
    assert [(r.key, r.sent) for r in rows] == [(date(2026, 2, 23), 1), (date(2026, 3, 2), 6)]
    assert [r.label for r in rows] == ["2026-02-23", "2026-03-02"]
    ranged = m.summary(Filters(start=date(2026, 2, 1), end=date(2026, 3, 31)), Dimension.WEEK)
    assert [(r.key, r.sent) for r in ranged] == [(date(2026, 2, 23), 1), (date(2026, 3, 2), 9)]


def test_offset_steps_find_the_clock_changes():
    year = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 12, 31, tzinfo=UTC)
    assert offset_steps(ZoneInfo("America/Chicago"), *year) == [
        (year[0], -6 * 3600),
        (datetime(2026, 3, 8, 8, 0, tzinfo=UTC), -5 * 3600),
        (datetime(2026, 11, 1, 7, 0, tzinfo=UTC), -6 * 3600),
    ]
    assert offset_steps(ZoneInfo("Asia/Kolkata"), *year) == [(year[0], 19800)]


def test_date_range_is_in_city_days(history, ctx):
    # 2 March in the city: r1, r2, r6, but not Sunday night's referral (2 March in UTC).
    assert m.overall(Filters(start=date(2026, 3, 2), end=date(2026, 3, 2))).sent == 3
    assert m.overall(Filters(start=date(2026, 3, 1), end=date(2026, 3, 1))).sent == 1
    assert m.overall(Filters(end=date(2026, 3, 1))).sent == 1
    assert m.overall(Filters(start=date(2026, 3, 8))).sent == 1
    assert m.overall(Filters()).sent == 10


def test_week_filter_narrows_to_that_week(history, ctx):
    assert m.overall(Filters(week=date(2026, 3, 4))).sent == 9  # Monday 2 to Sunday 8
    assert m.overall(Filters(week=date(2026, 3, 4), end=date(2026, 3, 6))).sent == 8
    assert m.overall(Filters(week=date(2026, 2, 25))).sent == 1


@pytest.mark.parametrize(
    ("filters", "sent", "accepted"),
    [
        ({"program_id": "housing"}, 5, 3),
        ({"organization_id": "provider_b"}, 3, 1),
        ({"category": "legal"}, 3, 1),
        ({"category": "housing"}, 5, 3),
        ({"category": "food"}, 0, 0),
        ({"referring_org_id": "team"}, 5, 3),
        ({"role": "coordinator"}, 3, 1),
        ({"role": Role.RESPONDER}, 5, 3),
        ({"role": "dispatcher"}, 0, 0),
        ({"zip": "55404"}, 3, 1),
        ({"zip": "55415", "role": "responder"}, 5, 3),
        ({"zip": "55415", "role": "coordinator"}, 0, 0),
    ],
)
def test_filters(history, ctx, filters, sent, accepted):
    ids = {"housing", "provider_b", "team"}
    values = {
        k: getattr(history, v) if v in ids and k != "category" else v for k, v in filters.items()
    }
    row = m.overall(Filters(start=WEEK.start, end=WEEK.end, **values))
    assert (row.sent, row.accepted) == (sent, accepted)


def test_nothing_to_count_gives_one_empty_row_or_none(history, ctx):
    empty = Filters(start=date(2025, 1, 1), end=date(2025, 1, 31))
    row = m.overall(empty)
    assert row.sent == 0 and row.accepted_share is None and row.accept_hours_median is None
    assert row.label == "All referrals"
    assert m.summary(empty, Dimension.PROGRAM) == []
    assert m.decline_reasons(empty) == []


def test_within_hours_replaces_the_programs_targets(history, ctx):
    row = m.overall(WEEK, within_hours=2)  # r1 (1 h) and r6 (2 h)
    assert row.accepted_in_target == 2 and row.accepted_within_target_share == 0.25


def test_decline_reasons(history, ctx):
    rows = m.decline_reasons(WEEK)
    assert [(r.code, r.count, r.title) for r in rows] == [
        ("no_capacity", 2, "No capacity"),
        ("not_eligible", 1, "Not eligible"),
    ]
    assert [r.share for r in rows] == [pytest.approx(2 / 3), pytest.approx(1 / 3)]
    by_program = m.decline_reasons(WEEK, Dimension.PROGRAM)
    assert [(r.label, r.code, r.count, r.share) for r in by_program] == [
        ("Job Start", "no_capacity", 1, 0.5),
        ("Job Start", "not_eligible", 1, 0.5),
        ("Youth Housing", "no_capacity", 1, 1.0),
    ]


def test_outcomes(history, ctx):
    rows = m.outcomes(WEEK, Dimension.PROGRAM)
    assert [(r.key, r.code, r.title, r.count, r.share) for r in rows] == [
        (history.jobs, "employed", "Employed", 1, 1.0),
        (history.housing, "enrolled", "Enrolled", 1, 1.0),
    ]


def test_a_fixed_number_of_queries(app, history):
    with app.test_request_context(), counting_selects(app) as selects:
        m.summary(WEEK, Dimension.PROGRAM)
    # Counts and rides from the tallies, then the accepted referrals' durations (on
    # PostgreSQL in the same query as the share within target; SQLite adds one per duration).
    assert len(selects) == (2 if ON_POSTGRES else 4)
    with app.test_request_context(), counting_selects(app) as selects:
        m.summary(WEEK, Dimension.ROLE)
    # A role is not tallied: everything from the referrals, in one query on PostgreSQL.
    assert len(selects) == (1 if ON_POSTGRES else 3)
    with app.test_request_context(), counting_selects(app) as selects:
        m.summary(WEEK, Dimension.CATEGORY, metrics={"accepted_share"})
    assert len(selects) == 1


def test_every_row_metric_has_a_definition_and_back(history, ctx):
    row = m.overall(WEEK)
    for key in m.metric_keys():
        metric = definitions.get(key)
        assert str(metric.title) and str(metric.definition) and metric.version >= 1
        assert metric.goal
        row.value(key)  # every goal-able metric can be read off a row
    assert {d.key for d in definitions.GOAL_METRICS} <= set(m.metric_keys())


def _goal(**fields) -> Goal:
    goal = Goal(**fields)
    db.session.add(goal)
    db.session.flush()
    return goal


def test_goal_progress(history, ctx):
    accept_in_4h = _goal(
        program_id=history.housing,
        metric="accepted_within_target_share",
        comparator=Comparator.AT_LEAST,
        target=0.9,
        within_hours=4,
    )
    progress = m.goal_progress(accept_in_4h, WEEK)
    assert (progress.value, progress.sample, progress.met) == (0.4, 5, False)  # r1, r2 of 5

    handoffs = _goal(
        category="employment",
        metric="handoff_completion",
        comparator=Comparator.AT_LEAST,
        target=0.8,
    )
    assert (m.goal_progress(handoffs, WEEK).value, m.goal_progress(handoffs, WEEK).met) == (
        1.0,
        True,
    )

    median = _goal(
        program_id=history.housing,
        metric="accept_hours_median",
        comparator=Comparator.AT_MOST,
        target=4,
    )
    assert m.goal_progress(median, WEEK).value == pytest.approx(3)
    assert m.goal_progress(median, WEEK).met is True
    # The goal's scope wins over the dashboard's: another program's filter is replaced.
    scoped = m.goal_progress(median, Filters(start=WEEK.start, end=WEEK.end, program_id=-1))
    assert scoped.value == pytest.approx(3)


def test_goal_progress_with_nothing_to_measure(history, ctx):
    quiet = Filters(start=date(2025, 1, 1), end=date(2025, 1, 2))
    share = _goal(
        program_id=history.jobs,
        metric="no_show_share",
        comparator=Comparator.AT_MOST,
        target=0.1,
    )
    assert (m.goal_progress(share, quiet).value, m.goal_progress(share, quiet).met) == (None, None)
    count = _goal(
        program_id=history.jobs, metric="escalations", comparator=Comparator.AT_MOST, target=0
    )
    progress = m.goal_progress(count, quiet)
    assert (progress.value, progress.sample, progress.met) == (0, 0, True)


def test_goal_progress_defaults_to_the_last_30_days(history, ctx):
    goal = _goal(
        program_id=history.housing,
        metric="referrals_sent",
        comparator=Comparator.AT_LEAST,
        target=1,
    )
    # The history is in March 2026, which "the last 30 days" from today may not reach; the
    # default must still answer, with a count.
    assert m.goal_progress(goal).value >= 0


def test_goal_must_have_exactly_one_scope(history, ctx):
    import sqlalchemy as sa

    for fields in ({}, {"program_id": history.housing, "category": "housing"}):
        with pytest.raises(sa.exc.IntegrityError), db.session.begin_nested():
            _goal(metric="referrals_sent", comparator=Comparator.AT_LEAST, target=1, **fields)
