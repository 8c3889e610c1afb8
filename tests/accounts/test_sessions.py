"""Server-side sessions: logout, deactivation and password change really end them."""

from datetime import timedelta

from referral_hub.accounts import operations as ops
from referral_hub.accounts.models import User, UserSession
from referral_hub.core.db import utcnow
from referral_hub.extensions import db

from ..conftest import PASSWORD


def _session_cookie(client):
    cookie = client.get_cookie("rh_session")
    assert cookie is not None
    return cookie.value


def _replay(app, cookie_value):
    """A second browser presenting a copied cookie."""
    other = app.test_client()
    other.set_cookie("rh_session", cookie_value)
    return other.get("/")


def test_login_stores_a_hashed_session_key(client, login_as, app):
    user = login_as("responder")
    with app.app_context():
        rows = db.session.query(UserSession).filter_by(user_id=user.id).all()
    assert len(rows) == 1
    assert len(rows[0].key_hash) == 64
    # The cookie carries the key, never the user id and never the hash.
    cookie = _session_cookie(client)
    assert rows[0].key_hash not in cookie


def test_logout_ends_the_session_even_for_a_copied_cookie(client, login_as, app):
    login_as("responder")
    stolen = _session_cookie(client)
    assert _replay(app, stolen).status_code == 200

    response = client.post_form("/logout", token_from="/account")
    assert response.status_code == 302
    assert client.get("/").status_code == 302
    # Replaying the cookie from before logout no longer works: revoked server-side.
    assert _replay(app, stolen).status_code == 302


def test_deactivation_ends_every_session(client, login_as, app):
    user = login_as("responder")
    stolen = _session_cookie(client)
    with app.test_request_context():
        ops.update_user(db.session.get(User, user.id), is_active=False)
        db.session.commit()
    assert client.get("/").status_code == 302
    assert _replay(app, stolen).status_code == 302
    assert client.login(user.email).status_code == 422


def test_password_change_ends_other_sessions_and_keeps_this_one(client, login_as, app):
    user = login_as("responder")
    other = app.test_client_class(app)
    other.login(user.email)
    assert other.get("/").status_code == 200
    old_cookie = _session_cookie(client)

    response = client.post_form(
        "/account/password",
        {
            "current_password": PASSWORD,
            "new_password": "a brand new passphrase",
            "confirm": "a brand new passphrase",
        },
        token_from="/account",
    )
    assert response.status_code == 302
    assert client.get("/").status_code == 200  # this device continues in a fresh session
    assert other.get("/").status_code == 302  # the other device is signed out
    assert _replay(app, old_cookie).status_code == 302
    fresh = app.test_client_class(app)
    assert fresh.login(user.email, "a brand new passphrase").status_code == 302
    stale = app.test_client_class(app)
    assert stale.login(user.email, PASSWORD).status_code == 422  # the old password is gone


def test_password_change_with_wrong_current_password_keeps_input_errors(client, login_as):
    login_as("responder")
    response = client.post_form(
        "/account/password",
        {
            "current_password": "not my password",
            "new_password": "a brand new passphrase",
            "confirm": "a brand new passphrase",
        },
        token_from="/account",
    )
    assert response.status_code == 422
    assert "The current password is not correct." in response.get_data(as_text=True)


def test_user_can_end_another_of_their_sessions(client, login_as, app):
    user = login_as("responder")
    other = app.test_client_class(app)
    other.login(user.email)
    with app.app_context():
        sessions = ops.live_sessions(db.session.get(User, user.id))
    assert len(sessions) == 2
    other_id = max(s.id for s in sessions)
    response = client.post_form(f"/account/sessions/{other_id}/revoke", token_from="/account")
    assert response.status_code == 302
    assert other.get("/").status_code == 302
    assert client.get("/").status_code == 200


def test_expired_session_is_refused(client, login_as, app):
    user = login_as("responder")
    with app.app_context():
        row = db.session.query(UserSession).filter_by(user_id=user.id).one()
        row.expires_at = utcnow() - timedelta(seconds=1)
        db.session.commit()
    assert client.get("/").status_code == 302


def test_session_cookie_flags(client, make_user):
    user = make_user("responder")
    response = client.login(user.email)
    header = response.headers.get("Set-Cookie")
    assert "HttpOnly" in header
    assert "SameSite=Lax" in header
