"""The login form: errors, kept input, open-redirect refusal and the rate limit."""

import pytest

from referral_hub.core.urls import is_local_path


def test_wrong_password_keeps_email_and_says_why(client, make_user):
    user = make_user("responder")
    response = client.login(user.email, "wrong password here")
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "E-mail or password is not correct." in html
    assert f'value="{user.email}"' in html
    assert "wrong password here" not in html


def test_unknown_user_gets_the_same_answer(client):
    response = client.login("nobody@example.org", "whatever password")
    assert response.status_code == 422
    assert "E-mail or password is not correct." in response.get_data(as_text=True)


def test_login_redirects_to_a_local_next(client, make_user):
    user = make_user("responder")
    response = client.post_form(
        "/login",
        {"email": user.email, "password": "correct horse battery staple", "next": "/account"},
    )
    assert response.headers["Location"] == "/account"


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example/",
        "//evil.example/",
        "/\\evil.example",
        "http:/evil.example",
        "javascript:alert(1)",
        "/\r\nLocation: https://evil.example",
    ],
)
def test_login_refuses_off_site_next(client, make_user, target):
    user = make_user("responder")
    response = client.post_form(
        "/login",
        {"email": user.email, "password": "correct horse battery staple", "next": target},
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "/"


@pytest.mark.parametrize(
    ("target", "ok"),
    [
        ("/account", True),
        ("/admin/users?q=a", True),
        ("//x.example", False),
        ("https://x.example", False),
        ("", False),
        (None, False),
        ("/\\x.example", False),
        ("/\tx", False),
    ],
)
def test_is_local_path(target, ok):
    assert is_local_path(target) is ok


def test_login_is_rate_limited(client, make_user, app):
    user = make_user("responder")
    limit = int(app.config["LOGIN_RATE_LIMIT"].split()[0])
    token = client.csrf()
    for _ in range(limit):
        response = client.post(
            "/login", data={"email": user.email, "password": "bad password!", "csrf_token": token}
        )
        assert response.status_code == 422
    response = client.post(
        "/login",
        data={"email": user.email, "password": "correct horse battery staple", "csrf_token": token},
    )
    assert response.status_code == 429
    assert "Too many attempts" in response.get_data(as_text=True)
    # Reading the page is not limited: only attempts are.
    assert client.get("/login").status_code == 200


def test_signed_in_user_visiting_login_goes_home(client, login_as):
    login_as("responder")
    assert client.get("/login").headers["Location"] == "/"
