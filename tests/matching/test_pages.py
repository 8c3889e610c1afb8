"""The screener and results as a responder meets them."""

import re

from referral_hub.accounts.models import Role

from .conftest import CITY_HALL


def test_screener_page_for_responders_only(client, login_as):
    login_as(Role.RESPONDER)
    html = client.get("/screen").get_data(as_text=True)
    assert "What does the person need help with?" in html
    assert "More questions (optional)" in html
    client.post_form("/logout", token_from="/screen")
    login_as(Role.PROVIDER_STAFF)
    assert client.get("/screen").status_code == 403


def test_results_show_groups_and_reasons(client, login_as, build):
    build(
        {
            "name": "Youth Housing",
            "criteria": {"and": [{">=": [{"var": "age"}, 18]}, {"<=": [{"var": "age"}, 24]}]},
            "open_24_7": True,
        },
        {"name": "Veterans Home", "criteria": {"var": "veteran"}, "open_24_7": True},
    )
    login_as(Role.RESPONDER)
    response = client.post_form(
        "/screen",
        {
            "needs": ["housing"],
            "age": "20",
            "location": f"{CITY_HALL[0]}, {CITY_HALL[1]}",
            "mode": "drive",
        },
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert re.search(r"Qualifies</h3>\s*<ol[^>]*>\s*<li>.*Youth Housing", html, re.S)
    assert "Might qualify: ask more" in html and "Veterans Home" in html
    assert "Ask next:" in html
    assert "(estimated)" in html
    assert 'value="20"' in html  # the answers stay in the form to change them
    # Each program one qualifies for (or might) can be referred to, carrying the answers.
    assert "Refer to Youth Housing" in html and "Refer to Veterans Home" in html
    assert "&#34;age&#34;: 20" in html or "&quot;age&quot;: 20" in html


def test_bad_answers_keep_input_and_say_why(client, login_as):
    login_as(Role.RESPONDER)
    response = client.post_form(
        "/screen", {"age": "250", "location": "Lake Street", "needs": ["housing"]}
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "Number must be between 0 and 120." in html
    assert 'value="Lake Street"' in html
    assert re.search(r'value="housing"[^>]*checked|checked[^>]*value="housing"', html)


def test_unknown_place_is_explained_and_results_still_shown(client, login_as, build):
    build({"name": "Anywhere Help", "open_24_7": True})
    login_as(Role.RESPONDER)
    html = client.post_form("/screen", {"location": "Qwxyz Nowhere"}).get_data(as_text=True)
    assert "could not find" in html
    assert "Anywhere Help" in html


def test_phone_location_fields_win_over_typed_text(client, login_as, build):
    build({"name": "Near", "at": CITY_HALL, "open_24_7": True})
    login_as(Role.RESPONDER)
    html = client.post_form(
        "/screen", {"lat": str(CITY_HALL[0]), "lon": str(CITY_HALL[1]), "location": "ignored text"}
    ).get_data(as_text=True)
    assert "could not find" not in html and "Near" in html


def test_screening_without_csrf_is_refused(client, login_as):
    login_as(Role.RESPONDER)
    assert client.post("/screen", data={"age": "20"}).status_code == 400
