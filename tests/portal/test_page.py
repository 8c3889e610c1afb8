"""The client's page /c/<token>: uniform 404, private headers, no side effects, the client's
language (Hmong through the fallback locale), neutral wording, the ride, a small page; and
the responder's screen that mints a link and shows it as a QR code."""

import re
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from babel.dates import format_date
from sqlalchemy import select

from referral_hub.accounts.models import Role
from referral_hub.core.db import utcnow
from referral_hub.directory.models import Program
from referral_hub.extensions import db
from referral_hub.portal import operations as ops
from referral_hub.portal.models import ClientLink
from referral_hub.referrals.models import Client, Referral, ReferralEvent
from referral_hub.transport.models import Driver, Ride, RideMode, RideStatus, Vehicle
from tests.portal.conftest import APPOINTMENT, new_link, pass_check

CHICAGO = ZoneInfo("America/Chicago")


def body(response) -> str:
    return response.get_data(as_text=True)


# --- the uniform 404 and the headers ---------------------------------------------------------


def test_unknown_expired_and_revoked_links_answer_the_same_404(app, client, link):
    referral_id, live = link(appointment=None)
    expired = new_link(app, referral_id, now=utcnow() - timedelta(days=400))
    revoked = new_link(app, referral_id)
    with app.test_request_context():
        db.session.get(ClientLink, ops.link_for_token(revoked).id).revoked_at = utcnow()
        db.session.commit()
    assert client.get(f"/c/{live}").status_code == 200
    answers = [client.get(f"/c/{t}") for t in (expired, revoked, "c_" + "x" * 43, "nothing")]
    assert {r.status_code for r in answers} == {404}
    assert len({r.data for r in answers}) == 1
    assert "Youth Housing" not in body(answers[0])


@pytest.mark.parametrize("kind", ["live", "unknown"])
def test_private_headers_on_the_page_and_on_the_404(client, link, kind):
    _, token = link()
    response = client.get(f"/c/{token if kind == 'live' else 'c_nope'}")
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["X-Robots-Tag"] == "noindex"
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]
    if kind == "unknown":
        assert "Set-Cookie" not in response.headers
    else:
        # The answer forms' CSRF token lives in the session: a cookie scripts cannot read.
        cookie = response.headers["Set-Cookie"]
        assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


def snapshot() -> list:
    """Every row the page could touch, as plain values."""
    tables = [ClientLink, Referral, ReferralEvent, Client]
    return [
        [tuple(row) for row in db.session.execute(select(m.__table__).order_by(m.id)).all()]
        for m in tables
    ]


def test_get_changes_nothing(app, client, link):
    _, token = link()
    with app.app_context():
        before = snapshot()
    for lang in ("", "?lang=es", "?lang=hmn"):
        assert client.get(f"/c/{token}{lang}").status_code == 200
    client.get("/c/c_unknown")
    with app.app_context():
        assert snapshot() == before


def test_the_page_is_rate_limited_per_address(app, client, link, monkeypatch):
    monkeypatch.setitem(app.config, "CLIENT_PAGE_RATE_LIMIT", "3 per minute")
    _, token = link()
    codes = [client.get(f"/c/{token}").status_code for _ in range(3)]
    assert codes == [200, 200, 200]
    limited = client.get("/c/c_guess")
    assert limited.status_code == 429
    assert limited.headers["Cache-Control"] == "no-store"
    other = client.get(f"/c/{token}", environ_base={"REMOTE_ADDR": "10.0.0.9"})
    assert other.status_code == 200


# --- what the page shows ---------------------------------------------------------------------


def test_page_shows_appointment_place_phone_and_code(app, client, link, world):
    referral_id, token = link(phone="+16125550123")
    with app.test_request_context():
        site = db.session.get(Referral, referral_id).site
        site.phone = "(612) 555-0100"
        code = db.session.get(Referral, referral_id).handoff_code
        db.session.commit()
    html = body(client.get(f"/c/{token}?lang=en"))
    assert "<h1>Youth Housing</h1>" in html
    assert "1 Main St" in html
    assert 'href="tel:6125550100"' in html
    assert re.search(r'href="geo:44\.97,-93\.26\?q=', html)
    assert "Tuesday, March 4, 2031" in html and "10:30" in html
    assert code and f'<p class="code">{code}</p>' in html
    assert "The program expects you." in html


