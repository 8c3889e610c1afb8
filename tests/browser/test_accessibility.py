"""Accessibility in real Chromium: axe-core finds nothing, and the keyboard reaches what matters.

axe runs with its defaults: every rule enabled by default (WCAG 2.0/2.1 A and AA and axe's
best practices such as landmarks and heading order), every impact level. The pages are the
client's page in each language, and the main pages of the responder, the provider, the
dispatcher and the driver, each on a phone-sized screen, also with their forms' errors shown.
A failure lists each rule's id, impact and the selectors of the offending elements.

The keyboard: Tab reaches the screener's submit button and every action of the client's
page, and wherever focus lands, it shows (an outline of at least 3:1 against what is behind
it, a box shadow, or Chromium's own focus ring).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import or_, select

from referral_hub.accounts.models import Organization, User
from referral_hub.core.db import city_tz
from referral_hub.extensions import db
from referral_hub.portal import operations as portal_ops
from referral_hub.referrals.models import Referral, Status
from referral_hub.transport import operations as ride_ops
from referral_hub.transport.models import Leg, Ride, RideStatus
from referral_hub.transport.views_booking import UNFINISHED
from tests.browser.conftest import PHONE_VIEWPORT
from tests.browser.test_handoff import screen
from tests.browser.test_login import sign_in
from tests.conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.no_transaction]

AXE = Axe()
CLIENT_LANGUAGES = ["en", "es", "so", "hmn"]
PROVIDER = "staff@example.org"  # provider staff of northside-housing, Somali pages
PROVIDER_ORG = "northside-housing"
DISPATCHER = "dispatcher@example.org"
MAX_TAB_STOPS = 200

# The focused element, and whether a keyboard user can see it is focused: Chromium's own
# focus ring (outline-style "auto", drawn in two tones to show on any background), a box
# shadow, or an outline of the page's CSS at least 3:1 against the background it is drawn on
# (WCAG 1.4.11, non-text contrast).
FOCUSED_JS = """() => {
  const el = document.activeElement;
  if (!el || el === document.body) return null;
  const what = el.tagName.toLowerCase() + (el.type ? `[type=${el.type}]` : "")
    + (el.id ? `#${el.id}` : "");
  const text = (el.innerText || el.value || "").trim().slice(0, 60);
  if (!el.matches(":focus")) {
    // Focus is on a part inside the control's own (browser) shadow tree, such as the
    // calendar button of a date field, which Chromium rings itself out of the page's reach.
    return {id: el.dataset.a11yAction || null, tag: what, text, focus: "browser part",
            visible: true, closedSummary: false};
  }
  const rgb = (css) => (css.match(/[\\d.]+/g) || []).map(Number);
  const luminance = ([r, g, b]) => {
    const lin = (c) => (c /= 255) <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
    return 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b);
  };
  let behind = [255, 255, 255];
  for (let node = el.parentElement; node; node = node.parentElement) {
    const color = rgb(getComputedStyle(node).backgroundColor);
    if (color.length >= 3 && (color.length === 3 || color[3] > 0)) { behind = color; break; }
  }
  const style = getComputedStyle(el);
  const pair = [luminance(rgb(style.outlineColor)), luminance(behind)];
  const ratio = (Math.max(...pair) + 0.05) / (Math.min(...pair) + 0.05);
  const outline = style.outlineStyle !== "none" && parseFloat(style.outlineWidth) > 0
    && (style.outlineStyle === "auto" || ratio >= 3);
  return {
    id: el.dataset.a11yAction || null,
    tag: what,
    text,
    focus: `outline ${style.outlineStyle} ${style.outlineColor} (${ratio.toFixed(1)}:1 on `
      + `rgb(${behind.slice(0, 3).join(", ")})), box-shadow ${style.boxShadow}`,
    visible: outline || style.boxShadow !== "none",
    closedSummary: el.tagName === "SUMMARY" && !el.parentElement.open,
  };
}"""


@dataclass(frozen=True)
class Demo:
    """Pages of the demo data worth checking, found (or minted) in the live server's app."""

    client_token: str
    driver_token: str
    responder: str  # the e-mail of the demo responder who sent responder_referral
    responder_referral: int
    booker: str  # the e-mail of the demo responder who sent bookable_referral
    bookable_referral: int
    provider_referral: int
    dispatch_day: str


