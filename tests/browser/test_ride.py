"""The warm handoff by ride, in Chromium on phone-sized screens, with no network.

A responder books a ride for an accepted referral from the phone's location; the dispatcher
assigns a driver and vehicle and gets the driver's link; the driver, without an account,
taps through it; the referral moves to "On the way" and "Arrived" on its own. Travel times
are the offline estimates, labelled as such.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import PHONE_VIEWPORT
from tests.browser.test_handoff import PROGRAM, screen
from tests.browser.test_login import sign_in
from tests.conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.no_transaction]

PHONE_AT = {"latitude": 44.9483, "longitude": -93.2348}  # near Midtown Global Market


def appointment_day() -> datetime:
    """14:00 Minneapolis time on the next weekday: the demo program is open Mon-Fri 11-19."""
    tz = ZoneInfo("America/Chicago")
    day = datetime.now(tz).date() + timedelta(days=1)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return datetime(day.year, day.month, day.day, 14, 0)


def new_page(browser: Browser, live_server, **options) -> Page:
    context = browser.new_context(
        base_url=live_server.url, viewport=PHONE_VIEWPORT, locale="en-US", **options
    )
    return context.new_page()


def test_ride_from_phone_location_to_arrival(browser: Browser, live_server):
    appointment = appointment_day()
    responder = new_page(browser, live_server, geolocation=PHONE_AT, permissions=["geolocation"])
    provider = new_page(browser, live_server)
    dispatcher = new_page(browser, live_server)
    driver = new_page(browser, live_server)
    try:
        sign_in(responder, "responder@example.org", PASSWORD)
        screen(responder)
        responder.get_by_role("button", name=f"Refer to {PROGRAM}").click()
        responder.get_by_label("Name", exact=True).fill("Pa Nhia Ride")
        responder.get_by_role("checkbox", name=re.compile("agreed")).check()
        responder.get_by_role("button", name="Send referral").click()
        expect(responder).to_have_url(re.compile(r"/referrals/\d+$"))
        referral_url = responder.url

        # The provider accepts with an appointment.
        sign_in(provider, "provider.admin@example.org", PASSWORD)
        provider.goto(referral_url)
        provider.locator("summary", has_text="Accept").click()
        provider.get_by_label("Appointment (city time)").fill(
            appointment.strftime("%Y-%m-%dT%H:%M")
        )
        provider.get_by_role("button", name="Accept").click()
        expect(provider.get_by_text("Accepted").first).to_be_visible()

        # The responder books the ride from where the phone is.
        responder.reload()
        responder.get_by_role("link", name="Book a ride").click()
        responder.get_by_label("Vendor vehicle").check()
        responder.get_by_role("button", name="Use this phone's location").click()
        expect(responder.get_by_label("Pickup place")).to_have_value("44.94830, -93.23480")
        responder.get_by_label("In time for the appointment").check()
        responder.get_by_label("Notes for the driver (optional)").fill("Waits by the front door")
        responder.get_by_role("button", name="Book a ride").click()
        expect(responder).to_have_url(re.compile(r"/rides/\d+$"))
        ride_id = int(responder.url.rsplit("/", 1)[1])
        expect(responder.get_by_text("Estimated").first).to_be_visible()
        expect(responder.get_by_text("Requested").first).to_be_visible()

        # The dispatcher assigns a driver and a vehicle and gets the driver's link once.
        sign_in(dispatcher, "dispatcher@example.org", PASSWORD)
        dispatcher.goto(f"/dispatch?day={appointment.date().isoformat()}")
        dispatcher.locator(f"#driver-{ride_id}").select_option(index=1)
        dispatcher.locator(f"#vehicle-{ride_id}").select_option(index=1)
        row_form = dispatcher.locator(f"form:has(#driver-{ride_id})")
        row_form.get_by_role("button", name="Assign driver").click()
        link = dispatcher.locator("#driver-link-url").input_value()
        assert re.search(r"/d/d_[A-Za-z0-9_-]{40,}$", link), link

        # The driver, without an account, taps through the ride.
        # The link is absolute from BASE_URL; this live server listens on its own port.
        driver.goto(urlsplit(link).path)
        expect(driver.get_by_text("Waits by the front door")).to_be_visible()
        driver.get_by_role("button", name="On my way").click()
        driver.get_by_role("button", name="Arrived at pickup").click()
        driver.get_by_role("button", name="Picked up").click()
        expect(driver.get_by_text("Picked up").first).to_be_visible()

        responder.goto(referral_url)
        expect(responder.get_by_text("On the way").first).to_be_visible()

        driver.get_by_role("button", name="Dropped off").click()
        expect(driver.get_by_text("This ride is finished. Thank you.")).to_be_visible()
        responder.reload()
        expect(responder.get_by_text("Arrived").first).to_be_visible()
        timeline = responder.locator("ol.timeline")
        expect(timeline).to_contain_text("Ride booked")
        expect(timeline).to_contain_text("Client is on the way")
        expect(timeline).to_contain_text("Client arrived")
    finally:
        for page in (responder, provider, dispatcher, driver):
            page.context.close()