def test_no_other_origin_no_script_and_small(client, link):
    _, token = link()
    response = client.get(f"/c/{token}")
    html = body(response)
    assert "http://" not in html and "https://" not in html and "//" not in html.split("<body")[1]
    assert "<script" not in html
    assert "app.css" not in html
    assert 'name="viewport" content="width=device-width' in html
    css_path = re.search(r'<link rel="stylesheet" href="([^"]+)"', html).group(1)
    css = client.get(css_path)
    assert css.status_code == 200 and css.mimetype == "text/css"
    assert len(response.data) + len(css.data) < 30 * 1024


def test_language_defaults_to_the_clients_preference(client, link):
    _, token = link()  # the world's client prefers Somali
    html = body(client.get(f"/c/{token}"))
    assert '<html lang="so" dir="ltr">' in html
    assert "Luqad" in html  # "Language", from the Somali catalog
    assert 'aria-current="true">Soomaali<' in html


def test_switcher_changes_the_language(client, link):
    _, token = link()
    html = body(client.get(f"/c/{token}?lang=es"))
    assert '<html lang="es" dir="ltr">' in html
    assert "Idioma" in html
    assert "martes, 4 de marzo de 2031" in html
    for code in ("en", "es", "so", "hmn"):
        assert f'href="?lang={code}"' in html
    # An unsupported choice falls back to the client's preference.
    assert '<html lang="so"' in body(client.get(f"/c/{token}?lang=xx"))


def test_hmong_text_with_dates_from_the_fallback_locale(app, client, link):
    _, token = link(preferred_language="hmn")
    html = body(client.get(f"/c/{token}"))
    assert '<html lang="hmn" dir="ltr">' in html
    assert "Lus" in html  # "Language" in White Hmong
    fallback = app.config["FORMAT_FALLBACK_LOCALE"]
    expected = format_date(APPOINTMENT.astimezone(CHICAGO).date(), "full", locale=fallback)
    assert expected in html


def test_sensitive_program_is_not_named_when_the_client_asked(app, client, link, world):
    with app.test_request_context():
        db.session.get(Program, world.program.id).sensitive = True
        db.session.commit()
    _, named = link()
    assert pass_check(client, named, "1990").status_code == 303  # the world's client's year
    assert "Youth Housing" in body(client.get(f"/c/{named}?lang=en"))
    _, neutral = link(neutral_sender=True)
    assert pass_check(client, neutral, "1990").status_code == 303
    html = body(client.get(f"/c/{neutral}?lang=en"))
    assert "Youth Housing" not in html and "Main office" not in html
    assert "<h1>Your appointment</h1>" in html
    assert "1 Main St" in html  # the client still needs the address


def test_the_ride_is_shown(app, client, link, make_org):
    referral_id, token = link()
    vendor = make_org("transport_vendor")
    start = APPOINTMENT - timedelta(minutes=50)
    with app.test_request_context():
        driver = Driver(organization_id=vendor.id, first_name="Sam", last_name="Secret")
        vehicle = Vehicle(organization_id=vendor.id, label="White van 3")
        ride = Ride(
            referral_id=referral_id,
            mode=RideMode.VENDOR,
            status=RideStatus.SCHEDULED,
            vendor_org_id=vendor.id,
            driver=driver,
            vehicle=vehicle,
            window_start_at=start,
            window_end_at=start + timedelta(minutes=15),
            estimate_source="routed",
            pickup_label="Under the bridge",
        )
        db.session.add(ride)
        db.session.commit()
    html = body(client.get(f"/c/{token}?lang=en"))
    assert "To the program" in html and "Scheduled" in html
    assert "9:40\u202fAM to 9:55\u202fAM" in html or "9:40 AM to 9:55 AM" in html
    assert "Sam" in html and "Secret" not in html
    assert "White van 3" in html
    assert "Times come from a planned route." in html
    assert "Under the bridge" not in html


