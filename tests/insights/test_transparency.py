"""The public transparency page and its downloads: anonymous, suppressed, never personal."""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from zoneinfo import ZoneInfo

import pytest

from referral_hub.accounts.models import OrgKind
from referral_hub.core.db import utcnow
from referral_hub.directory import operations as directory
from referral_hub.extensions import db
from referral_hub.insights import transparency as public
from referral_hub.insights.charts import Series, bar_chart, line_chart, nice_ticks
from referral_hub.insights.suppression import SMALL_DISPLAY, WITHHELD_DISPLAY
from referral_hub.referrals.models import Client, Referral, Status

CLIENT_NAME = "Zebulon Quixfeather"
CLIENT_PHONE = "+16125550199"
SENSITIVE_NAMES = ("Quiet Harbor Shelter", "Court Circle Diversion")
SMALL = {str(n) for n in range(1, 11)}
COUNT_FIELDS = ("referrals_sent", "accepted", "handed_off", "completed")


@dataclass
class History:
    sent_month: str  # YYYY-MM of the month the referrals were sent in
    accept_hours_big: list[float]


def last_month_middle(tz: ZoneInfo) -> datetime:
    """The 15th of last month, noon, city time: safely inside the default period."""
    today = utcnow().astimezone(tz)
    first = today.replace(day=1, hour=12, minute=0, second=0, microsecond=0)
    return (first - timedelta(days=1)).replace(day=15)


@pytest.fixture
def history(app, make_org, make_user) -> History:
    """Seven programs with known referrals, all sent last month by one distinctive client."""
    provider = make_org(OrgKind.PROVIDER, name="Northside Services")
    responder = make_user("responder")
    tz = ZoneInfo(app.config["TIMEZONE"])
    sent = last_month_middle(tz).astimezone(UTC)
    with app.test_request_context():
        org = db.session.merge(provider)
        big = directory.create_program(org, name="Big Housing Navigation", categories=["housing"])
        tiny = directory.create_program(org, name="Tiny Housing Desk", categories=["housing"])
        quiet = directory.create_program(
            org, name=SENSITIVE_NAMES[0], categories=["housing", "victim_services"]
        )
        court = directory.create_program(org, name=SENSITIVE_NAMES[1], categories=["diversion"])
        middle = directory.create_program(org, name="Middle Housing Hub", categories=["housing"])
        health = directory.create_program(
            org, name="Walk-In Wellness", categories=["behavioral_health"]
        )
        directory.create_program(org, name="Idle Jobs Program", categories=["employment"])
        client = Client(
            organization_id=responder.primary_membership.organization_id,
            display_name=CLIENT_NAME,
            name_key=CLIENT_NAME.lower(),
            phone=CLIENT_PHONE,
        )
        db.session.add(client)
        db.session.flush()

        def add(program, n, *, accepted=0, handed_off=0, completed=0, hours=None, **extra):
            for i in range(n):
                at = sent + timedelta(minutes=i)
                accept_at = at + timedelta(hours=hours[i] if i < accepted and hours else 2)
                is_done = i < completed
                is_handed = i < handed_off
                status = (
                    Status.COMPLETED
                    if is_done
                    else Status.HANDED_OFF
                    if is_handed
                    else Status.ACCEPTED
                    if i < accepted
                    else Status.SENT
                )
                db.session.add(
                    Referral(
                        client_id=client.id,
                        program_id=program.id,
                        provider_org_id=provider.id,
                        referring_org_id=client.organization_id,
                        referring_user_id=responder.id,
                        status=extra.get("status", status),
                        note=f"{CLIENT_NAME} called from {CLIENT_PHONE}",
                        sent_at=at,
                        accepted_at=accept_at if i < accepted else None,
                        handed_off_at=at + timedelta(days=1) if is_handed else None,
                        closed_at=at + timedelta(days=3) if is_done else None,
                        outcome="enrolled" if is_done else None,
                    )
                )

        big_hours = [float(h) for h in range(1, 31)]  # 30 accepted: 1, 2, ..., 30 hours
        add(big, 40, accepted=30, handed_off=20, completed=12, hours=big_hours)
        add(tiny, 3, accepted=2)
        add(quiet, 5, accepted=5, handed_off=4)
        add(court, 25, accepted=14, handed_off=13, completed=11)
        add(middle, 15, accepted=15, handed_off=15)
        add(health, 12, accepted=12)
        # Left out: entered in error, and drafts (never sent).
        add(big, 7, status=Status.ENTERED_IN_ERROR)
        db.session.add(
            Referral(
                client_id=client.id,
                program_id=big.id,
                provider_org_id=provider.id,
                referring_org_id=client.organization_id,
                status=Status.DRAFT,
            )
        )
        db.session.commit()
    month = sent.astimezone(tz)
    return History(f"{month.year:04d}-{month.month:02d}", big_hours)


