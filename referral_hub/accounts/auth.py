"""How a request is authenticated: a server-side session cookie or a bearer token."""

from __future__ import annotations

from datetime import timedelta

from flask import Flask, current_app, g, redirect, request, url_for
from flask_babel import lazy_gettext as _l
from flask_login import AnonymousUserMixin, current_user
from sqlalchemy.exc import OperationalError

from referral_hub.accounts import operations as ops
from referral_hub.core.api import error_response, is_api_request
from referral_hub.extensions import csrf, db, login_manager


class Anonymous(AnonymousUserMixin):
    roles: frozenset = frozenset()
    organization_ids: frozenset = frozenset()
    locale = None


def load_user_from_session(key: str):
    """Flask-Login's user loader: the cookie holds a session key, checked on every request."""
    found = ops.resolve_session(key)
    if found is None:
        return None
    user, user_session = found
    user.session_key = key
    g.auth_method = "session"
    g.user_session_id = user_session.id
    if ops.touch(user_session, "last_seen_at"):
        _commit_bookkeeping()
    return user


def _commit_bookkeeping() -> None:
    """Save last-seen / last-used times; losing one to a concurrent writer is harmless.

    On SQLite a read transaction cannot always upgrade to a write while another process
    writes; that must never turn a page view into an error.
    """
    try:
        db.session.commit()
    except OperationalError:
        db.session.rollback()
        current_app.logger.info("skipped a last-use update: database busy")


def load_user_from_bearer(req):
    """Flask-Login's request loader: `Authorization: Bearer <token>` for the API."""
    header = req.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    found = ops.resolve_api_token(token.strip())
    if found is None:
        return None
    user, api_token = found
    g.auth_method = "token"
    if ops.touch(api_token, "last_used_at"):
        _commit_bookkeeping()
    return user


def unauthorized():
    if is_api_request():
        return error_response(401, "unauthorized", "Authentication required: send a bearer token.")
    return redirect(url_for("accounts.login", next=request.full_path.rstrip("?")))


def csrf_for_cookie_auth() -> None:
    """The API skips CSRF for bearer tokens, never for cookie-authenticated writes."""
    if request.method in {"GET", "HEAD", "OPTIONS"}:
        return
    if not is_api_request() or request.routing_exception is not None:
        return  # unknown paths and methods answer 404/405 first
    if request.headers.get("Authorization", "").lower().startswith("bearer "):
        return
    if not current_user.is_authenticated:
        return  # nothing to forge without a session: the view answers 401
    csrf.protect()


def register(app: Flask) -> None:
    login_manager.user_loader(load_user_from_session)
    login_manager.request_loader(load_user_from_bearer)
    login_manager.unauthorized_handler(unauthorized)
    login_manager.anonymous_user = Anonymous
    login_manager.login_view = "accounts.login"
    login_manager.login_message = _l("Please sign in to see this page.")
    # Our session keys are already bound server-side; "strong" would also drop sessions
    # whenever a phone moves between networks.
    login_manager.session_protection = None
    app.before_request(csrf_for_cookie_auth)


def session_lifetime() -> timedelta:
    return timedelta(seconds=current_app.config["PERMANENT_SESSION_LIFETIME"])
