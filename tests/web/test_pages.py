"""Headers, error pages, role homes and the no-JavaScript, no-third-party layout."""

import re

import pytest

from referral_hub.accounts.models import Role

HOMES = {
    Role.RESPONDER: "Responder home",
    Role.PROVIDER_STAFF: "Provider inbox",
    Role.PROVIDER_ADMIN: "Provider administration",
    Role.DISPATCHER: "Dispatch board",
    Role.COORDINATOR: "City coordination",
    Role.ADMIN: "Administration",
}


def test_security_headers_on_pages(client):
    response = client.get("/login")
    csp = response.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "http" not in csp  # no other origin is allowed anywhere
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Referrer-Policy"] == "same-origin"
    assert response.headers["Cache-Control"] == "no-store"


def test_security_headers_on_api_errors(client):
    response = client.get("/api/v1/me")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize("role", list(Role))
def test_each_role_lands_on_its_home(client, login_as, role):
    login_as(role)
    html = client.get("/").get_data(as_text=True)
    assert f"<h1>{HOMES[role]}</h1>" in html


def test_navigation_depends_on_role(client, login_as):
    login_as(Role.RESPONDER)
    html = client.get("/").get_data(as_text=True)
    assert 'href="/account"' in html
    assert 'href="/admin/users"' not in html
    assert client.get("/admin/organizations/new").status_code == 403


def test_pages_load_nothing_from_other_origins(client, login_as):
    login_as(Role.ADMIN)
    for path in ["/", "/account", "/admin/organizations", "/admin/users", "/admin/users/new"]:
        html = client.get(path).get_data(as_text=True)
        assert not re.search(r'(src|href)="(https?:)?//', html), path
        assert "<script" not in html  # every page works without JavaScript


def test_not_found_page(client):
    response = client.get("/no/such/page")
    assert response.status_code == 404
    assert "We could not find that page." in response.get_data(as_text=True)


def test_healthz(client):
    response = client.get("/healthz")
    assert response.status_code == 200 and response.get_json() == {"status": "ok"}


def test_static_assets_are_served_locally(client):
    response = client.get("/static/app.css")
    assert response.status_code == 200
    assert "text/css" in response.headers["Content-Type"]