class Tables(HTMLParser):
    """Every table of a page as a list of rows of cell texts, and all text."""

    def __init__(self):
        super().__init__()
        self.tables: list[list[list[str]]] = []
        self._cell: list[str] | None = None
        self._depth = 0

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.tables.append([])
        elif tag == "tr" and self.tables:
            self.tables[-1].append([])
        elif tag in ("td", "th") and self.tables:
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.tables[-1][-1].append(" ".join("".join(self._cell).split()))
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def count_cells(html: str) -> list[str]:
    """The texts of every count column of every table on the page."""
    parser = Tables()
    parser.feed(html)
    found = []
    headers = {"Referrals sent", "Accepted", "Received in person", "Completed"}
    for table in parser.tables:
        if not table:
            continue
        columns = [i for i, name in enumerate(table[0]) if name in headers]
        for row in table[1:]:
            found += [row[i] for i in columns if i < len(row)]
    return found


def test_the_page_is_public_and_shows_suppressed_tables(client, history):
    response = client.get("/transparency")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "Big Housing Navigation" in html
    assert "Northside Services" in html
    cells = count_cells(html)
    assert "40" in cells and SMALL_DISPLAY in cells and WITHHELD_DISPLAY in cells
    assert not SMALL & set(cells), "a count from 1 to 10 is on the page"
    # At a glance: sent, accepted, received in person, completed (then the median hours).
    at_a_glance = [value.strip() for value in re.findall(r"<dd>([^<(]*)", html)[:4]]
    assert at_a_glance[0] == "100"
    assert not SMALL & set(at_a_glance)
    # Charts are inline SVG with an accessible name and description.
    assert 'role="img"' in html and 'aria-labelledby="chart-categories-title' in html
    assert "Metric definitions" in html and "accept_hours_median" in html
    assert "/transparency/data.csv?start=" in html


def test_no_personal_data_and_no_sensitive_program_in_any_output(client, history):
    outputs = [
        client.get("/transparency").get_data(as_text=True),
        client.get("/transparency/data.csv").get_data(as_text=True),
        client.get("/transparency/data.json").get_data(as_text=True),
        client.get("/transparency/dictionary.json").get_data(as_text=True),
    ]
    for text in outputs:
        for secret in (CLIENT_NAME, "Zebulon", "Quixfeather", CLIENT_PHONE, "555-0199", "0199"):
            assert secret not in text
        for name in SENSITIVE_NAMES:
            assert name not in text
            assert name.split()[0] not in text  # not even part of it ("Quiet", "Court")


