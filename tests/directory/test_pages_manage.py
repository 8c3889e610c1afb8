"""Provider admins keep listings current: scope, capacity, listing, criteria, sites, hours."""

from datetime import datetime, time

import pytest

from referral_hub.accounts.models import Role
from referral_hub.directory.models import CapacityStatus, Program, Site
from referral_hub.extensions import db

from .test_pages_browse import CHI, add_program, at

FRIDAY_NIGHT = [(4, "22:00", "02:00")]


@pytest.fixture
def orgs(make_org):
    return make_org("provider", name="Org A"), make_org("provider", name="Org B")


@pytest.fixture
def mine(app, orgs):
    return add_program(app, orgs[0], "Our Shelter")


@pytest.fixture
def theirs(app, orgs):
    return add_program(app, orgs[1], "Their Shelter")


def load(app, program_id):
    with app.app_context():
        program = db.session.get(Program, program_id)
        db.session.expunge(program)
        return program


def program_site_id(app, program_id):
    with app.app_context():
        return db.session.get(Program, program_id).program_sites[0].id


def criteria_form(rows=(), **fields):
    data = {
        "editor": "builder",
        "combinator": "and",
        "raw_json": "",
        "eligibility_description": "",
        "action": "save",
    }
    for n, (question, op, value) in enumerate(rows):
        data.update({f"rows-{n}-question": question, f"rows-{n}-op": op, f"rows-{n}-value": value})
    data.update(fields)
    return data


def listing_form(**fields):
    data = {
        "name": "Our Shelter",
        "categories": ["housing"],
        "description": "Beds for tonight.",
        "response_target_hours": "12",
        "accepts_responder_referrals": "y",
        "required_documents": "Photo ID\n\nProof of address\n",
        "fee_description": "",
        "phone": "612-555-0101",
        "url": "",
        "email": "",
        "lang_es": "staff",
        "lang_so": "interpreter",
        "is_free": "y",
        "is_active": "y",
    }
    data.update(fields)
    return data


# --- who may manage what --------------------------------------------------------------------


@pytest.mark.parametrize("role", [Role.RESPONDER, Role.PROVIDER_STAFF, Role.COORDINATOR])
def test_other_roles_get_403_on_manage(client, login_as, orgs, mine, role):
    login_as(role, org=orgs[0] if role == Role.PROVIDER_STAFF else None)
    for path in (
        "/manage",
        "/manage/programs",
        "/manage/programs/new",
        f"/manage/programs/{mine}/edit",
        f"/manage/programs/{mine}/criteria",
        f"/manage/programs/{mine}/sites",
    ):
        assert client.get(path).status_code == 403, path
    response = client.post_form(
        f"/manage/programs/{mine}/capacity", {"status": "no-capacity"}, token_from="/account"
    )
    assert response.status_code == 403


def test_foreign_program_answers_404_on_every_manage_route(client, login_as, app, orgs, theirs):
    login_as(Role.PROVIDER_ADMIN, org=orgs[0])
    base = f"/manage/programs/{theirs}"
    for path in (f"{base}/edit", f"{base}/criteria", f"{base}/sites"):
        assert client.get(path).status_code == 404, path
    ps = program_site_id(app, theirs)
    for path in (
        f"{base}/capacity",
        f"{base}/edit",
        f"{base}/criteria",
        f"{base}/sites",
        f"{base}/sites/new",
        f"{base}/sites/{ps}/hours",
        f"{base}/sites/{ps}/exceptions",
    ):
        response = client.post_form(path, {"status": "no-capacity"}, token_from="/account")
        assert response.status_code == 404, path
    assert load(app, theirs).capacity_status == CapacityStatus.CAPACITY
    assert "Their Shelter" not in client.get("/manage/programs").get_data(as_text=True)


