"""The directory as staff meet it: filters, distance, hours, the program page, query count."""

from datetime import datetime, time
from zoneinfo import ZoneInfo

import pytest

from referral_hub.accounts.models import Organization
from referral_hub.directory import operations as directory
from referral_hub.directory import views
from referral_hub.extensions import db
from tests.conftest import counting_selects

CHI = ZoneInfo("America/Chicago")
CITY_HALL = (44.9773, -93.2654)
WEEKDAYS = [(d, time(9), time(17)) for d in range(5)]
NIGHTS = [(d, time(19), time(7)) for d in range(7)]
MONDAY_10 = datetime(2026, 11, 23, 10, 0, tzinfo=CHI)
MONDAY_23 = datetime(2026, 11, 23, 23, 0, tzinfo=CHI)


def add_program(app, org, name, *, categories=("housing",), languages=(), sites=None, **fields):
    """A program with its sites ({"at", "hours", "open_24_7", site fields}); returns its id."""
    sites = [{}] if sites is None else sites
    with app.test_request_context():
        org = db.session.get(Organization, org.id)
        capacity = fields.pop("capacity", None)
        program = directory.create_program(
            org, name=name, categories=list(categories), languages=languages, **fields
        )
        if capacity:
            directory.set_capacity(program, *capacity)
        for n, spec in enumerate(sites):
            spec = dict(spec)
            lat, lon = spec.pop("at", CITY_HALL)
            hours = spec.pop("hours", WEEKDAYS)
            open_24_7 = spec.pop("open_24_7", False)
            site = directory.create_site(
                org,
                name=spec.pop("name", f"{name} site {n + 1}"),
                address_1=spec.pop("address_1", f"{100 + n} Main St"),
                postal_code=spec.pop("postal_code", "55415"),
                latitude=lat,
                longitude=lon,
                **spec,
            )
            directory.offer_at(program, site, open_24_7=open_24_7, weekly=hours)
        db.session.commit()
        return program.id


def at(monkeypatch, moment):
    monkeypatch.setattr(views, "now", lambda: moment)


def names_in_order(html, *names):
    positions = [html.find(f">{name}</a>") for name in names]
    assert all(p >= 0 for p in positions), positions
    return positions == sorted(positions)


@pytest.fixture
def org(make_org):
    return make_org("provider", name="Northside Services")


def test_directory_needs_sign_in(client):
    response = client.get("/directory")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_lists_active_programs_and_filters_by_category(client, login_as, app, org):
    add_program(app, org, "Harbor Shelter", categories=["housing"])
    add_program(app, org, "Jobs Now", categories=["employment"])
    add_program(app, org, "Closed Program", is_active=False)
    add_program(app, org, "Safe Harbor Advocacy", categories=["victim_services"])
    login_as("responder")

    html = client.get("/directory").get_data(as_text=True)
    assert "Harbor Shelter" in html and "Jobs Now" in html
    assert "Closed Program" not in html
    assert "Safe Harbor Advocacy" in html  # sensitive programs are listed for staff
    assert 'value="employment"' in html and 'value="food"' not in html  # categories in use

    html = client.get("/directory?category=employment").get_data(as_text=True)
    assert "Jobs Now" in html and "Harbor Shelter" not in html
    assert 'value="employment" id="category-' in html and "checked" in html


def test_language_filter(client, login_as, app, org):
    add_program(app, org, "Somali Housing", languages=[("so", "staff")])
    add_program(app, org, "Interpreted Housing", languages=[("so", "interpreter")])
    add_program(app, org, "English Only", languages=[("en", "staff")])
    login_as("responder")
    html = client.get("/directory?language=so").get_data(as_text=True)
    assert "Somali Housing" in html and "Interpreted Housing" in html
    assert "English Only" not in html
    assert "Soomaali (interpreter)" in html


def test_open_now_at_a_controlled_time(client, login_as, app, org, monkeypatch):
    add_program(app, org, "Day Center", sites=[{"hours": WEEKDAYS}])
    add_program(app, org, "Night Shelter", sites=[{"hours": NIGHTS}])
    add_program(app, org, "Crisis Line", sites=[{"open_24_7": True, "hours": []}])
    login_as("responder")

    at(monkeypatch, MONDAY_10)
    html = client.get("/directory?open_now=y").get_data(as_text=True)
    assert "Day Center" in html and "Crisis Line" in html and "Night Shelter" not in html

    at(monkeypatch, MONDAY_23)
    html = client.get("/directory?open_now=y").get_data(as_text=True)
    assert "Night Shelter" in html and "Crisis Line" in html and "Day Center" not in html
    assert "2 programs" in html


def test_open_now_respects_a_closed_day(client, login_as, app, org, monkeypatch):
    program_id = add_program(app, org, "Day Center")
    with app.test_request_context():
        from referral_hub.directory.models import Program

        program_site = db.session.get(Program, program_id).program_sites[0]
        directory.add_exception(program_site, MONDAY_10.date(), reason="Holiday")
        db.session.commit()
    login_as("responder")
    at(monkeypatch, MONDAY_10)
    assert "Day Center" not in client.get("/directory?open_now=y").get_data(as_text=True)
    html = client.get(f"/directory/programs/{program_id}").get_data(as_text=True)
    assert "Closed now" in html and "closed (Holiday)" in html


