"""The client's page, reached through a tokenized link: no account, their language; the
client's answers (confirm, ask for another time, cancel), the second check and the calendar
file. Also the responder's screen that mints a fresh link and shows it as a QR code.

Every client route is rate limited per address and per token, answers one 404 for any link
that does not work, and keeps its responses out of caches, referrers and search engines.
"""

from __future__ import annotations

import os
import re
from datetime import datetime
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_skeleton, format_time
from flask import (
    Blueprint,
    Response,
    current_app,
    redirect,
    render_template,
    request,
    send_from_directory,
    session,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user, login_required
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException
from wtforms.fields.choices import SelectFieldBase

from referral_hub import policies
from referral_hub.core.db import utcnow
from referral_hub.core.errors import ValidationFailed
from referral_hub.core.security import token_hash
from referral_hub.extensions import db, limiter
from referral_hub.portal import operations as ops
from referral_hub.portal.forms import (
    AnswerForm,
    CancelForm,
    CheckForm,
    ConfirmForm,
    RescheduleForm,
)
from referral_hub.portal.models import ClientLink
from referral_hub.portal.qr import qr_svg
from referral_hub.referrals.lifecycle import Side
from referral_hub.referrals.models import Referral
from referral_hub.web import views as web_views
from referral_hub.web.forms import options
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

CLIENT_ENDPOINTS = frozenset({"portal.page", "portal.act", "portal.calendar", "portal.cancelled"})
CHECK = "check"
FORMS: dict[str, type[AnswerForm]] = {
    ops.CONFIRM: ConfirmForm,
    ops.RESCHEDULE: RescheduleForm,
    ops.CANCEL: CancelForm,
}
# The session (a signed cookie) remembers which links' check this browser passed: link ids
# only, never the answer.
CHECKED_KEY = "client_checks"
CHECKED_KEEP = 5


def _token_limit() -> str:
    return current_app.config["CLIENT_TOKEN_RATE_LIMIT"]


def _token_key() -> str:
    # The hash: the limiter's storage (memory, Redis) never holds a usable token.
    return "client-link:" + token_hash((request.view_args or {}).get("token", ""))


# Shared across the client's routes, so that spreading guesses over them gains nothing.
per_address = limiter.shared_limit(_page_limit, scope="client-page")
per_token = limiter.shared_limit(_token_limit, scope="client-link", key_func=_token_key)


def _link_language(link: ClientLink) -> str:
    return page_language(request.args.get("lang"), link.referral.client.preferred_language)


def _checked(link: ClientLink) -> bool:
    """No second check to pass, or this browser passed it for this link."""
    return ops.check_kind(link) is None or link.id in session.get(CHECKED_KEY, [])


def _remember_check(link: ClientLink) -> None:
    kept = [i for i in session.get(CHECKED_KEY, []) if i != link.id]
    session[CHECKED_KEY] = [*kept[-(CHECKED_KEEP - 1) :], link.id]


@bp.get("/c/<token>")
@per_address
@per_token
def page(token: str):
    link = ops.link_for_token(token)
    if link is None:
        return _not_found()
    lang = _link_language(link)
    with language(lang):
        if not _checked(link):
            return _check_page(link, token, lang)
        done = request.args.get("done")
        return _client_page(link, token, lang, done=done if done in ops.ANSWER_EVENTS else None)


@bp.post("/c/<token>/<action>")
@per_address
@per_token
def act(token: str, action: str):
    """One answer (confirm, ask for another time, cancel) or the second check."""
    link = ops.link_for_token(token)
    if link is None or action not in (*FORMS, CHECK):
        return _not_found()
    lang = _link_language(link)
    with language(lang):
        if action == CHECK:
            return _check(link, token, lang)
        if not _checked(link):
            message = _("Please answer the question on your page first.")
            return _error_page(message, 400, token, lang)
        now = utcnow()
        form = FORMS[action]()
        _set_choices(form, lang, now)
        if not form.validate():
            if _altered(form):
                return _error_page(ops.stale().message, 400, token, lang)
            return _client_page(link, token, lang, kept={action: form}, status=422)
        try:
            if action == ops.CONFIRM:
                ops.confirm(link, form.version.data, now)
            elif action == ops.RESCHEDULE:
                preferences = ops.preferences_from(form.pairs(), now)
                ops.ask_for_time(link, form.version.data, preferences, now)
            else:
                ops.cancel(link, form.version.data, form.reason.data, now)
        except (ops.StaleForm, ValidationFailed) as exc:
            db.session.rollback()
            return _error_page(exc.message, 400, token, lang)
        db.session.commit()
    if action == ops.CANCEL:
        # Cancelling revoked the link: thank the client on a page that needs none.
        return redirect(url_for("portal.cancelled", lang=lang), 303)
    return redirect(url_for("portal.page", token=token, lang=lang, done=action), 303)


@bp.get("/c/<token>/appointment.ics")
@per_address
@per_token
def calendar(token: str):
    """The appointment as a calendar file, behind the same checks as the page."""
    link = ops.link_for_token(token)
    if link is None:
        return _not_found()
    lang = _link_language(link)
    with language(lang):
        if not _checked(link):
            return _check_page(link, token, lang)
        text = ops.calendar_file(link)
    if text is None:
        return _not_found()
    return Response(
        text,
        mimetype="text/calendar",
        headers={"Content-Disposition": 'attachment; filename="appointment.ics"'},
    )


@bp.get("/c/cancelled")
@per_address
def cancelled():
    lang = page_language(request.args.get("lang"), None)
    with language(lang):
        return _render("portal/cancelled.html", **_layout(lang))


def _client_page(
    link: ClientLink,
    token: str,
    lang: str,
    *,
    kept: dict[str, AnswerForm] | None = None,
    done: str | None = None,
    status: int = 200,
):
    now = utcnow()
    facts = ops.client_page(link, now)
    kept = kept or {}
    forms = {}
    for action in facts.actions:
        form = kept.get(action) or FORMS[action](formdata=None)
        _set_choices(form, lang, now)
        forms[action] = form
    html = _render(
        "portal/client.html",
        page=facts,
        token=token,
        forms=forms,
        done=done,
        fmt=Formatter(lang),
        geo_uri=geo_uri,
        tel=tel,
        **_layout(lang),
    )
    return html, status


def _set_choices(form: AnswerForm, lang: str, now: datetime) -> None:
    if isinstance(form, RescheduleForm):
        locale = babel_locale_for(lang)
        days = options(
            [
                ("", _("Any day")),
                *(
                    (d.isoformat(), format_skeleton("MMMMEEEEd", d, locale=locale))
                    for d in ops.preference_days(now)
                ),
            ]
        )
        parts = options([("", _("Any time of day")), *ops.DAY_PARTS.items()])
        for _legend, day, part in form.rows():
            day.choices, part.choices = days, parts
    elif isinstance(form, CancelForm):
        form.reason.choices = options(ops.CLIENT_CANCEL_REASONS.items())


def _altered(form: AnswerForm) -> bool:
    """A version or a choice the page never offered: the form was changed on the way. (A
    reason left out is the client's slip: the page shows it again.)"""
    if form.version.errors:
        return True
    return any(
        field.errors and field.data not in (None, "")
        for field in form
        if isinstance(field, SelectFieldBase)
    )


def _check(link: ClientLink, token: str, lang: str):
    form = CheckForm()
    if not form.validate():
        return _check_page(link, token, lang, form=form, status=422)
    passed = ops.check_answer(link, form.answer.data)
    db.session.commit()
    if passed:
        _remember_check(link)
        return redirect(url_for("portal.page", token=token, lang=lang), 303)
    if link.locked_at is not None:
        return _not_found()
    form.answer.errors = [_("That does not match. Please try again.")]
    return _check_page(link, token, lang, form=form, status=422)


def _check_page(
    link: ClientLink, token: str, lang: str, *, form: CheckForm | None = None, status: int = 200
):
    html = _render(
        "portal/check.html",
        form=form or CheckForm(formdata=None),
        kind=ops.check_kind(link),
        token=token,
        **_layout(lang),
    )
    return html, status


def _not_found():
    """One answer for unknown, expired, revoked and locked links, so none can be told apart."""
    lang = page_language(request.args.get("lang"), None)
    with language(lang):
        return _render("portal/not_found.html", **_layout(lang)), 404


def _error_page(message: str, status: int, token: str | None = None, lang: str | None = None):
    """A refused request on the client's side, in the small layout, with a way back."""
    lang = lang or page_language(request.args.get("lang"), None)
    with language(lang):
        back = url_for("portal.page", token=token, lang=lang) if token else None
        layout = {**_layout(lang), "languages": []}  # its switcher would resend the request
        html = _render("portal/error.html", message=message, back=back, **layout)
        return html, status


@bp.errorhandler(400)
def _bad_request(exc: HTTPException):
    """A missing or wrong CSRF token (or another bad request) on the client's side answers in
    the client's layout; the responder's screen keeps the staff page."""
    if request.endpoint not in CLIENT_ENDPOINTS:
        if isinstance(exc, CSRFError):
            return web_views.handle_csrf_error(exc)
        return web_views.handle_http_error(exc)
    if isinstance(exc, CSRFError):
        message = _("This page was open too long or was changed, so nothing was changed.")
    else:
        message = _("The request could not be understood.")
    return _error_page(message, 400, (request.view_args or {}).get("token"))


@bp.errorhandler(429)
def _too_many(exc: HTTPException):
    if request.endpoint not in CLIENT_ENDPOINTS:
        return web_views.handle_http_error(exc)
    return _error_page(_("Too many attempts. Please wait a minute and try again."), 429)


def _render(name: str, **context: Any) -> str:
    """Render without the app's context processors: they build the staff pages' language form,
    and a page without a form of its own must not set a session cookie on the phone of
    someone without an account."""
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