def test_program_site_of_another_program_answers_404(client, login_as, app, orgs, mine):
    other = add_program(app, orgs[0], "Our Other Program")
    login_as(Role.PROVIDER_ADMIN, org=orgs[0])
    ps = program_site_id(app, other)
    response = client.post_form(
        f"/manage/programs/{mine}/sites/{ps}/hours", {}, token_from="/account"
    )
    assert response.status_code == 404


def test_admin_manages_every_organization(client, login_as, orgs, mine, theirs):
    login_as(Role.ADMIN)
    html = client.get("/manage/programs").get_data(as_text=True)
    assert "Our Shelter" in html and "Their Shelter" in html
    assert client.get(f"/manage/programs/{theirs}/criteria").status_code == 200


# --- capacity: one tap ------------------------------------------------------------------------


def test_one_tap_capacity_update_shows_in_the_directory(client, login_as, app, orgs, mine):
    login_as(Role.PROVIDER_ADMIN, org=orgs[0])
    page = "/manage/programs"
    response = client.post_form(
        f"/manage/programs/{mine}/capacity",
        {"status": "no-capacity", "open_slots": "2"},
        token_from=page,
    )
    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/manage/programs#program-{mine}")
    program = load(app, mine)
    assert program.capacity_status == CapacityStatus.NO_CAPACITY and program.open_slots == 0
    assert "Our Shelter: Full." in client.get(page).get_data(as_text=True)
    assert "<strong>Full</strong>" in client.get("/directory").get_data(as_text=True)

    client.post_form(
        f"/manage/programs/{mine}/capacity",
        {"status": "capacity", "open_slots": "4"},
        token_from=page,
    )
    assert "4 open slots" in client.get("/directory").get_data(as_text=True)


