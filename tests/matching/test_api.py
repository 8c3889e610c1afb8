"""POST /api/v1/matches and GET /api/v1/screener as API clients meet them."""

from referral_hub.accounts.models import Role

from .conftest import CITY_HALL


def test_matches_api(client, make_user, api_token, build):
    build({"name": "Youth Housing", "criteria": {">=": [{"var": "age"}, 18]}, "open_24_7": True})
    token = api_token(make_user(Role.RESPONDER))
    response = client.post(
        "/api/v1/matches",
        headers={"Authorization": f"Bearer {token}"},
        json={
            "answers": {"needs": ["housing"], "age": 19},
            "location": {"lat": CITY_HALL[0], "lon": CITY_HALL[1]},
        },
    )
    assert response.status_code == 200
    body = response.get_json()
    assert body["counts"] == {"eligible": 1, "unknown": 0, "ineligible": 0}
    item = body["eligible"][0]
    assert item["name"] == "Youth Housing" and item["outcome"]["status"] == "eligible"
    assert item["site"]["travel"]["source"] == "estimate"
    assert item["reason"]


def test_matches_api_errors(client, make_user, api_token):
    headers = {"Authorization": f"Bearer {api_token(make_user(Role.RESPONDER))}"}
    bad = client.post(
        "/api/v1/matches",
        headers=headers,
        json={"answers": {"age": "x", "pets": 2}, "location": {"lat": 99}},
    )
    assert bad.status_code == 422
    assert set(bad.get_json()["error"]["fields"]) >= {"location.lat", "location.lon"}
    bad = client.post("/api/v1/matches", headers=headers, json={"answers": {"age": "x"}})
    assert bad.status_code == 422 and set(bad.get_json()["error"]["fields"]) == {"age"}
    both = client.post(
        "/api/v1/matches",
        headers=headers,
        json={"location": {"lat": 44.9, "lon": -93.2}, "place": "55411"},
    )
    assert both.status_code == 422 and "place" in both.get_json()["error"]["fields"]
    assert client.post("/api/v1/matches", json={}).status_code == 401


def test_unknown_place_answers_with_a_note(client, make_user, api_token):
    headers = {"Authorization": f"Bearer {api_token(make_user(Role.RESPONDER))}"}
    body = client.post(
        "/api/v1/matches", headers=headers, json={"place": "Qwxyz Nowhere"}
    ).get_json()
    assert body["location"] is None and "could not find" in body["location_note"]


def test_screener_api_is_translated(client, make_user, api_token):
    user = make_user(Role.RESPONDER, locale="es")
    body = client.get(
        "/api/v1/screener", headers={"Authorization": f"Bearer {api_token(user)}"}
    ).get_json()
    codes = [q["code"] for q in body["questions"]]
    assert codes[:3] == ["needs", "age", "language"] and body["version"] == 1
