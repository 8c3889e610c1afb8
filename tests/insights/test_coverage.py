"""Coverage gaps: a constructed week where victim services close at weekends and people were
screened then, a need no program offers, a far ZIP code, and the pages that show them."""

import csv
import io
from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

import pytest

from referral_hub.accounts.models import Organization, Role
from referral_hub.directory import operations as directory
from referral_hub.extensions import db
from referral_hub.insights import coverage as cov
from referral_hub.insights.models import ScreeningRecord
from referral_hub.referrals.models import Client, Referral, Status

from ..conftest import counting_selects

CITY = ZoneInfo("America/Chicago")
WEEK = cov.CoverageFilters(start=date(2026, 11, 16), end=date(2026, 11, 22))
QUERY = "start=2026-11-16&end=2026-11-22"
WEEKDAYS_9_TO_5 = [(d, time(9), time(17)) for d in range(5)]


def at(day: int, hour: int) -> datetime:
    """A moment in November 2026, city time (16 November is a Monday)."""
    return datetime(2026, 11, day, hour, tzinfo=CITY)


def screening(moment: datetime, needs: list[str], zip_code: str | None = None) -> ScreeningRecord:
    return ScreeningRecord(
        created_at=moment.astimezone(UTC),
        hour_of_week=moment.weekday() * 24 + moment.hour,
        zip=zip_code,
        needs=needs,
        any_eligible=False,
        any_open=False,
        any_capacity=False,
        screener_version=1,
    )


@pytest.fixture
def weekend_gap(app, make_org):
    """Safe Harbor (victim services) open Monday-Friday 09:00-17:00 in Minneapolis.

    Screenings asking for victim services: 20 on Saturday 10:00 and 14 on Sunday 14:00 (34 at
    the weekend), 2 on Tuesday 20:00, 3 on Monday 10:00 from Rochester (55901, far) and 4 on
    Monday 10:00 from 55415 (near). Food, which no program offers: 2 on Wednesday 12:00.
    One referral to Safe Harbor sent on Saturday at 11:00.
    """
    provider = make_org("provider", name="Harbor Org")
    team = make_org("responder_team")
    with app.test_request_context():
        org = db.session.get(Organization, provider.id)
        site = directory.create_site(
            org,
            name="Harbor house",
            address_1="1 Main St",
            postal_code="55415",
            latitude=44.9773,
            longitude=-93.2654,
        )
        program = directory.create_program(org, name="Safe Harbor", categories=["victim_services"])
        directory.offer_at(program, site, weekly=WEEKDAYS_9_TO_5)
        rows = (
            [screening(at(21, 10), ["victim_services"]) for _ in range(20)]
            + [screening(at(22, 14), ["victim_services", "housing"]) for _ in range(14)]
            + [screening(at(17, 20), ["victim_services"]) for _ in range(2)]
            + [screening(at(16, 10), ["victim_services"], "55901") for _ in range(3)]
            + [screening(at(16, 10), ["victim_services"], "55415") for _ in range(4)]
            + [screening(at(18, 12), ["food"]) for _ in range(2)]
            # Outside the week: never counted.
            + [screening(at(23, 10), ["victim_services"]) for _ in range(50)]
        )
        db.session.add_all(rows)
        person = Client(organization_id=team.id, display_name="Z", name_key="z")
        db.session.add(person)
        db.session.flush()
        db.session.add(
            Referral(
                client_id=person.id,
                program_id=program.id,
                site_id=site.id,
                provider_org_id=org.id,
                referring_org_id=team.id,
                status=Status.SENT,
                sent_at=at(21, 11).astimezone(UTC),
            )
        )
        db.session.commit()
        return program.id


def test_weekend_gap_in_words(weekend_gap, ctx):
    found = cov.coverage(WEEK)
    victim = found.categories["victim_services"]
    assert victim.open_hours == 5 * 8
    assert sum(victim.screenings) == 43 and sum(victim.referrals) == 1
    texts = [gap.text for gap in found.gaps]
    assert texts[0] == (
        "Support after a crime: no site open Saturday\u2013Sunday; 34 screenings fell in that "
        "window. 1 referral was sent in that window."
    )
    assert found.gaps[0].kind is cov.GapKind.CLOSED_DAYS
    assert (
        "Support after a crime: no site open Monday\u2013Friday 17:00\u201324:00; 2 screenings "
        "fell in that window." in texts
    )
    assert "Food: no site offers it; 2 screenings asked for it." in texts
    # Housing is asked for at the weekend too, and nothing offers it either.
    assert "Housing or shelter: no site offers it; 14 screenings asked for it." in texts
    far = next(g for g in found.gaps if g.kind is cov.GapKind.TRAVEL)
    assert far.zip == "55901" and far.minutes > cov.TRAVEL_GAP_MINUTES
    assert "from ZIP code 55901; 3 screenings came from there." in far.text
    assert "(estimated)" in far.text
    # Largest first.
    weights = [g.screenings + g.referrals for g in found.gaps]
    assert weights == sorted(weights, reverse=True)