def test_capacity_refuses_negative_slots_beside_the_field(client, login_as, app, orgs, mine):
    login_as(Role.PROVIDER_ADMIN, org=orgs[0])
    response = client.post_form(
        f"/manage/programs/{mine}/capacity",
        {"status": "waitlist", "open_slots": "-3"},
        token_from="/manage/programs",
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert f'id="slots-{mine}-error">Open slots cannot be negative.' in html
    assert 'value="-3"' in html
    assert load(app, mine).capacity_status == CapacityStatus.CAPACITY


def test_form_without_csrf_token_is_refused(client, login_as, app, orgs, mine):
    login_as(Role.PROVIDER_ADMIN, org=orgs[0])
    response = client.post(f"/manage/programs/{mine}/capacity", data={"status": "no-capacity"})
    assert response.status_code == 400
    assert load(app, mine).capacity_status == CapacityStatus.CAPACITY
    # Forms repeated under a prefix carry no token of their own: CSRFProtect still checks.
    ps = program_site_id(app, mine)
    data = {f"ps{ps}-open_24_7": "y"}
    assert client.post(f"/manage/programs/{mine}/sites/{ps}/hours", data=data).status_code == 400
    with app.app_context():
        assert not db.session.get(Program, mine).program_sites[0].open_24_7


# --- the listing ------------------------------------------------------------------------------


def test_create_a_program(client, login_as, app, orgs):
    login_as(Role.PROVIDER_ADMIN, org=orgs[0])
    response = client.post_form(
        "/manage/programs/new", listing_form(name="Youth Jobs", categories=["employment"])
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    program_id = int(response.headers["Location"].split("/")[-2])
    with app.app_context():
        program = db.session.get(Program, program_id)
        assert program.name == "Youth Jobs" and program.organization_id == orgs[0].id
        assert [c.code for c in program.categories] == ["employment"]
        assert program.required_documents == ["Photo ID", "Proof of address"]
        assert program.response_target_hours == 12
        assert {(pl.language, pl.mode.value) for pl in program.languages} == {
            ("es", "staff"),
            ("so", "interpreter"),
        }


def test_edit_saves_the_listing(client, login_as, app, orgs, mine):
    login_as(Role.PROVIDER_ADMIN, org=orgs[0])
    path = f"/manage/programs/{mine}/edit"
    assert 'value="Our Shelter"' in client.get(path).get_data(as_text=True)
    response = client.post_form(
        path, listing_form(name="Our Night Shelter", is_free="", fee_description="$5 a night")
    )
    assert response.status_code == 302
    program = load(app, mine)
    assert program.name == "Our Night Shelter" and not program.is_free
    assert program.fee_description == "$5 a night"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"name": "  "}, "A name is required."),
        ({"response_target_hours": "0"}, "Choose between 1 and 720 hours."),
        ({"response_target_hours": "soon"}, "Not a valid integer value."),
        ({"categories": []}, "Choose at least one category."),
        ({"url": "javascript://example.com/%0Aalert(1)"}, "Start the address with https://."),
    ],
)
def test_edit_keeps_input_on_error(client, login_as, app, orgs, mine, fields, message):
    login_as(Role.PROVIDER_ADMIN, org=orgs[0])
    response = client.post_form(
        f"/manage/programs/{mine}/edit", listing_form(description="Typed and kept", **fields)
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert message in html
    assert "Typed and kept" in html and 'value="612-555-0101"' in html
    assert load(app, mine).description == ""


# --- criteria -------------------------------------------------------------------------------


def test_builder_saves_a_two_row_and_rule(client, login_as, app, orgs, mine):
    login_as(Role.PROVIDER_ADMIN, org=orgs[0])
    path = f"/manage/programs/{mine}/criteria"
    form = criteria_form(
        [("age", "at_least", "18"), ("household", "is", "with_children")],
        eligibility_description="Adults with children.",
    )
    response = client.post_form(path, form)
    assert response.status_code == 302, response.get_data(as_text=True)
    program = load(app, mine)
    assert program.criteria == {
        "and": [{">=": [{"var": "age"}, 18]}, {"==": [{"var": "household"}, "with_children"]}]
    }
    assert program.criteria_version == 2
    assert program.eligibility_description == "Adults with children."

    html = client.get(path).get_data(as_text=True)  # the rows come back from the stored rule
    assert '<option selected value="age">' in html and 'value="18"' in html
    assert 'value="with_children"' in html


def test_builder_with_any_and_the_service_area(client, login_as, app, orgs, mine):
    login_as(Role.PROVIDER_ADMIN, org=orgs[0])
    form = criteria_form(
        [("veteran", "is", "yes"), ("household", "one_of", "alone, With children")],
        combinator="or",
        in_service_area="y",
    )
    assert client.post_form(f"/manage/programs/{mine}/criteria", form).status_code == 302
    assert load(app, mine).criteria == {
        "and": [
            {
                "or": [
                    {"==": [{"var": "veteran"}, True]},
                    {"in": [{"var": "household"}, ["alone", "with_children"]]},
                ]
            },
            {"in_service_area": [{"var": "location"}]},
        ]
    }


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (("household", "is", "mansion"), "The value &#34;mansion&#34; does not fit the question"),
        (("age", "at_least", "old"), "Enter a whole number."),
        (("veteran", "is", "maybe"), "Answer “yes” or “no”."),
        (("household", "at_least", "alone"), "needs a number question"),
    ],
)
def test_builder_refuses_a_faulty_row_beside_it(client, login_as, app, orgs, mine, row, message):
    login_as(Role.PROVIDER_ADMIN, org=orgs[0])
    form = criteria_form([("age", "at_least", "18"), row])
    response = client.post_form(f"/manage/programs/{mine}/criteria", form)
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert '<p class="error" id="rows-1-value-error">' in html
    error = html.split('id="rows-1-value-error">')[1].split("</p>")[0]
    assert message in error
    assert f'value="{row[2]}"' in html  # kept
    assert load(app, mine).criteria_version == 1


