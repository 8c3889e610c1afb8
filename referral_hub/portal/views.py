"""The client's page, reached through a tokenized link: no account, their language. Also the
responder's screen that mints a fresh link and shows it as a QR code."""

from __future__ import annotations

import os
import re
from datetime import datetime
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_time
from flask import (
    Blueprint,
    current_app,
    render_template,
    request,
    send_from_directory,
)
from flask_babel import gettext as _
from flask_login import current_user, login_required

from referral_hub import policies
from referral_hub.extensions import db, limiter
from referral_hub.portal import operations as ops
from referral_hub.portal.qr import qr_svg
from referral_hub.referrals.lifecycle import Side
from referral_hub.referrals.models import Referral
from referral_hub.web.i18n import (
    LANGUAGE_NAMES,
    babel_locale_for,
    language,
    select_language,
    supported_languages,
    text_direction,
)

bp = Blueprint("portal", __name__, template_folder="templates")

STATIC_DIR = os.path.join(os.path.dirname(__file__), "static")
# The client's page may hold an address and an appointment: never cached, never indexed,
# never leaked through a Referer header. The responder's screen holds the token itself.
PRIVATE_HEADERS = {
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Robots-Tag": "noindex",
}


@bp.after_request
def _private(response):
    # Blueprint hooks run before the app's, which only fill in headers not set yet.
    if request.endpoint != "portal.stylesheet":
        response.headers.update(PRIVATE_HEADERS)
    return response


def _page_limit() -> str:
    return current_app.config["CLIENT_PAGE_RATE_LIMIT"]


def page_language(requested: str | None, preferred: str | None) -> str:
    """The switcher's choice, else the client's preferred language, else the browser's."""
    languages = supported_languages()
    for code in (requested, preferred):
        if code in languages:
            return code
    return select_language()


def tel(phone: str | None) -> str:
    return re.sub(r"[^\d+]", "", phone or "")


def geo_uri(latitude: float, longitude: float, label: str) -> str:
    """Directions through the phone's own maps app: a geo: URI, no third-party origin."""
    return f"geo:{latitude},{longitude}?q={latitude},{longitude}({quote(label)})"


def sms_uri(phone: str, body: str) -> str:
    return f"sms:{tel(phone)}?body={quote(body, safe='')}"


class Formatter:
    """Dates and times in the city's time zone, formatted for a language (Babel's locale for
    it, or the fallback locale for languages Babel does not know, such as Hmong)."""

    def __init__(self, lang: str) -> None:
        self.locale = babel_locale_for(lang)
        self.tz = ZoneInfo(current_app.config["TIMEZONE"])

    def date(self, moment: datetime) -> str:
        return format_date(moment.astimezone(self.tz).date(), "full", locale=self.locale)

    def time(self, moment: datetime) -> str:
        return format_time(moment, "short", tzinfo=self.tz, locale=self.locale)

    def window(self, start: datetime | None, end: datetime | None) -> str | None:
        if start is None:
            return None
        if end is None or end == start:
            return self.time(start)
        return _("%(start)s to %(end)s", start=self.time(start), end=self.time(end))


# --- the client's page -----------------------------------------------------------------------


@bp.get("/c/<token>")
@limiter.limit(_page_limit)
def page(token: str):
    link = ops.link_for_token(token)
    if link is None:
        return _not_found()
    facts = ops.client_page(link)
    lang = page_language(request.args.get("lang"), facts.preferred_language)
    with language(lang):
        return _render(
            "portal/client.html",
            page=facts,
            token=token,
            fmt=Formatter(lang),
            geo_uri=geo_uri,
            tel=tel,
            **_layout(lang),
        )


def _not_found():
    """One answer for unknown, expired and revoked links, so none can be told apart."""
    lang = page_language(request.args.get("lang"), None)
    with language(lang):
        return _render("portal/not_found.html", **_layout(lang)), 404


def _render(name: str, **context: Any) -> str:
    """Render without the app's context processors: they build the staff pages' language form,
    whose CSRF token would set a session cookie on the phone of someone without an account."""
    return current_app.jinja_env.get_template(name).render(**context)


def _layout(lang: str) -> dict[str, Any]:
    return {
        "lang": lang,
        "dir": text_direction(lang),
        "languages": [(code, LANGUAGE_NAMES.get(code, code)) for code in supported_languages()],
    }


@bp.get("/portal.css")
def stylesheet():
    # Small and shared by every client page; the browser may keep it a day.
    return send_from_directory(STATIC_DIR, "portal.css", max_age=86400)


# --- the responder's screen ------------------------------------------------------------------


@bp.post("/referrals/<int:referral_id>/client-link")
@login_required
def issue(referral_id: int):
    """Mint a fresh link and show it as text, a QR code and, if allowed, a text message."""
    referral = policies.get_visible_or_404(current_user, Referral, referral_id)
    sides = policies.referral_sides(current_user, referral)
    policies.require(bool(sides & {Side.REFERRER, Side.COORDINATOR}))
    token = ops.issue_link(referral, current_user._get_current_object())
    db.session.commit()
    url = ops.client_url(token)
    client = referral.client
    return render_template(
        "portal/link.html",
        referral=referral,
        url=url,
        qr=qr_svg(url, _("QR code of the client's link")),
        sms=sms_uri(client.phone, url) if client.phone and client.sms_ok else None,
        expires_at=ops.live_until(ops.link_for_token(token)),
    )
