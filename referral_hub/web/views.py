"""Home pages per role, the language switcher, health check and error pages."""

from __future__ import annotations

from flask import (
    Blueprint,
    Flask,
    abort,
    current_app,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user, login_required
from flask_wtf.csrf import CSRFError
from sqlalchemy import text
from werkzeug.exceptions import HTTPException

from referral_hub.accounts.models import Role
from referral_hub.core.api import error_response, is_api_request
from referral_hub.core.errors import AppError
from referral_hub.core.urls import safe_next
from referral_hub.extensions import db
from referral_hub.transport.operations import open_follow_ups
from referral_hub.web.forms import LanguageForm, options
from referral_hub.web.i18n import LANGUAGE_NAMES, current_language, text_direction
from referral_hub.web.nav import nav_for

bp = Blueprint("web", __name__)

# The role whose home a user lands on when they hold several, most specific first.
HOME_ORDER = [
    Role.ADMIN,
    Role.COORDINATOR,
    Role.PROVIDER_ADMIN,
    Role.PROVIDER_STAFF,
    Role.DISPATCHER,
    Role.RESPONDER,
]


def home_role(roles: set[Role]) -> Role | None:
    return next((role for role in HOME_ORDER if role in roles), None)


@bp.get("/")
@login_required
def home():
    role = home_role(current_user.roles)
    if role is None:
        abort(403)
    # A responder's home lists what their organizations must act on (ride no-shows).
    follow_ups = open_follow_ups(current_user.organization_ids) if role is Role.RESPONDER else []
    return render_template(f"web/home_{role.value}.html", role=role, follow_ups=follow_ups)


@bp.get("/healthz")
def healthz():
    """Liveness and database reachability for load balancers; no personal data."""
    db.session.execute(text("SELECT 1"))
    return {"status": "ok"}


@bp.post("/language")
def set_language():
    """Remember a language choice for this browser (and as the signed-in user's preference)."""
    form = LanguageForm()
    form.lang.choices = options((c, LANGUAGE_NAMES[c]) for c in current_app.config["LANGUAGES"])
    if form.validate_on_submit():
        session["lang"] = form.lang.data
        if current_user.is_authenticated:
            current_user.locale = form.lang.data
            db.session.commit()
    return redirect(safe_next(request.form.get("next"), url_for("web.home")))


def inject_layout() -> dict:
    """Variables every template needs: language, direction, navigation, switcher."""
    lang = current_language()
    form = LanguageForm(formdata=None, lang=lang)
    form.lang.choices = options((c, LANGUAGE_NAMES[c]) for c in current_app.config["LANGUAGES"])
    nav = nav_for(current_user.roles) if current_user.is_authenticated else []
    return {
        "page_lang": lang,
        "page_dir": text_direction(lang),
        "nav_items": nav,
        "language_form": form,
    }


def render_error(http_status: int, code: str, message: str, **extra):
    """Answer an error as JSON for the API and as a page elsewhere."""
    if is_api_request():
        return error_response(http_status, code, message, **extra)
    return render_template("web/error.html", status=http_status, message=message), http_status


def handle_http_error(exc: HTTPException):
    code = (exc.name or "error").lower().replace(" ", "_")
    messages = {
        400: _("The request could not be understood."),
        401: _("Please sign in."),
        403: _("You are not allowed to see this page."),
        404: _("We could not find that page."),
        405: _("This action is not available here."),
        413: _("What you sent is too large."),
        429: _("Too many attempts. Please wait a moment and try again."),
        500: _("Something went wrong on our side. Please try again."),
    }
    message = messages.get(exc.code or 500, exc.description or "")
    return render_error(exc.code or 500, code, message)


def handle_app_error(exc: AppError):
    return render_error(exc.status, exc.code, exc.message, fields=exc.fields, **exc.extra)


def handle_csrf_error(exc: CSRFError):
    return render_error(
        400,
        "csrf_failed",
        _("The form expired or was sent from elsewhere. Please reload the page and try again."),
    )


def handle_unexpected(exc: Exception):
    current_app.logger.exception("unhandled error", exc_info=exc)
    db.session.rollback()
    return render_error(500, "internal_error", _("Something went wrong on our side."))


def register(app: Flask) -> None:
    app.context_processor(inject_layout)
    app.register_error_handler(CSRFError, handle_csrf_error)
    app.register_error_handler(HTTPException, handle_http_error)
    app.register_error_handler(AppError, handle_app_error)
    app.register_error_handler(Exception, handle_unexpected)