def test_raw_json_is_saved_or_refused_with_a_clear_message(client, login_as, app, orgs, mine):
    login_as(Role.PROVIDER_ADMIN, org=orgs[0])
    path = f"/manage/programs/{mine}/criteria"
    rule = '{"!": {"var": "veteran"}}'
    response = client.post_form(path, criteria_form(editor="json", raw_json=rule))
    assert response.status_code == 302
    assert load(app, mine).criteria == {"!": {"var": "veteran"}}
    assert "too complex for the builder" in client.get(path).get_data(as_text=True)

    response = client.post_form(path, criteria_form(editor="json", raw_json='{"and": [}'))
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "This is not valid JSON: Expecting value (line 1, column 10)." in html
    assert "{&#34;and&#34;: [}" in html

    response = client.post_form(path, criteria_form(editor="json", raw_json='{"xor": []}'))
    assert response.status_code == 422
    assert "The operation “xor” is not supported." in response.get_data(as_text=True)
    assert load(app, mine).criteria_version == 2


def test_try_it_evaluates_the_form_rule_without_saving(client, login_as, app, orgs, mine):
    login_as(Role.PROVIDER_ADMIN, org=orgs[0])
    path = f"/manage/programs/{mine}/criteria"
    rows = [("age", "at_least", "18"), ("needs", "includes", "housing")]

    def try_it(**answers):
        data = criteria_form(rows, action="try", **{f"answers-{k}": v for k, v in answers.items()})
        response = client.post_form(path, data)
        assert response.status_code == 200, response.get_data(as_text=True)
        return response.get_data(as_text=True)

    html = try_it(age="30", needs=["housing", "food"])
    assert "<strong>Eligible</strong>" in html
    html = try_it(age="16", needs="housing")
    assert "<strong>Not eligible</strong>" in html and "Age must be at least 18" in html
    html = try_it(needs="housing")
    assert "<strong>Unknown: ask more</strong>" in html and "<li>Age</li>" in html
    assert 'value="housing" id="answers-needs-0" checked' in html  # answers are kept

    response = client.post_form(path, criteria_form(rows, action="try", **{"answers-age": "x"}))
    assert response.status_code == 422 and "Enter a whole number." in response.get_data(
        as_text=True
    )
    program = load(app, mine)
    assert program.criteria is None and program.criteria_version == 1


# --- sites and hours --------------------------------------------------------------------------


def test_hours_with_an_after_midnight_close(client, login_as, app, orgs, mine, monkeypatch):
    login_as(Role.PROVIDER_ADMIN, org=orgs[0])
    ps = program_site_id(app, mine)
    data = {
        f"ps{ps}-rows-0-day": "weekdays",
        f"ps{ps}-rows-0-opens": "09:00",
        f"ps{ps}-rows-0-closes": "17:00",
    }
    for n, (day, opens, closes) in enumerate(FRIDAY_NIGHT, start=1):
        data.update(
            {
                f"ps{ps}-rows-{n}-day": str(day),
                f"ps{ps}-rows-{n}-opens": opens,
                f"ps{ps}-rows-{n}-closes": closes,
            }
        )
    path = f"/manage/programs/{mine}/sites"
    response = client.post_form(f"{path}/{ps}/hours", data, token_from=path)
    assert response.status_code == 302, response.get_data(as_text=True)
    with app.app_context():
        hours = db.session.get(Program, mine).program_sites[0].weekly_hours
        assert (4, time(22), time(2)) in [(h.weekday, h.opens_at, h.closes_at) for h in hours]
        assert len(hours) == 6
    html = client.get(path).get_data(as_text=True)
    assert "after midnight" in html  # the hint says how to enter it
    assert '<option selected value="weekdays">' in html  # Mon-Fri folded back into one row

    at(monkeypatch, datetime(2026, 11, 28, 1, 0, tzinfo=CHI))  # Saturday 1:00
    html = client.get(f"/directory/programs/{mine}").get_data(as_text=True)
    assert "Fri 9:00–17:00, 22:00–2:00 (closes the next day)" in html  # noqa: RUF001
    assert "<strong>Open now</strong>" in html


