"""Goals: a coordinator sets them, validation keeps the input, dashboards show progress."""

import csv
import io
from datetime import date

import pytest

from referral_hub.accounts.models import Organization, Role
from referral_hub.core.errors import ValidationFailed
from referral_hub.extensions import db
from referral_hub.insights import goals as goal_ops
from referral_hub.insights import metrics
from referral_hub.insights.metrics import Dimension, Filters
from referral_hub.insights.models import Comparator, Goal

from ..conftest import csrf_from

WEEK = "start=2026-03-02&end=2026-03-06"
WEEK_FILTERS = Filters(start=date(2026, 3, 2), end=date(2026, 3, 6))


def _post_goal(client, **fields):
    data = {
        "program": "",
        "category": "",
        "metric": "accepted_within_target_share",
        "comparator": "at_least",
        "target": "90",
        "within_hours": "",
        **fields,
    }
    return client.post_form("/insights/goals", data)


def _goals(app) -> list[Goal]:
    with app.app_context():
        return list(db.session.query(Goal).order_by(Goal.id))


def test_coordinator_sets_a_goal_and_sees_its_progress(app, client, login_as, history):
    login_as(Role.COORDINATOR)
    response = _post_goal(client, program=str(history.housing), target="90", within_hours="4")
    assert response.status_code == 302
    [goal] = _goals(app)
    assert goal.program_id == history.housing and goal.category is None
    assert goal.target == pytest.approx(0.9) and goal.within_hours == 4
    assert goal.comparator is Comparator.AT_LEAST and goal.active and goal.created_by_id

    page = client.get("/insights/goals").get_data(as_text=True)
    assert "Goal added" in page
    assert "Youth Housing" in page and "Accepted within the response target" in page
    assert "within 4 hours" in page

    # The dashboard measures it over its period: r1 (1 h) and r2 (3 h) of 5 within 4 hours.
    response = client.get(f"/insights/data.csv?table=goals&{WEEK}")
    [record] = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert record["scope"] == "Youth Housing"
    assert record["target"] == "0.9" and record["value"] == "0.4" and record["sample"] == "5"
    assert record["status"] == "Not met"
    html = client.get(f"/insights?{WEEK}").get_data(as_text=True)
    assert "40%" in html and "Not met" in html


def test_a_category_goal_is_met(app, client, login_as, history):
    login_as(Role.COORDINATOR)
    response = _post_goal(
        client, category="housing", metric="handoff_completion", comparator="at_least", target="50"
    )
    assert response.status_code == 302
    response = client.get(f"/insights/data.csv?table=goals&{WEEK}")
    [record] = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert record["scope"] == "Housing or shelter"
    assert record["value"] == str(round(2 / 3, 4)) and record["sample"] == "3"
    assert record["status"] == "Met"


@pytest.mark.parametrize(
    "fields, field, message",
    [
        ({"program": "", "category": ""}, "program", "Choose either one program or one category."),
        ({"category": "housing", "program": "PROGRAM"}, "category", "Choose either one program"),
        ({"category": "housing", "target": "150"}, "target", "Give a percentage from 0 to 100."),
        ({"category": "housing", "target": ""}, "target", "Give a target."),
        ({"category": "housing", "target": "-5"}, "target", "Number must be at least 0."),
        (
            {"category": "housing", "metric": "handoff_completion", "within_hours": "4"},
            "within_hours",
            "Hours only apply to acceptance within the response target.",
        ),
        ({"category": "housing", "metric": "outcomes"}, "metric", "Not a valid choice"),
    ],
)
def test_a_wrong_goal_is_refused_and_the_form_keeps_the_input(
    app, client, login_as, history, fields, field, message
):
    login_as(Role.COORDINATOR)
    fields = {k: (str(history.housing) if v == "PROGRAM" else v) for k, v in fields.items()}
    response = _post_goal(client, **fields)
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert message in html
    assert f'id="{field}-error"' in html
    if fields.get("target"):
        assert f'value="{fields["target"]}"' in html
    assert _goals(app) == []


def test_the_same_goal_twice_is_refused_until_the_first_is_deactivated(
    app, client, login_as, history
):
    login_as(Role.COORDINATOR)
    assert _post_goal(client, category="housing").status_code == 302
    response = _post_goal(client, category="housing")
    assert response.status_code == 422
    assert "already exists" in response.get_data(as_text=True)
    [goal] = _goals(app)
    page = client.get("/insights/goals").get_data(as_text=True)
    response = client.post(
        f"/insights/goals/{goal.id}/deactivate", data={"csrf_token": csrf_from(page)}
    )
    assert response.status_code == 302
    [goal] = _goals(app)
    assert not goal.active
    assert "No active goals yet." in client.get("/insights/goals").get_data(as_text=True)
    assert _post_goal(client, category="housing").status_code == 302


