"""From the field to the handoff, in Chromium on a phone-sized screen.

A responder screens a person, sees the programs they qualify for and refers them with
consent; the provider accepts and confirms the person was received; the responder sees
each step on the referral's page.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import PHONE_VIEWPORT
from tests.browser.test_login import sign_in
from tests.conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.no_transaction]

PROGRAM = "Next Step Young Adult Housing"  # demo: ages 18-24 who need housing


def screen(page: Page) -> None:
    page.goto("/screen")
    page.get_by_label("Housing or shelter").check()
    page.get_by_label("Age", exact=True).fill("20")
    page.get_by_label("Where is the person now?").fill("55411")
    page.get_by_role("button", name="Show programs").click()


def test_screener_shows_qualifying_programs_with_reasons(page: Page):
    sign_in(page, "responder@example.org", PASSWORD)
    screen(page)
    expect(page.get_by_role("heading", name="Qualifies")).to_be_visible()
    eligible = page.locator("ol.matches-eligible > li")
    expect(eligible.filter(has_text=PROGRAM)).to_have_count(1)
    # Every result explains itself: travel (estimated), open or closed, capacity.
    expect(eligible.first.locator(".match-reason")).to_contain_text("(estimated)")


def test_referral_from_screening_to_handoff(page: Page, browser: Browser, live_server):
    sign_in(page, "responder@example.org", PASSWORD)
    screen(page)
    page.get_by_role("button", name=f"Refer to {PROGRAM}").click()

    page.get_by_label("Name", exact=True).fill("Tou")
    page.get_by_role("checkbox", name=re.compile("agreed")).check()
    page.get_by_role("button", name="Send referral").click()
    expect(page).to_have_url(re.compile(r"/referrals/\d+$"))
    referral_url = page.url
    expect(page.get_by_text("Sent, awaiting answer").first).to_be_visible()
    code = page.locator(".handoff-code").inner_text().strip()
    assert re.fullmatch(r"\d{6}", code)

    provider = browser.new_context(
        base_url=live_server.url, viewport=PHONE_VIEWPORT, locale="en-US"
    ).new_page()
    try:
        sign_in(provider, "provider.admin@example.org", PASSWORD)
        provider.goto("/referrals")
        expect(provider.get_by_text(PROGRAM).first).to_be_visible()
        provider.goto(referral_url)
        expect(provider.locator(".handoff-code")).to_have_count(0)  # never shown to them
        provider.locator("summary", has_text="Accept").click()
        provider.get_by_role("button", name="Accept").click()
        expect(provider.get_by_text("Accepted").first).to_be_visible()
        provider.locator("summary", has_text="Confirm handoff").click()
        provider.get_by_label(re.compile("code", re.I)).fill(code)
        provider.get_by_role("button", name="Confirm handoff").click()
        expect(provider.get_by_text("Received in person").first).to_be_visible()
    finally:
        provider.context.close()

    page.reload()
    expect(page.get_by_text("Received in person").first).to_be_visible()
    timeline = page.locator("ol.timeline")
    for step in ("Send referral", "Accept", "Confirm handoff"):
        expect(timeline).to_contain_text(step)
