"""The JSON API: bearer tokens, the one error shape, pagination and the OpenAPI document."""

from datetime import timedelta

import pytest
from openapi_spec_validator import validate

from referral_hub.accounts import operations as ops
from referral_hub.accounts.models import ApiToken, Role, User
from referral_hub.core.db import utcnow
from referral_hub.extensions import db


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def assert_error_shape(response, status, code=None):
    assert response.status_code == status
    assert response.is_json, response.get_data(as_text=True)[:200]
    body = response.get_json()
    assert set(body) == {"error"}
    assert {"code", "message", "fields"} <= set(body["error"])
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    if code:
        assert body["error"]["code"] == code
    return body["error"]


def test_me_with_a_token(client, make_user, api_token):
    user = make_user(Role.RESPONDER, name="Hodan Ali")
    response = client.get("/api/v1/me", headers=bearer(api_token(user)))
    assert response.status_code == 200
    body = response.get_json()
    assert body["email"] == user.email and body["name"] == "Hodan Ali"
    assert body["roles"] == ["responder"]
    assert body["memberships"][0]["organization"]["kind"] == "responder_team"
    assert "password_hash" not in body


@pytest.mark.parametrize("header", [None, "Bearer", "Bearer nope", "Basic abc", "Token x"])
def test_me_without_a_valid_token_is_401_in_the_error_shape(client, header):
    headers = {"Authorization": header} if header else {}
    assert_error_shape(client.get("/api/v1/me", headers=headers), 401, "unauthorized")


def test_revoked_expired_and_deactivated_tokens_are_refused(client, app, make_user, api_token):
    user = make_user(Role.RESPONDER)
    revoked, expired, live = api_token(user), api_token(user), api_token(user)
    with app.app_context():
        db_user = db.session.get(User, user.id)
        tokens = {t.prefix: t for t in ops.user_api_tokens(db_user)}
        ops.revoke_api_token(db_user, tokens[revoked[:9]].id)
        tokens[expired[:9]].expires_at = utcnow() - timedelta(minutes=1)
        db.session.commit()
    assert client.get("/api/v1/me", headers=bearer(revoked)).status_code == 401
    assert client.get("/api/v1/me", headers=bearer(expired)).status_code == 401
    assert client.get("/api/v1/me", headers=bearer(live)).status_code == 200
    with app.app_context():
        ops.update_user(db.session.get(User, user.id), is_active=False)
        db.session.commit()
    assert client.get("/api/v1/me", headers=bearer(live)).status_code == 401


def test_tokens_are_stored_hashed(app, make_user, api_token):
    user = make_user(Role.RESPONDER)
    plain = api_token(user)
    with app.app_context():
        stored = db.session.query(ApiToken).filter_by(user_id=user.id).one()
        assert plain not in (stored.token_hash, stored.prefix)
        assert len(stored.token_hash) == 64 and plain.startswith(stored.prefix)


def test_account_page_issues_a_token_once(client, login_as):
    login_as(Role.RESPONDER)
    response = client.post_form("/account/tokens", {"name": "laptop"}, token_from="/account")
    assert response.status_code == 302
    html = client.get("/account").get_data(as_text=True)
    token = html.split('<code class="token">')[1].split("<")[0]
    assert client.get("/api/v1/me", headers=bearer(token)).status_code == 200
    assert token not in client.get("/account").get_data(as_text=True)  # shown once


def test_bad_json_body_answers_the_error_shape(client, make_user, api_token):
    admin = make_user(Role.ADMIN)
    headers = bearer(api_token(admin))
    response = client.post(
        "/api/v1/users", headers=headers, data="{not json", content_type="application/json"
    )
    assert_error_shape(response, 422, "invalid_json")


def test_invalid_fields_are_listed(client, make_user, api_token):
    admin = make_user(Role.ADMIN)
    response = client.post(
        "/api/v1/users",
        headers=bearer(api_token(admin)),
        json={"email": "not-an-email", "role": "wizard", "surprise": 1},
    )
    error = assert_error_shape(response, 422, "validation_failed")
    assert {"email", "role", "name", "organization_id", "surprise"} <= set(error["fields"])


def test_rule_violations_from_operations_use_the_shape(client, make_user, api_token, make_org):
    admin = make_user(Role.ADMIN)
    provider = make_org("provider")
    response = client.post(
        "/api/v1/users",
        headers=bearer(api_token(admin)),
        json={
            "email": admin.email,
            "name": "Dup",
            "role": "dispatcher",
            "organization_id": provider.id,
        },
    )
    error = assert_error_shape(response, 422, "validation_failed")
    assert set(error["fields"]) == {"email", "role"}


def test_unknown_api_path_and_method_use_the_shape(client):
    assert_error_shape(client.get("/api/v1/nothing-here"), 404)
    assert_error_shape(client.delete("/api/v1/me"), 405)


def test_bad_query_parameters_use_the_shape(client, make_user, api_token):
    user = make_user(Role.ADMIN)
    response = client.get("/api/v1/users?page=0&per_page=9999", headers=bearer(api_token(user)))
    error = assert_error_shape(response, 422)
    assert set(error["fields"]) == {"page", "per_page"}


def test_pagination(client, make_user, make_org, api_token):
    org = make_org("provider")
    admin = make_user(Role.PROVIDER_ADMIN, org=org)
    for _ in range(4):
        make_user(Role.PROVIDER_STAFF, org=org)
    headers = bearer(api_token(admin))
    first = client.get("/api/v1/users?per_page=2", headers=headers).get_json()
    third = client.get("/api/v1/users?per_page=2&page=3", headers=headers).get_json()
    assert (first["total"], first["pages"], len(first["items"])) == (5, 3, 2)
    assert len(third["items"]) == 1
    seen = {u["id"] for u in first["items"]} | {u["id"] for u in third["items"]}
    assert len(seen) == 3


def test_openapi_document_is_valid_and_generated_from_the_views(client):
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    spec = response.get_json()
    validate(spec)
    assert spec["openapi"].startswith("3.")
    me = spec["paths"]["/api/v1/me"]["get"]
    assert me["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("Me")
    assert "401" in me["responses"]
    assert "/api/v1/users/{user_id}" in spec["paths"]
    assert "patch" in spec["paths"]["/api/v1/users/{user_id}"]
    assert "Error" in spec["components"]["schemas"]


def test_every_api_route_is_in_the_openapi_document(app, client):
    spec = client.get("/api/v1/openapi.json").get_json()
    documented = {(path, method) for path, ops_ in spec["paths"].items() for method in ops_}
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1/") or rule.endpoint.startswith("meta_api."):
            continue
        path = rule.rule
        for conv in ("<int:", "<"):
            path = path.replace(conv, "{")
        path = path.replace(">", "}")
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            assert (path, method.lower()) in documented, f"{method} {rule.rule} is undocumented"