def test_csv_parses_and_holds_no_small_count(client, history):
    response = client.get("/transparency/data.csv")
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    assert response.headers["Cache-Control"].startswith("public")
    records = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert records
    for record in records:
        for name in COUNT_FIELDS:
            assert record[name] not in SMALL, record
            assert record[name] in {SMALL_DISPLAY, WITHHELD_DISPLAY} or record[name].isdigit()
    big = next(r for r in records if r["program"] == "Big Housing Navigation")
    assert (big["referrals_sent"], big["accepted"], big["handed_off"]) == ("40", "30", "20")
    assert big["completed"] == "12"
    assert big["accepted_share"] == "0.75"
    # The median of 1..30 hours is 15.5.
    assert big["accept_hours_median"] == "15.5"
    tiny = next(r for r in records if r["program"] == "Tiny Housing Desk")
    assert tiny["referrals_sent"] == SMALL_DISPLAY
    assert tiny["accept_hours_median"] == ""
    # The housing category's unnamed line holds the sensitive shelter, without its name.
    unnamed = [r for r in records if r["table"] == "by_program" and not r["program"]]
    assert [r["category_code"] for r in unnamed] == ["victim_services"] or unnamed == []
    summary = next(r for r in records if r["table"] == "summary")
    assert summary["referrals_sent"] == str(40 + 3 + 5 + 25 + 15 + 12)  # no drafts, no errors
    month = next(
        r
        for r in records
        if r["table"] == "by_month" and r["category_code"] == "all" and r["month"]
        if r["month"] == history.sent_month
    )
    assert month["referrals_sent"] == "100"
    # 3 at Tiny Housing hide one more housing program: the smallest, Middle Housing (15).
    middle = next(r for r in records if r["program"] == "Middle Housing Hub")
    assert middle["referrals_sent"] == WITHHELD_DISPLAY


def test_json_carries_rows_dictionary_and_definitions(client, history):
    response = client.get("/transparency/data.json")
    assert response.status_code == 200
    body = json.loads(response.get_data(as_text=True))
    assert {f["name"] for f in body["dictionary"]["fields"]} >= {"table", *COUNT_FIELDS}
    assert {m["key"] for m in body["dictionary"]["metrics"]} >= {
        "referrals_sent",
        "handoff_completion",
        "accept_hours_median",
    }
    assert "<11" in body["dictionary"]["suppression"]
    for row in body["rows"]:
        for name in COUNT_FIELDS:
            value = row[name]
            assert value in (SMALL_DISPLAY, WITHHELD_DISPLAY) or (
                isinstance(value, int) and not 1 <= value <= 10
            ), row
    dictionary = client.get("/transparency/dictionary.json")
    assert dictionary.status_code == 200
    assert json.loads(dictionary.get_data(as_text=True))["fields"]


def test_sensitive_categories_are_reported_only_as_a_whole(client, history):
    rows = json.loads(client.get("/transparency/data.json").get_data(as_text=True))["rows"]
    categories = {r["category_code"] for r in rows if r["table"] == "by_category"}
    # The shelter is housing and victim services: it counts under victim services.
    assert {"housing", "victim_services", "diversion", "employment"} <= categories
    sensitive_lines = [
        r
        for r in rows
        if r["table"] == "by_program" and r["category_code"] in {"victim_services", "diversion"}
    ]
    assert sensitive_lines == []
    diversion = next(
        r for r in rows if r["table"] == "by_category" and r["category_code"] == "diversion"
    )
    assert diversion["referrals_sent"] == 25


def test_published_totals_never_give_a_hidden_count_away(client, history):
    rows = json.loads(client.get("/transparency/data.json").get_data(as_text=True))["rows"]

    def check(total, parts):
        for name in COUNT_FIELDS:
            cells = [total[name], *(p[name] for p in parts)]
            hidden = [c for c in cells if isinstance(c, str)]
            if not hidden:
                assert total[name] == sum(p[name] for p in parts)
            else:
                assert len(hidden) >= 2, (name, total, parts)

    summary = next(r for r in rows if r["table"] == "summary")
    by_category = [r for r in rows if r["table"] == "by_category"]
    check(summary, by_category)
    months = [r for r in rows if r["table"] == "by_month" and r["category_code"] == "all"]
    check(summary, months)
    for category in by_category:
        code = category["category_code"]
        programs = [r for r in rows if r["table"] == "by_program" and r["category_code"] == code]
        if programs:
            check(category, programs)
        check(
            category, [r for r in rows if r["table"] == "by_month" and r["category_code"] == code]
        )
    for month in months:
        same = [
            r
            for r in rows
            if r["table"] == "by_month" and r["category_code"] != "all"
            if r["month"] == month["month"]
        ]
        check(month, same)