@pytest.fixture(scope="module")
def demo(live_server) -> Demo:
    with live_server.app.app_context():
        provider = db.session.scalar(select(Organization).where(Organization.slug == PROVIDER_ORG))
        # An accepted referral with an appointment and a ride with a driver: the fullest
        # client page, and the ride its driver's link opens. Which demo responder sent it
        # depends on the hour the demo was loaded (sites open and close), so the responder
        # pages are checked as whoever sent it, among those whose pages are in English.
        english = or_(User.locale.is_(None), User.locale.startswith("en"))
        ride = db.session.scalar(
            select(Ride)
            .join(Referral)
            .join(User, User.id == Referral.referring_user_id)
            .where(
                english,
                Referral.status == Status.ACCEPTED,
                Referral.appointment_at.is_not(None),
                Ride.leg == Leg.OUTBOUND,
                Ride.driver_id.is_not(None),
                Ride.status == RideStatus.SCHEDULED,
            )
            .order_by(Ride.id)
        )
        assert ride is not None, "the demo has no scheduled ride with a driver"
        under_way = select(Ride.id).where(
            Ride.referral_id == Referral.id,
            Ride.leg == Leg.OUTBOUND,
            Ride.status.in_(UNFINISHED),
        )
        bookable = db.session.scalar(
            select(Referral)
            .join(User, User.id == Referral.referring_user_id)
            .where(english, Referral.status == Status.ACCEPTED, ~under_way.exists())
            .order_by(Referral.id)
        )
        assert bookable is not None, "the demo has no accepted referral without an outbound ride"
        # A referral still waiting for the provider's answer shows them every action.
        waiting = db.session.scalar(
            select(Referral)
            .where(Referral.provider_org_id == provider.id, Referral.status == Status.SENT)
            .order_by(Referral.id)
        )
        assert waiting is not None, f"the demo has no sent referral to {PROVIDER_ORG}"
        window_start = ride.window_start_at
        found = Demo(
            client_token=portal_ops.issue_link(ride.referral, None),
            driver_token=ride_ops.issue_driver_link(ride, None),
            responder=ride.referral.referring_user.email,
            responder_referral=ride.referral_id,
            booker=bookable.referring_user.email,
            bookable_referral=bookable.id,
            provider_referral=waiting.id,
            dispatch_day=_city_day(window_start),
        )
        db.session.commit()
        return found


def _city_day(moment: datetime) -> str:
    return moment.astimezone(city_tz()).date().isoformat()


@pytest.fixture
def signed_in(browser: Browser, live_server) -> Iterator:
    """Open phone-sized tabs signed in as a demo user: `signed_in(email)`."""
    pages: list[Page] = []

    def open_as(email: str) -> Page:
        context = browser.new_context(
            base_url=live_server.url, viewport=PHONE_VIEWPORT, locale="en-US"
        )
        page = context.new_page()
        pages.append(page)
        sign_in(page, email, PASSWORD)
        page.wait_for_url(f"{live_server.url}/")
        return page

    yield open_as
    for page in pages:
        page.context.close()


def violations_report(page: Page, violations: list[dict]) -> str:
    """One paragraph per rule: id, impact, what it checks, and the selectors of the nodes."""
    lines = [f"{len(violations)} axe violation(s) on {page.url}:"]
    for violation in violations:
        lines.append(f"- {violation['id']} ({violation['impact']}): {violation['help']}")
        for node in violation["nodes"]:
            target = " >> ".join(str(part) for part in node["target"])
            summary = " ".join((node.get("failureSummary") or "").split())
            lines.append(f"    {target}: {summary}")
    return "\n".join(lines)


def assert_accessible(page: Page) -> None:
    page.wait_for_load_state("load")
    violations = AXE.run(page).response["violations"]
    assert not violations, violations_report(page, violations)


def tab_stops(page: Page) -> Iterator[dict]:
    """Press Tab from the top of the page and yield each element that takes focus, opening a
    closed <details> with Enter on its summary as a keyboard user would."""
    page.locator("body").focus()
    for _ in range(MAX_TAB_STOPS):
        page.keyboard.press("Tab")
        focused = page.evaluate(FOCUSED_JS)
        if focused is None:
            return  # past the last element, back on the document
        yield focused
        if focused["closedSummary"]:
            page.keyboard.press("Enter")


def described(focused: dict) -> str:
    return f"<{focused['tag']}> {focused['text']!r}: {focused['focus']}"


def assert_focus_always_visible(page: Page) -> None:
    """Tab through the whole page: every element that takes focus shows it."""
    stops = list(tab_stops(page))
    assert stops, f"nothing on {page.url} takes focus"
    unseen = [described(f) for f in stops if not f["visible"]]
    assert not unseen, f"focused without a visible focus style on {page.url}: {unseen}"


# --- axe: the client's page ------------------------------------------------------------------


@pytest.mark.parametrize("lang", CLIENT_LANGUAGES)
def test_client_page_has_no_axe_violations(page: Page, demo: Demo, lang):
    response = page.goto(f"/c/{demo.client_token}?lang={lang}")
    assert response is not None and response.status == 200
    assert page.locator("html").get_attribute("lang") == lang
    assert_accessible(page)


# --- axe: the responder's pages --------------------------------------------------------------


