"""Dashboards by role on the constructed history (conftest.py), their CSV downloads, the
monthly review, and who gets 404."""

import csv
import io
import re
from datetime import timedelta
from html.parser import HTMLParser

import pytest

from referral_hub.accounts.models import Organization, Role, User
from referral_hub.directory import operations as directory
from referral_hub.extensions import db
from referral_hub.insights.metrics import last_days
from referral_hub.referrals.models import Client, Referral, Status

from ..conftest import counting_selects
from .conftest import local

WEEK = "start=2026-03-02&end=2026-03-06"


class Tables(HTMLParser):
    """Every <table> of a page as rows of cell texts, keyed by its section's id."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.section: str | None = None
        self.rows: list[list[str]] | None = None
        self.cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "section" and attrs.get("id", "").startswith("t-"):
            self.section = attrs["id"][2:]
        elif tag == "table" and self.section:
            self.rows = self.tables.setdefault(self.section, [])
        elif tag == "tr" and self.rows is not None:
            self.rows.append([])
        elif tag in ("td", "th") and self.rows is not None:
            self.cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self.cell is not None:
            self.rows[-1].append(" ".join("".join(self.cell).split()))
            self.cell = None
        elif tag == "table":
            self.rows = None
        elif tag == "section":
            self.section = None

    def handle_data(self, data):
        if self.cell is not None:
            self.cell.append(data)


def tables_of(html: str) -> dict[str, list[list[str]]]:
    parser = Tables()
    parser.feed(html)
    return parser.tables


def as_dicts(rows: list[list[str]]) -> list[dict[str, str]]:
    header, *body = rows
    return [dict(zip(header, row, strict=True)) for row in body]


def read_csv(response) -> list[dict[str, str]]:
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    assert response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    return list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))


@pytest.fixture
def member_of(app, make_user):
    """A new user with a role in an existing organization (by id)."""

    def make(role: Role, org_id: int) -> User:
        with app.app_context():
            org = db.session.get(Organization, org_id)
        return make_user(role, org=org)

    return make


@pytest.fixture
def rivals(app, history, make_org, make_user):
    """Two more housing programs of another provider, with referrals the same week:
    Rival Shelter accepts 2 of 2, Rival Beds 3 of 4. Accepted shares in housing are then
    1.0, 0.75 and Youth Housing's 0.6: the median is 0.75."""
    rival = make_org("provider", name="Rival Housing Org")
    with app.test_request_context():
        org = db.session.get(Organization, rival.id)
        site = directory.create_site(
            org,
            name="Rival site",
            address_1="9 Elm St",
            postal_code="55411",
            latitude=44.99,
            longitude=-93.30,
        )
        client = Client(organization_id=history.team, display_name="C", name_key="c")
        db.session.add(client)
        db.session.flush()
        for name, sent, accepted in (("Rival Shelter", 2, 2), ("Rival Beds", 4, 3)):
            program = directory.create_program(org, name=name, categories=["housing"])
            for n in range(sent):
                moment = local(3, 9 + n)
                db.session.add(
                    Referral(
                        client_id=client.id,
                        program_id=program.id,
                        site_id=site.id,
                        provider_org_id=org.id,
                        referring_org_id=history.team,
                        status=Status.ACCEPTED if n < accepted else Status.SENT,
                        sent_at=moment,
                        accepted_at=moment + timedelta(hours=2) if n < accepted else None,
                    )
                )
        db.session.commit()
    return rival


# --- coordinator ----------------------------------------------------------------------------


