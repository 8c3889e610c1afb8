"""CSRF: every form and every cookie-authenticated API write needs the token."""


def test_login_without_token_is_refused(client, make_user):
    user = make_user("responder")
    response = client.post(
        "/login", data={"email": user.email, "password": "correct horse battery staple"}
    )
    assert response.status_code == 400
    assert client.get("/").status_code == 302  # not signed in


def test_form_post_with_a_wrong_token_changes_nothing(client, login_as):
    user = login_as("responder")
    response = client.post(
        "/account/profile", data={"name": "Changed", "locale": "", "csrf_token": "forged"}
    )
    assert response.status_code == 400
    assert user.name != "Changed"
    assert "Changed" not in client.get("/account").get_data(as_text=True)


def test_token_from_another_session_is_refused(client, login_as, app):
    login_as("responder")
    stranger = app.test_client_class(app)
    foreign_token = stranger.csrf()
    response = client.post(
        "/account/profile", data={"name": "Changed", "locale": "", "csrf_token": foreign_token}
    )
    assert response.status_code == 400


def test_cookie_authenticated_api_write_needs_csrf(client, login_as):
    login_as("admin")
    response = client.patch("/api/v1/users/1", json={"name": "x"})
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "csrf_failed"


def test_bearer_api_write_needs_no_csrf(client, make_user, api_token):
    admin = make_user("admin")
    target = make_user("responder")
    response = client.patch(
        f"/api/v1/users/{target.id}",
        json={"name": "Renamed"},
        headers={"Authorization": f"Bearer {api_token(admin)}"},
    )
    assert response.status_code == 200
    assert response.get_json()["name"] == "Renamed"