def test_deactivating_needs_the_csrf_token(app, client, login_as, history):
    login_as(Role.COORDINATOR)
    _post_goal(client, category="housing")
    [goal] = _goals(app)
    assert client.post(f"/insights/goals/{goal.id}/deactivate").status_code == 400
    assert _goals(app)[0].active
    assert client.post("/insights/goals/999999/deactivate").status_code in (400, 404)


def test_provider_admin_sees_goals_of_their_programs_and_categories_only(
    app, client, login_as, make_user, history
):
    with app.test_request_context():
        goal_ops.create_goal(
            program_id=history.housing, metric="accepted_share", comparator="at_least", target=0.8
        )
        goal_ops.create_goal(
            program_id=history.jobs, metric="accepted_share", comparator="at_least", target=0.8
        )
        goal_ops.create_goal(
            category="housing", metric="no_show_share", comparator="at_most", target=0.1
        )
        goal_ops.create_goal(
            category="employment", metric="escalations", comparator="at_most", target=3
        )
        db.session.commit()
    with app.app_context():
        org = db.session.get(Organization, history.provider_a)
    admin = make_user(Role.PROVIDER_ADMIN, org=org)
    client.login(admin.email)
    page = client.get("/insights/goals")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Youth Housing" in html and "Housing or shelter" in html
    assert "Job Start" not in html and "Work or job training" not in html
    assert "Add a goal" not in html and "Deactivate" not in html
    dashboard = client.get(f"/insights?{WEEK}").get_data(as_text=True)
    assert "Job Start" not in dashboard
    # Setting or stopping goals is the coordinator's.
    response = client.post(
        "/insights/goals",
        data={"csrf_token": csrf_from(html), "category": "housing", "target": "1"},
    )
    assert response.status_code == 404
    goal_id = _goals(app)[0].id
    response = client.post(
        f"/insights/goals/{goal_id}/deactivate", data={"csrf_token": csrf_from(html)}
    )
    assert response.status_code == 404
    assert _goals(app)[0].active


def test_responders_have_no_goals_page(client, login_as):
    login_as(Role.RESPONDER)
    assert client.get("/insights/goals").status_code == 404


# --- the operations -------------------------------------------------------------------------


def test_create_goal_checks_every_field(history, ctx):
    with pytest.raises(ValidationFailed) as caught:
        goal_ops.create_goal(metric="nope", comparator="sideways", target=-1, program_id=999999)
    assert set(caught.value.fields) == {"metric", "comparator", "program", "target"}
    with pytest.raises(ValidationFailed) as caught:
        goal_ops.create_goal(
            metric="accepted_share", comparator="at_least", target=0.5, category="no-such-category"
        )
    assert set(caught.value.fields) == {"category"}
    with pytest.raises(ValidationFailed) as caught:
        goal_ops.create_goal(
            metric="accepted_within_target_share",
            comparator="at_least",
            target=0.5,
            category="housing",
            within_hours=0,
        )
    assert set(caught.value.fields) == {"within_hours"}
    goal = goal_ops.create_goal(
        metric="accept_hours_median", comparator="at_most", target=4, category="housing"
    )
    assert goal.id and goal.target == 4.0  # hours, as typed


def test_progress_from_shared_rows_equals_its_own_query(history, ctx):
    """Goals reuse the dashboard's rows by program and category; the answer must be what
    metrics.goal_progress computes on its own."""
    goals = [
        goal_ops.create_goal(metric=key, comparator="at_least", target=0.5, **scope)
        for key in [m.key for m in goal_ops.goal_metrics()]
        for scope in (
            {"program_id": history.housing},
            {"program_id": history.jobs},
            {"category": "housing"},
            {"category": "legal"},
        )
    ]
    lines = goal_ops.progress(
        goals,
        WEEK_FILTERS,
        by_program=metrics.summary(WEEK_FILTERS, Dimension.PROGRAM),
        by_category=metrics.summary(WEEK_FILTERS, Dimension.CATEGORY),
    )
    for goal, line in zip(goals, lines, strict=True):
        alone = metrics.goal_progress(goal, WEEK_FILTERS)
        assert line.progress.sample == alone.sample, goal.metric
        assert line.progress.met == alone.met, goal.metric
        if alone.value is None:
            assert line.progress.value is None
        else:
            assert line.progress.value == pytest.approx(alone.value), goal.metric


def test_a_goal_with_its_own_hours_is_measured_on_its_own(history, ctx):
    goal = goal_ops.create_goal(
        metric="accepted_within_target_share",
        comparator="at_least",
        target=0.9,
        category="housing",
        within_hours=2,
    )
    [line] = goal_ops.progress(
        [goal], WEEK_FILTERS, by_category=metrics.summary(WEEK_FILTERS, Dimension.CATEGORY)
    )
    # Within 2 hours: only r1 (1 h) of Youth Housing's 5 referrals.
    assert line.progress.value == pytest.approx(1 / 5) and line.progress.met is False