def test_near_a_place_orders_by_straight_line_distance(client, login_as, app, org):
    add_program(app, org, "Far Away", sites=[{"at": (45.0500, -93.3500)}])
    add_program(app, org, "Close By", sites=[{"at": (44.9780, -93.2660)}])
    add_program(app, org, "Middle", sites=[{"at": (44.9500, -93.2400)}])
    login_as("responder")

    html = client.get("/directory?near=44.9773,-93.2654").get_data(as_text=True)
    assert names_in_order(html, "Close By", "Middle", "Far Away")
    assert "0.1 km" in html

    response = client.get("/directory?near=Nowhere+Land+Xyzzy")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "We could not find “Nowhere Land Xyzzy”" in html
    assert names_in_order(html, "Close By", "Far Away", "Middle")  # by name
    assert 'value="Nowhere Land Xyzzy"' in html  # the input is kept


def test_pages_keep_the_filters(client, login_as, app, org):
    for n in range(27):
        add_program(app, org, f"Program {n:02d}", sites=[])
    login_as("responder")
    html = client.get("/directory?category=housing").get_data(as_text=True)
    assert "27 programs" in html and "Program 24" in html and "Program 25" not in html
    assert "category=housing" in html and "page=2" in html
    html = client.get("/directory?category=housing&page=2").get_data(as_text=True)
    assert "Program 25" in html and "Program 26" in html and "Program 00" not in html
    assert "Page 2 of 2" in html


def test_program_page_in_words(client, login_as, app, org, monkeypatch):
    program_id = add_program(
        app,
        org,
        "Family Housing",
        description="Apartments for families.",
        eligibility_description="Families with children in Minneapolis.",
        criteria={
            "and": [
                {">=": [{"var": "age"}, 18]},
                {"==": [{"var": "household"}, "with_children"]},
                {"in_service_area": [{"var": "location"}]},
            ]
        },
        languages=[("es", "staff"), ("so", "interpreter")],
        response_target_hours=48,
        required_documents=["Photo ID", "Proof of income"],
        is_free=False,
        fee_description="Sliding scale",
        capacity=("waitlist", 3),
        sites=[
            {
                "name": "Lake Street Office",
                "address_1": "1 E Lake St",
                "phone": "(612) 555-0100",
                "accessibility": "Step-free entrance",
                "transit_notes": "Bus 21 stops outside",
                "hours": [*WEEKDAYS, (4, time(22), time(2))],
            },
            {"name": "Night Desk", "open_24_7": True, "hours": []},
        ],
    )
    login_as("responder")
    at(monkeypatch, MONDAY_10)
    html = client.get(f"/directory/programs/{program_id}").get_data(as_text=True)
    for text in (
        "Apartments for families.",
        "Families with children in Minneapolis.",
        "Age must be at least 18",
        "Household must be “With children”",
        "A person qualifies when all of these hold:",
        "The person must be in the program's service area.",
        "Staff speak: Español",
        "With an interpreter: Soomaali",
        "Waitlist</strong>,",
        "3 open slots",
        "updated ",
        "within 48 hours",
        "Photo ID",
        "Proof of income",
        "Sliding scale",
        "1 E Lake St",
        'href="tel:6125550100"',
        "Step-free entrance",
        "Bus 21 stops outside",
        "Mon–Thu 9:00–17:00",  # noqa: RUF001
        "Fri 9:00–17:00, 22:00–2:00 (closes the next day)",  # noqa: RUF001
        "Open 24 hours, every day",
        "Open now",
    ):
        assert text in html, text


def test_program_page_for_a_rule_beyond_words(client, login_as, app, org):
    rule = {"!": {"or": [{"var": "veteran"}, {"<": [{"var": "age"}, 18]}]}}
    program_id = add_program(app, org, "Complex Rule", criteria=rule)
    login_as("responder")
    html = client.get(f"/directory/programs/{program_id}").get_data(as_text=True)
    assert "Asks about: Age, Is the person a veteran" in html


def test_inactive_program_is_hidden_except_from_its_managers(client, login_as, app, org):
    program_id = add_program(app, org, "Paused Program", is_active=False)
    login_as("responder")
    assert client.get(f"/directory/programs/{program_id}").status_code == 404
    client.post_form("/logout", token_from="/account")
    login_as("provider_admin", org=org)
    response = client.get(f"/directory/programs/{program_id}")
    assert response.status_code == 200
    assert "inactive" in response.get_data(as_text=True)


def count_selects(app, client, path):
    """SELECT statements one request runs (after a warm-up request for lazy caches)."""
    client.get(path)
    with counting_selects(app) as seen:
        response = client.get(path)
    assert response.status_code == 200
    return len(seen)


def test_a_page_costs_the_same_queries_for_3_or_20_programs(client, login_as, app, org):
    def add(n):
        add_program(
            app,
            org,
            f"Program {n:02d}",
            categories=["housing", "food"],
            languages=[("es", "staff"), ("so", "interpreter")],
            sites=[{"at": (44.97 + n / 1000, -93.26)}, {"open_24_7": True, "hours": []}],
        )

    for n in range(3):
        add(n)
    login_as("responder")
    plain = "/directory"
    filtered = "/directory?category=housing&language=es&open_now=y&near=44.9773,-93.2654"
    few = (count_selects(app, client, plain), count_selects(app, client, filtered))
    for n in range(3, 20):
        add(n)
    many = (count_selects(app, client, plain), count_selects(app, client, filtered))
    assert few == many
    assert "20 programs" in client.get(filtered).get_data(as_text=True)