def test_responder_pages_have_no_axe_violations(signed_in, demo: Demo):
    page = signed_in(demo.responder)
    assert_accessible(page)  # home

    page.goto("/screen")
    assert_accessible(page)
    screen(page)
    expect(page.locator("ol.matches-eligible > li").first).to_be_visible()
    assert_accessible(page)

    page.goto(f"/referrals/{demo.responder_referral}")
    assert_accessible(page)
    # The client's link as a QR code, shown to the person on this phone.
    page.get_by_role("button", name="Give the client their link (QR code)").click()
    expect(page.locator("svg").first).to_be_visible()
    assert_accessible(page)

    page = signed_in(demo.booker)
    page.goto(f"/referrals/{demo.bookable_referral}/rides/new")
    expect(page).to_have_url(re.compile(r"/rides/new$"))
    assert_accessible(page)
    # Sent without a place: the errors beside the fields must be accessible too.
    page.get_by_label("Pickup place").fill("")
    page.get_by_role("button", name="Book a ride").click()
    expect(page.get_by_role("alert").first).to_be_visible()
    assert_accessible(page)


# --- axe: the provider's pages ---------------------------------------------------------------


def test_provider_pages_have_no_axe_violations(signed_in, demo: Demo):
    page = signed_in(PROVIDER)
    assert_accessible(page)  # home

    page.goto("/referrals")
    assert_accessible(page)

    page.goto(f"/referrals/{demo.provider_referral}")
    assert_accessible(page)
    # The actions' forms sit in closed <details>: open them so axe checks their fields too.
    opened = page.locator("main details").evaluate_all(
        "all => all.filter(d => !d.open).map(d => { d.open = true; return d; }).length"
    )
    assert opened > 0, "the provider sees no action to take on a sent referral"
    assert_accessible(page)


# --- axe: the dispatcher's, the driver's and the public pages --------------------------------


def test_dispatcher_pages_have_no_axe_violations(signed_in, demo: Demo):
    page = signed_in(DISPATCHER)
    assert_accessible(page)  # home

    page.goto(f"/dispatch?day={demo.dispatch_day}")
    expect(page.locator("select[id^='driver-']").first).to_be_visible()
    assert_accessible(page)

    page.goto("/dispatch/fleet")
    assert_accessible(page)


def test_driver_and_sign_in_pages_have_no_axe_violations(page: Page, demo: Demo):
    response = page.goto(f"/d/{demo.driver_token}")
    assert response is not None and response.status == 200
    assert_accessible(page)

    page.goto("/login")
    assert_accessible(page)
    page.get_by_role("button", name="Sign in").click()  # empty: the errors show
    expect(page.get_by_role("alert").first).to_be_visible()
    assert_accessible(page)


# --- the keyboard ----------------------------------------------------------------------------


def test_screener_submit_is_reached_by_tab_with_visible_focus(signed_in):
    page = signed_in("responder@example.org")
    page.goto("/screen")
    submit = page.get_by_role("button", name="Show programs")
    submit.evaluate("el => { el.dataset.a11yAction = 'submit'; }")

    unseen = []
    for focused in tab_stops(page):
        if not focused["visible"]:
            unseen.append(described(focused))
        if focused["id"] == "submit":
            break
    else:
        pytest.fail("Tab never reached the screener's submit button")
    assert not unseen, f"focused without a visible focus style: {unseen}"


def test_every_focus_shows_on_staff_and_driver_pages(signed_in, page: Page, demo: Demo):
    for email, path in (
        (demo.responder, f"/referrals/{demo.responder_referral}"),
        (demo.booker, f"/referrals/{demo.bookable_referral}/rides/new"),
    ):
        responder = signed_in(email)
        responder.goto(path)
        assert_focus_always_visible(responder)

    provider = signed_in(PROVIDER)
    provider.goto(f"/referrals/{demo.provider_referral}")
    assert_focus_always_visible(provider)

    dispatcher = signed_in(DISPATCHER)
    for path in (f"/dispatch?day={demo.dispatch_day}", "/dispatch/fleet"):
        dispatcher.goto(path)
        assert_focus_always_visible(dispatcher)

    page.goto(f"/d/{demo.driver_token}")
    assert_focus_always_visible(page)


def test_client_page_actions_are_reached_by_tab(page: Page, demo: Demo):
    page.goto(f"/c/{demo.client_token}")
    actions = page.locator(
        "main form[method='post' i] button:not([type]), "
        "main form[method='post' i] button[type='submit']"
    )
    names = actions.evaluate_all(
        """buttons => buttons.map((el, i) => {
             el.dataset.a11yAction = String(i);
             return (el.innerText || el.value).trim();
           })"""
    )
    assert names, "the client's page has no action buttons"

    stops = list(tab_stops(page))
    reached = {f["id"] for f in stops if f["id"] is not None}
    missed = [name for i, name in enumerate(names) if str(i) not in reached]
    assert not missed, f"Tab never reaches these actions: {missed}"
    unseen = [described(f) for f in stops if not f["visible"]]
    assert not unseen, f"focused without a visible focus style: {unseen}"