@pytest.mark.parametrize("role", [Role.COORDINATOR, Role.ADMIN])
def test_city_staff_see_the_city_wide_dashboard(client, login_as, history, role):
    login_as(role)
    response = client.get(f"/insights?{WEEK}")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "City-wide referral performance" in html
    tables = tables_of(html)
    for name in (
        "key_figures",
        "by_category",
        "by_program",
        "decline_reasons",
        "outcomes",
        "unmet_by_need",
        "unmet_by_hour",
        "goals",
    ):
        assert name in tables or f'id="t-{name}"' in html, name
    figures = {row["Measure"]: row for row in as_dicts(tables["key_figures"])}
    assert figures["Referrals sent"]["Value"] == "8"
    assert figures["Accepted"]["Value"] == "50%"
    assert figures["Handoff completion"]["Value"] == "75%"
    assert figures["Median time to accept"]["Value"] == "2.5 hours"
    # Each metric's definition is beside it, with its version.
    assert (
        "Half of the accepted referrals were accepted within"
        in figures["Median time to accept"]["Definition"]
    )
    assert "(version 1)" in figures["Accepted"]["Definition"]
    programs = {row["Program"]: row for row in as_dicts(tables["by_program"])}
    assert set(programs) == {"Job Start", "Youth Housing"}
    assert programs["Youth Housing"]["Referrals sent"] == "5"
    assert programs["Youth Housing"]["Handoff completion"] == "66.7%"
    reasons = {row["Reason"]: row["Referrals"] for row in as_dicts(tables["decline_reasons"])}
    assert reasons == {"No capacity": "2", "Not eligible": "1"}
    # Charts are SVG with an accessible name, and every table offers its CSV.
    assert 'aria-labelledby="chart-by-category-title chart-by-category-desc"' in html
    assert "/insights/data.csv?table=by_category&amp;start=2026-03-02&amp;end=2026-03-06" in html
    assert "<script" not in html


def test_weeks_are_shown_on_request(client, login_as, history):
    login_as(Role.COORDINATOR)
    html = client.get("/insights?start=2026-03-01&end=2026-03-14").get_data(as_text=True)
    assert 'id="t-by_week"' not in html
    html = client.get("/insights?start=2026-03-01&end=2026-03-14&weeks=y").get_data(as_text=True)
    weeks = as_dicts(tables_of(html)["by_week"])
    # Sunday 1 March belongs to the week of 23 February; 2-8 March holds 8 + r_sun_after.
    assert [(w["Week starting"], w["Referrals sent"]) for w in weeks] == [
        ("2026-02-23", "1"),
        ("2026-03-02", "9"),
    ]


def test_csv_downloads_parse_and_match_the_tables(client, login_as, history):
    login_as(Role.COORDINATOR)
    html = client.get(f"/insights?{WEEK}&weeks=y").get_data(as_text=True)
    tables = tables_of(html)
    links = re.findall(r'href="(/insights/data\.csv\?table=(\w+)[^"]*)"', html)
    assert {name for _url, name in links} >= {"by_category", "by_program", "by_week", "goals"}
    for url, name in links:
        records = read_csv(client.get(url.replace("&amp;", "&")))
        shown = tables.get(name, [])
        assert len(records) == max(len(shown) - 1, 0) or name == "unmet_by_hour", name
    by_program = read_csv(client.get(f"/insights/data.csv?table=by_program&{WEEK}"))
    shown = as_dicts(tables["by_program"])
    assert [r["label"] for r in by_program] == [row["Program"] for row in shown]
    assert [r["referrals_sent"] for r in by_program] == [row["Referrals sent"] for row in shown]
    housing = next(r for r in by_program if r["label"] == "Youth Housing")
    assert housing["accepted_share"] == "0.6"
    assert housing["accept_hours_median"] == "3.0"
    assert housing["ride_on_time_share"] == "0.5"
    hours = read_csv(client.get(f"/insights/data.csv?table=unmet_by_hour&{WEEK}"))
    assert len(hours) == 168 and hours[0]["day"] == "Monday" and hours[0]["hour"] == "00:00"
    figures = read_csv(client.get(f"/insights/data.csv?table=key_figures&{WEEK}"))
    assert {r["metric"]: r["value"] for r in figures}["referrals_sent"] == "8"


def test_csv_of_an_unknown_table_is_404(client, login_as, history):
    login_as(Role.COORDINATOR)
    assert client.get(f"/insights/data.csv?table=nope&{WEEK}").status_code == 404
    assert client.get(f"/insights/data.csv?{WEEK}").status_code == 404
    # Week by week only with the page's week option, as on the page.
    assert client.get(f"/insights/data.csv?table=by_week&{WEEK}").status_code == 404
    # A provider's table is not a coordinator's.
    assert client.get(f"/insights/data.csv?table=own_programs&{WEEK}").status_code == 404


def test_filters_narrow_and_bad_ones_are_shown_and_ignored(client, login_as, history):
    login_as(Role.COORDINATOR)
    html = client.get(f"/insights?{WEEK}&category=employment").get_data(as_text=True)
    programs = [row["Program"] for row in as_dicts(tables_of(html)["by_program"])]
    assert programs == ["Job Start"]
    html = client.get(f"/insights?{WEEK}&program={history.housing}").get_data(as_text=True)
    programs = [row["Program"] for row in as_dicts(tables_of(html)["by_program"])]
    assert programs == ["Youth Housing"]
    response = client.get("/insights?start=2026-03-06&end=2026-03-02&category=nope")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "The end date must not come before the start date." in html
    assert "Not a valid choice" in html


