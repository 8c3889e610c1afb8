"""The client's side, in Chromium on a phone-sized screen, with no account.

A responder sends a referral and shows the person a QR code; in a fresh browser the person
opens the link, switches the page to Somali and confirms the appointment the program set;
the provider's inbox shows it.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, expect

from tests.browser.conftest import PHONE_VIEWPORT
from tests.browser.test_handoff import PROGRAM, screen
from tests.browser.test_login import sign_in
from tests.browser.test_ride import appointment_day
from tests.conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.no_transaction]


def test_client_opens_the_qr_link_switches_to_somali_and_confirms(browser: Browser, live_server):
    def new_page(**options):
        context = browser.new_context(
            base_url=live_server.url, viewport=PHONE_VIEWPORT, locale="en-US", **options
        )
        return context.new_page()

    responder, client, provider = new_page(), new_page(), new_page()
    try:
        sign_in(responder, "responder@example.org", PASSWORD)
        screen(responder)
        responder.get_by_role("button", name=f"Refer to {PROGRAM}").click()
        responder.get_by_label("Name", exact=True).fill("Hodan Client Link")
        responder.get_by_role("checkbox", name=re.compile("agreed")).check()
        responder.get_by_role("button", name="Send referral").click()
        expect(responder).to_have_url(re.compile(r"/referrals/\d+$"))
        referral_id = responder.url.rsplit("/", 1)[1]

        responder.get_by_role("button", name="Give the client their link (QR code)").click()
        qr = responder.locator(".qr-code svg")
        expect(qr).to_be_visible()
        box = qr.bounding_box()
        assert box and box["width"] >= 120  # big enough to scan from a phone
        url = responder.locator("#client-url").input_value()
        assert re.search(r"/c/c_[A-Za-z0-9_-]{40,}$", url), url

        # The program accepts and sets the appointment the person will confirm.
        sign_in(provider, "provider.admin@example.org", PASSWORD)
        provider.goto(f"/referrals/{referral_id}")
        provider.locator("summary", has_text="Accept").click()
        provider.get_by_label("Appointment (city time)").fill(
            appointment_day().strftime("%Y-%m-%dT%H:%M")
        )
        provider.get_by_role("button", name="Accept").click()
        expect(provider.get_by_text("Accepted").first).to_be_visible()

        # The person's own phone: no cookies, an English browser; the link is all they have.
        client.goto(urlsplit(url).path)
        expect(client.locator("html")).to_have_attribute("lang", "en")
        expect(client.get_by_role("heading", level=1)).to_be_visible()
        client.locator("a[hreflang=so]").click()
        expect(client.locator("html")).to_have_attribute("lang", "so")
        confirm = live_server.gettext("so", "I will be there")
        assert confirm != "I will be there"
        client.get_by_role("button", name=confirm).click()
        expect(client.locator("html")).to_have_attribute("lang", "so")
        # The client page is narrow enough for a 320-pixel screen: nothing scrolls sideways.
        client.set_viewport_size({"width": 320, "height": 640})
        assert client.evaluate("document.documentElement.scrollWidth") <= 320

        provider.goto("/referrals")
        row = provider.locator("li", has=provider.locator(f"a[href$='/referrals/{referral_id}']"))
        expect(row.get_by_text("The client confirmed")).to_be_visible()
        provider.goto(f"/referrals/{referral_id}")
        expect(provider.locator("ol.timeline")).to_contain_text("The client confirmed")
    finally:
        for page in (responder, client, provider):
            page.context.close()