def test_hours_rows_are_checked(client, login_as, app, orgs, mine):
    login_as(Role.PROVIDER_ADMIN, org=orgs[0])
    ps = program_site_id(app, mine)
    path = f"/manage/programs/{mine}/sites"
    response = client.post_form(
        f"{path}/{ps}/hours",
        {f"ps{ps}-rows-0-day": "2", f"ps{ps}-rows-0-opens": "09:00"},
        token_from=path,
    )
    assert response.status_code == 422
    assert "Give both the opening and the closing time." in response.get_data(as_text=True)
    response = client.post_form(f"{path}/{ps}/hours", {}, token_from=path)
    assert response.status_code == 422
    assert "Give opening hours, or mark the service" in response.get_data(as_text=True)


def test_a_dated_exception(client, login_as, app, orgs, mine, monkeypatch):
    login_as(Role.PROVIDER_ADMIN, org=orgs[0])
    at(monkeypatch, datetime(2026, 11, 20, 12, 0, tzinfo=CHI))
    ps = program_site_id(app, mine)
    path = f"/manage/programs/{mine}/sites"
    response = client.post_form(
        f"{path}/{ps}/exceptions",
        {
            f"ex{ps}-on_date": "2026-11-26",
            f"ex{ps}-closed": "special",
            f"ex{ps}-opens": "10:00",
            f"ex{ps}-closes": "14:00",
            f"ex{ps}-reason": "Thanksgiving",
        },
        token_from=path,
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    assert "Nov 26, 2026: open 10:00–14:00 (Thanksgiving)" in client.get(path).get_data(  # noqa: RUF001
        as_text=True
    )
    response = client.post_form(
        f"{path}/{ps}/exceptions",
        {f"ex{ps}-on_date": "2026-11-27", f"ex{ps}-closed": "special"},
        token_from=path,
    )
    assert response.status_code == 422
    assert "Give the special opening and closing times." in response.get_data(as_text=True)


def test_new_site_is_validated_then_offered(client, login_as, app, orgs, mine):
    login_as(Role.PROVIDER_ADMIN, org=orgs[0])
    path = f"/manage/programs/{mine}/sites"
    site = {
        "name": "Eastside Office",
        "address_1": "5 E Hennepin Ave",
        "postal_code": "554",
        "latitude": "91",
        "longitude": "-93.25",
        "phone": "",
        "accessibility": "Ramp",
        "transit_notes": "",
    }
    response = client.post_form(f"{path}/new", site, token_from=path)
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "Enter a five-digit ZIP code." in html and "Number must be between -90" in html
    assert 'value="5 E Hennepin Ave"' in html

    site.update(postal_code="55414", latitude="44.99")
    assert client.post_form(f"{path}/new", site, token_from=path).status_code == 302
    with app.app_context():
        created = db.session.query(Site).filter_by(name="Eastside Office").one()
        assert created.organization_id == orgs[0].id and created.accessibility == "Ramp"
        site_id = created.id
    response = client.post_form(path, {"offer-site_id": str(site_id), "offer-open_24_7": "y"})
    assert response.status_code == 302, response.get_data(as_text=True)
    html = client.get(f"/directory/programs/{mine}").get_data(as_text=True)
    assert "Eastside Office" in html and "Open 24 hours, every day" in html


def test_offer_only_at_own_sites(client, login_as, app, orgs, mine, theirs):
    add_program(app, orgs[0], "Another Of Ours")  # so that one of our sites is free to offer
    login_as(Role.PROVIDER_ADMIN, org=orgs[0])
    with app.app_context():
        foreign_site = db.session.get(Program, theirs).program_sites[0].site_id
    path = f"/manage/programs/{mine}/sites"
    response = client.post_form(path, {"offer-site_id": str(foreign_site), "offer-open_24_7": "y"})
    assert response.status_code == 422
    assert "Not a valid choice" in response.get_data(as_text=True)