def test_coordinator_dashboard_queries_do_not_grow_with_referrals(app, client, login_as, history):
    login_as(Role.COORDINATOR)
    url = f"/insights?{WEEK}&weeks=y"
    client.get(url)  # warm up: the first request loads what later ones find cached
    with counting_selects(app) as before:
        assert client.get(url).status_code == 200
    with app.test_request_context():
        for referral in db.session.query(Referral).filter(Referral.sent_at.is_not(None)).all():
            for n in range(5):
                db.session.add(
                    Referral(
                        client_id=referral.client_id,
                        program_id=referral.program_id,
                        site_id=referral.site_id,
                        provider_org_id=referral.provider_org_id,
                        referring_org_id=referral.referring_org_id,
                        status=referral.status,
                        sent_at=referral.sent_at + timedelta(minutes=n + 1),
                        accepted_at=referral.accepted_at,
                        handed_off_at=referral.handed_off_at,
                        reason_code=referral.reason_code,
                        outcome=referral.outcome,
                    )
                )
        db.session.commit()
    with counting_selects(app) as after:
        html = client.get(url).get_data(as_text=True)
    figures = {row["Measure"]: row for row in as_dicts(tables_of(html)["key_figures"])}
    assert figures["Referrals sent"]["Value"] == "48"
    assert len(after) == len(before)
    assert len(before) < 40, len(before)


# --- provider admin -------------------------------------------------------------------------


def test_provider_admin_sees_own_programs_against_the_category_median(
    app, client, member_of, history, rivals
):
    admin = member_of(Role.PROVIDER_ADMIN, history.provider_a)
    client.login(admin.email)
    response = client.get(f"/insights?{WEEK}")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    rows = as_dicts(tables_of(html)["own_programs"])
    own = next(r for r in rows if r["Program"] == "Youth Housing")
    assert own["Referrals sent"] == "5" and own["Accepted"] == "60%"
    median = next(r for r in rows if r["Program"].startswith("Median of programs in"))
    assert "(3 programs)" in median["Program"]
    assert median["Accepted"] == "75%"  # of 100%, 75% and 60%
    # Other providers and their programs are never named, on the page or in its files.
    csv_text = client.get(f"/insights/data.csv?table=own_programs&{WEEK}").get_data(as_text=True)
    for text in (html, csv_text):
        for name in ("Rival Shelter", "Rival Beds", "Rival Housing Org", "Job Start"):
            assert name not in text
    records = list(csv.DictReader(io.StringIO(csv_text)))
    assert [r["label"] for r in records] == [row["Program"] for row in rows]
    assert [r["accepted_share"] for r in records] == ["0.6", "0.75"]


def test_provider_median_needs_three_programs(client, member_of, history):
    admin = member_of(Role.PROVIDER_ADMIN, history.provider_a)
    client.login(admin.email)
    html = client.get(f"/insights?{WEEK}").get_data(as_text=True)
    rows = as_dicts(tables_of(html)["own_programs"])
    median = next(r for r in rows if r["Program"].startswith("Median of programs in"))
    assert "(1 program)" in median["Program"]
    assert median["Accepted"] == "—"


def test_provider_filters_offer_only_own_programs(client, member_of, history, rivals):
    admin = member_of(Role.PROVIDER_ADMIN, history.provider_a)
    client.login(admin.email)
    html = client.get(f"/insights?{WEEK}&program={history.jobs}").get_data(as_text=True)
    assert "Not a valid choice" in html  # another provider's program is not a choice
    assert "Job Start" not in html
    reasons = as_dicts(tables_of(html)["decline_reasons"])
    assert [(r["Reason"], r["Referrals"]) for r in reasons] == [("No capacity", "1")]


# --- responder ------------------------------------------------------------------------------


def test_responder_sees_what_happened_to_their_referrals(client, member_of, history):
    responder = member_of(Role.RESPONDER, history.team)
    client.login(responder.email)
    response = client.get(f"/insights?{WEEK}")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    steps = {r["Step"]: r["Referrals"] for r in as_dicts(tables_of(html)["what_happened"])}
    # r1-r5 (the team's); Job Start's were sent by the city department.
    assert steps["Sent"] == "5" and steps["Accepted"] == "3" and steps["Declined"] == "1"
    assert steps["Handed off in person"] == "2" and steps["Did not arrive"] == "1"
    assert "Job Start" not in html and "Employed" not in html
    records = read_csv(client.get(f"/insights/data.csv?table=what_happened&{WEEK}"))
    assert {r["step"]: r["count"] for r in records}["sent"] == "5"