def test_travel_lines_and_the_heat_map_data(weekend_gap, ctx):
    found = cov.coverage(cov.CoverageFilters(WEEK.start, WEEK.end, "victim_services"))
    travel = {t.zip: t for t in found.travel}
    assert set(travel) == {"55901", "55415"}
    assert travel["55415"].minutes < 10 < travel["55901"].minutes
    assert travel["55901"].minutes_low < travel["55901"].minutes < travel["55901"].minutes_high
    assert found.travel[0].zip == "55901"  # farthest first
    cells = found.heat()
    saturday_10 = 5 * 24 + 10
    assert cells[saturday_10].demand == 20 and cells[saturday_10].closed
    monday_10 = 10
    assert cells[monday_10].demand == 7 and not cells[monday_10].closed
    assert cells[monday_10].unserved == 0


def test_over_all_categories_the_heat_map_shows_unserved_demand(weekend_gap, ctx):
    cells = cov.coverage(WEEK).heat()
    sunday_14 = 6 * 24 + 14
    # 14 screenings asking for two needs each, neither open: 28 needs unserved.
    assert cells[sunday_14].unserved == 28 and cells[sunday_14].closed is None
    assert cells[10].unserved == 0  # Monday 10:00: victim services open


def test_coverage_sends_a_fixed_number_of_queries(app, weekend_gap):
    with app.test_request_context(), counting_selects(app) as statements:
        cov.coverage(WEEK)
    assert len(statements) == 5


def test_referrals_fall_in_the_local_hour_across_daylight_saving(history, ctx):
    """r_sun_before and r_sun_after were both sent on a Sunday at 23:30, city time, one
    before and one after the clocks changed on 8 March."""
    found = cov.coverage(cov.CoverageFilters(date(2026, 3, 1), date(2026, 3, 9), "housing"))
    housing = found.categories["housing"].referrals
    assert housing[6 * 24 + 23] == 2
    assert housing[9] == 1  # r1, Monday 2 March 09:00
    assert sum(housing) == 7


def test_hours_open():
    assert cov.hours_open(0, time(9), time(17)) == set(range(9, 17))
    assert cov.hours_open(0, time(9, 30), time(10, 15)) == {9, 10}
    # Closing at or before opening means after midnight, into the next day...
    assert cov.hours_open(4, time(22), time(2)) == {4 * 24 + 22, 4 * 24 + 23, 120, 121}
    # ... and from Sunday night into Monday morning.
    assert cov.hours_open(6, time(23), time(1)) == {167, 0}
    assert cov.hours_open(2, time(8), time(8)) == {(48 + h) % 168 for h in range(8, 32)}


def test_days_in_words(ctx):
    assert cov.days_text([5, 6]) == "Saturday\u2013Sunday"
    assert cov.days_text([6, 0]) == "Sunday\u2013Monday"
    assert cov.days_text([2]) == "Wednesday"
    assert cov.days_text(range(7)) == "every day"
    assert cov.days_text([0, 2, 4]) == "Monday, Wednesday, and Friday"


def test_heat_map_is_an_accessible_grid(ctx):
    svg = str(
        cov.heat_map(
            "grid",
            "A <title>",
            "What it shows",
            list(range(168)),
            [h % 24 < 9 for h in range(168)],
        )
    )
    assert svg.startswith("<svg") and 'role="img"' in svg
    assert 'aria-labelledby="grid-title grid-desc"' in svg
    assert "A &lt;title&gt;" in svg and "<title>A <title>" not in svg
    assert svg.count("<rect") == 168 + len(cov.SHADES)
    assert svg.count("<path") == 7 * 9  # the crossed (closed) cells
    assert "<title>Sunday 23:00: 167</title>" in svg


def test_coverage_page_for_the_coordinator(client, login_as, weekend_gap):
    login_as(Role.COORDINATOR)
    response = client.get(f"/insights/coverage?{QUERY}")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "no site open Saturday\u2013Sunday; 34 screenings fell in that window." in html
    assert 'aria-labelledby="chart-coverage-hours-title chart-coverage-hours-desc"' in html
    assert "Travel to the nearest site, by ZIP code (estimated)" in html
    # One category: crossed cells are the closed hours, said in words for screen readers.
    html = client.get(f"/insights/coverage?{QUERY}&category=victim_services").get_data(as_text=True)
    assert "no site open</span>" in html
    records = list(
        csv.DictReader(
            io.StringIO(
                client.get(f"/insights/coverage.csv?table=gaps&{QUERY}").get_data(as_text=True)
            )
        )
    )
    assert records[0]["rank"] == "1" and records[0]["screenings"] == "34"
    assert records[0]["referrals"] == "1" and "Saturday\u2013Sunday" in records[0]["text"]
    hours = list(
        csv.DictReader(
            io.StringIO(
                client.get(
                    f"/insights/coverage.csv?table=hours&{QUERY}&category=victim_services"
                ).get_data(as_text=True)
            )
        )
    )
    assert len(hours) == 168
    assert hours[5 * 24 + 10]["demand"] == "20" and hours[5 * 24 + 10]["open_sites"] == "0"
    assert client.get(f"/insights/coverage.csv?table=nope&{QUERY}").status_code == 404


def test_coverage_gaps_reach_the_monthly_review(client, login_as, weekend_gap):
    login_as(Role.COORDINATOR)
    html = client.get("/insights/review?month=2026-11").get_data(as_text=True)
    assert "no site open Saturday\u2013Sunday" in html


@pytest.mark.parametrize("role", [Role.PROVIDER_ADMIN, Role.RESPONDER, Role.PROVIDER_STAFF])
def test_only_city_staff_see_coverage(client, login_as, role):
    login_as(role)
    assert client.get("/insights/coverage").status_code == 404
    assert client.get("/insights/coverage.csv?table=gaps").status_code == 404