def test_a_chosen_period_and_a_refused_one(client, history):
    too_old = client.get("/transparency/data.json?start=2020-01&end=2020-03")
    assert too_old.status_code == 422
    one_month = f"start={history.sent_month}&end={history.sent_month}"
    body = json.loads(client.get(f"/transparency/data.json?{one_month}").get_data(as_text=True))
    assert body["period"] == {
        "start": history.sent_month,
        "end": history.sent_month,
        "time_zone": "America/Chicago",
    }
    assert [r["month"] for r in body["rows"] if r["table"] == "by_month"][:1] == [
        history.sent_month
    ]
    page = client.get(f"/transparency?{one_month}").get_data(as_text=True)
    assert f'value="{history.sent_month}" selected' in page
    refused = client.get("/transparency/data.json?start=2025-13&end=2025-01")
    assert refused.status_code == 422
    assert json.loads(refused.get_data(as_text=True))["error"]["fields"]["period"]
    page = client.get("/transparency?start=nonsense")
    assert page.status_code == 200
    assert 'aria-invalid="true"' in page.get_data(as_text=True)


def test_every_page_links_to_the_transparency_page(client):
    html = client.get("/login").get_data(as_text=True)
    assert 'href="/transparency"' in html


def test_an_empty_directory_still_answers(client):
    response = client.get("/transparency")
    assert response.status_code == 200
    assert json.loads(client.get("/transparency/data.json").get_data(as_text=True))["rows"]


def test_reporting_category_prefers_the_sensitive_one():
    assert public.reporting_category(["housing", "victim_services"]) == "victim_services"
    assert public.reporting_category(["housing", "behavioral_health"]) == "behavioral_health"
    assert public.reporting_category([]) == ""


def test_periods():
    today = datetime(2025, 5, 20).date()
    default = public.default_period(today)
    assert (public.month_code(default.start), public.month_code(default.end)) == (
        "2024-06",
        "2025-05",
    )
    assert len(default.months) == 12
    assert public.parse_period("2025-01", "2025-12", today).end.month == 5  # not past today
    for start, end in (("2025-04", "2025-01"), ("2025-1", None), ("2021-01", "2025-05")):
        with pytest.raises(ValueError):
            public.parse_period(start, end, today)


def test_charts_escape_text_and_label_themselves():
    svg = bar_chart(
        "c1", "Sent <b>", "Bars & more", ["<script>x</script>", "B"], [12.0, None], ["12", "<11"]
    )
    assert str(svg).startswith("<svg") and 'role="img"' in svg
    assert 'aria-labelledby="c1-title c1-desc"' in svg
    assert '<title id="c1-title">Sent &lt;b&gt;</title>' in svg
    assert '<desc id="c1-desc">Bars &amp; more</desc>' in svg
    assert "<script>" not in svg and "&lt;11" in svg
    assert "http" not in svg.replace("http://www.w3.org/2000/svg", "")  # nothing from elsewhere
    line = line_chart(
        "c2",
        "T",
        "D",
        ["Jan", "Feb", "Mar"],
        [Series("Sent", [20, None, 30]), Series("A", [0] * 3)],
    )
    assert line.count("<polyline") == 1  # the gap splits "Sent" into single points
    assert "style=" not in line  # the CSP forbids inline styles
    with pytest.raises(ValueError):
        bar_chart("c3", "T", "D", ["a"], [1.0, 2.0])
    assert nice_ticks(123) == [0, 50, 100, 150]
