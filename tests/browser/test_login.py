"""Signing in and out through the real login page, in Chromium on a phone-sized screen."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from referral_hub.demo import demo_users
from tests.conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.no_transaction]

HOME_HEADINGS = {
    "responder": "Responder home",
    "provider_staff": "Provider inbox",
    "provider_admin": "Provider administration",
    "dispatcher": "Dispatch board",
    "coordinator": "City coordination",
    "admin": "Administration",
}
LOGIN_URL = re.compile(r"/login(\?.*)?$")
DEMO_USERS = demo_users()


def sign_in(page: Page, email: str, password: str) -> None:
    page.goto("/login")
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def test_demo_users_cover_every_role():
    assert {user["role"] for user in DEMO_USERS} >= set(HOME_HEADINGS)


@pytest.mark.parametrize("user", DEMO_USERS, ids=[u["email"] for u in DEMO_USERS])
def test_demo_user_signs_in_to_their_home_and_out_again(page: Page, live_server, user):
    sign_in(page, user["email"], PASSWORD)

    page.wait_for_url(f"{live_server.url}/")
    # Signed in, the page speaks the user's language (English until it is translated).
    lang = live_server.page_language(user.get("locale"))
    expect(page.get_by_role("heading", level=1)).to_have_text(
        live_server.gettext(lang, HOME_HEADINGS[user["role"]])
    )

    page.get_by_role("banner").get_by_role(
        "button", name=live_server.gettext(lang, "Sign out")
    ).click()

    expect(page).to_have_url(LOGIN_URL)
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in")
    expect(page.get_by_role("status")).to_have_text("You are signed out.")
    expect(page.get_by_label("E-mail")).to_be_visible()

    # The session is really over: home sends us back to the login page.
    page.goto("/")
    expect(page).to_have_url(LOGIN_URL)
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in")


def test_wrong_password_says_why_and_keeps_the_email(page: Page):
    email = DEMO_USERS[0]["email"]
    sign_in(page, email, "not the right password")

    expect(page.get_by_role("alert")).to_have_text("E-mail or password is not correct.")
    expect(page).to_have_url(LOGIN_URL)
    expect(page.get_by_label("E-mail")).to_have_value(email)
    expect(page.get_by_label("Password")).to_have_value("")