def test_a_ride_without_driver_says_estimated(app, client, link):
    referral_id, token = link()
    with app.test_request_context():
        db.session.add(
            Ride(
                referral_id=referral_id,
                mode=RideMode.VENDOR,
                window_start_at=APPOINTMENT - timedelta(hours=1),
                window_end_at=APPOINTMENT - timedelta(minutes=45),
                estimate_source="estimate",
            )
        )
        db.session.commit()
    html = body(client.get(f"/c/{token}?lang=en"))
    assert "Requested" in html and "Times are estimated." in html
    assert "Driver" not in html


# --- the responder's screen ------------------------------------------------------------------


def issue_path(referral_id: int) -> str:
    return f"/referrals/{referral_id}/client-link"


def test_responder_gets_a_fresh_link_with_qr_and_text_option(app, client, world, send):
    referral_id = send()
    with app.test_request_context():
        client_row = db.session.get(Referral, referral_id).client
        client_row.sms_ok = True
        phone = client_row.phone
        db.session.commit()
    client.login(world.responder.email)
    response = client.post(issue_path(referral_id), data={"csrf_token": client.csrf("/account")})
    assert response.status_code == 200
    html = body(response)
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    url = re.search(r'value="(http[^"]+/c/c_[^"]+)"', html).group(1)
    assert url.startswith(app.config["BASE_URL"])
    assert re.search(r'<svg[^>]* role="img"', html) and "<path" in html
    assert f'href="sms:{phone}?body=http' in html.replace("&amp;", "&")
    with app.app_context():
        events = db.session.scalars(
            select(ReferralEvent.action).where(ReferralEvent.referral_id == referral_id)
        ).all()
        assert events[-1] == "client_link"
        assert len(db.session.scalars(select(ClientLink.id)).all()) >= 2
    opened = client.get(url.removeprefix(app.config["BASE_URL"]))
    assert opened.status_code == 200


def test_no_text_option_without_sms_consent(app, client, world, send):
    referral_id = send()  # the world's client has a phone but did not agree to texts
    client.login(world.responder.email)
    html = body(client.post(issue_path(referral_id), data={"csrf_token": client.csrf("/account")}))
    assert "sms:" not in html and "<svg" in html


def test_coordinator_may_issue_provider_may_not(client, world, send):
    referral_id = send()
    client.login(world.coordinator.email)
    token = client.csrf("/account")
    assert client.post(issue_path(referral_id), data={"csrf_token": token}).status_code == 200
    client.post("/logout", data={"csrf_token": token})
    client.login(world.staff.email)
    token = client.csrf("/account")
    assert client.post(issue_path(referral_id), data={"csrf_token": token}).status_code == 403


def test_another_organizations_referral_answers_404(client, send, make_user):
    referral_id = send()
    stranger = make_user(Role.RESPONDER)
    client.login(stranger.email)
    response = client.post(issue_path(referral_id), data={"csrf_token": client.csrf("/account")})
    assert response.status_code == 404


def test_issuing_needs_csrf_and_post(client, world, send):
    referral_id = send()
    client.login(world.responder.email)
    assert client.post(issue_path(referral_id)).status_code == 400
    assert client.get(issue_path(referral_id)).status_code == 405


def test_the_referral_page_offers_the_client_link_to_the_referring_side(app, client, world, send):
    referral_id = send()
    client.login(world.responder.email)
    page = client.get(f"/referrals/{referral_id}").get_data(as_text=True)
    assert f'action="/referrals/{referral_id}/client-link"' in page
    client.post("/logout", data={"csrf_token": client.csrf("/account")})
    client.login(world.staff.email)
    page = client.get(f"/referrals/{referral_id}").get_data(as_text=True)
    assert "client-link" not in page