def test_responder_reasons_leave_sensitive_programs_out(app, client, member_of, history):
    with app.test_request_context():
        db.session.get(Referral, history.referrals["r4"]).program.sensitive = True
        db.session.commit()
    responder = member_of(Role.RESPONDER, history.team)
    client.login(responder.email)
    html = client.get(f"/insights?{WEEK}").get_data(as_text=True)
    assert "No capacity" not in html
    assert "Referrals to sensitive programs are left out." in html


# --- who may see what -------------------------------------------------------------------------

PAGES = [
    "/insights",
    f"/insights/data.csv?table=by_category&{WEEK}",
    "/insights/coverage",
    "/insights/coverage.csv?table=gaps",
    "/insights/goals",
    "/insights/review",
]


@pytest.mark.parametrize("role", [Role.PROVIDER_STAFF, Role.DISPATCHER])
def test_other_roles_get_404(client, login_as, role):
    login_as(role)
    for path in PAGES:
        assert client.get(path).status_code == 404, path


@pytest.mark.parametrize(
    "role, allowed",
    [
        (Role.PROVIDER_ADMIN, {"/insights", "/insights/goals"}),
        (Role.RESPONDER, {"/insights"}),
        (
            Role.COORDINATOR,
            {"/insights", "/insights/coverage", "/insights/goals", "/insights/review"},
        ),
    ],
)
def test_pages_by_role(client, login_as, role, allowed):
    login_as(role)
    for path in ("/insights", "/insights/coverage", "/insights/goals", "/insights/review"):
        expected = 200 if path in allowed else 404
        assert client.get(path).status_code == expected, path


def test_navigation_shows_insights_to_its_roles(client, login_as):
    login_as(Role.COORDINATOR)
    assert 'href="/insights"' in client.get("/").get_data(as_text=True)


def test_navigation_hides_insights_from_provider_staff(client, login_as):
    login_as(Role.PROVIDER_STAFF)
    assert 'href="/insights"' not in client.get("/").get_data(as_text=True)


def test_signed_out_is_sent_to_login(client):
    response = client.get("/insights")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


# --- the monthly review -----------------------------------------------------------------------


def test_monthly_review_renders_a_month(client, login_as, history):
    login_as(Role.COORDINATOR)
    response = client.get("/insights/review?month=2026-03")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "review of March 2026" in html
    assert '<option selected value="2026-03">' in html
    glance = {r["Measure"]: r for r in as_dicts(_glance(html))}
    assert glance["Referrals sent"]["This month"] == "10"  # the week and both Sundays
    assert glance["Referrals sent"]["Month before"] == "0"
    assert "Largest coverage gaps" in html and "Unmet need" in html
    assert "Goals met and missed" in html
    # Nothing about a person: no client names, no notes, no handoff staff.
    for secret in ('"A"', "display_name", "handed_off_to"):
        assert secret not in html


def _glance(html: str) -> list[list[str]]:
    start = html.index('id="glance-heading"')
    parser = Tables()
    parser.section = "glance"
    parser.feed(html[start : html.index("</section>", start)])
    return parser.tables["glance"]


def test_monthly_review_refuses_a_bad_month_and_shows_the_last_full_one(client, login_as):
    login_as(Role.COORDINATOR)
    response = client.get("/insights/review?month=2026-13")
    assert response.status_code == 200
    assert "Choose a month from the list." in response.get_data(as_text=True)
    assert client.get("/insights/review?month=2999-01").status_code == 200


def test_review_has_print_styles(client):
    css = client.get("/static/app.css").get_data(as_text=True)
    assert "@media print" in css


def test_the_default_period_is_the_last_90_days(app, client, login_as):
    login_as(Role.COORDINATOR)
    html = client.get("/insights").get_data(as_text=True)
    with app.test_request_context():
        period = last_days(90)
    assert f'name="start" type="date" value="{period.start.isoformat()}"' in html
    assert f'name="end" type="date" value="{period.end.isoformat()}"' in html
    assert (period.end - period.start).days == 89
