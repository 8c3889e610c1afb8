"""Administration pages: forms keep input and show errors beside fields."""

from sqlalchemy import select

from referral_hub.accounts.models import Organization, Role, User
from referral_hub.extensions import db

from ..conftest import PASSWORD


def test_admin_creates_an_organization(client, login_as, app):
    login_as(Role.ADMIN)
    response = client.post_form(
        "/admin/organizations/new",
        {
            "name": "Phillips Recovery Collective",
            "slug": "phillips-recovery",
            "kind": "provider",
            "phone": "612-555-0199",
            "website": "",
            "description": "Peer recovery support",
        },
    )
    assert response.status_code == 302
    with app.app_context():
        org = db.session.scalar(
            select(Organization).where(Organization.slug == "phillips-recovery")
        )
        assert org.kind.value == "provider" and org.phone == "612-555-0199"


def test_organization_form_keeps_input_and_names_the_fault(client, login_as, make_org):
    make_org("provider", name="Taken Name", slug="taken")
    login_as(Role.ADMIN)
    response = client.post_form(
        "/admin/organizations/new",
        {"name": "Taken Name", "slug": "Bad Slug!", "kind": "provider", "description": "kept text"},
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "Another organization already has this name." in html
    assert "Use lower-case letters, digits and single hyphens." in html
    assert 'value="Bad Slug!"' in html and "kept text" in html


def test_provider_admin_creates_a_colleague_who_can_sign_in(client, login_as, make_org, app):
    org = make_org("provider")
    login_as(Role.PROVIDER_ADMIN, org=org)
    response = client.post_form(
        "/admin/users/new",
        {
            "name": "Kou Vang",
            "email": "kou@example.org",
            "organization_id": str(org.id),
            "role": "provider_staff",
            "password": PASSWORD,
            "locale": "hmn",
        },
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    fresh = app.test_client_class(app)
    assert fresh.login("kou@example.org").status_code == 302
    assert '<html lang="hmn"' in fresh.get("/").get_data(as_text=True)


def test_user_form_keeps_input_on_error(client, login_as, make_org):
    org = make_org("provider")
    me = login_as(Role.PROVIDER_ADMIN, org=org)
    response = client.post_form(
        "/admin/users/new",
        {
            "name": "Ana Flores",
            "email": me.email,
            "organization_id": str(org.id),
            "role": "dispatcher",
            "password": "short",
            "locale": "es",
        },
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "A user with this e-mail address already exists." in html
    assert "This role does not fit this kind of organization." in html
    assert "Use at least 12 characters." in html
    assert 'value="Ana Flores"' in html
    assert 'value="short"' not in html  # passwords are never echoed


def test_deactivating_a_user_from_the_page_signs_them_out(
    client, login_as, make_org, make_user, app
):
    org = make_org("provider")
    staff = make_user(Role.PROVIDER_STAFF, org=org)
    staff_client = app.test_client_class(app)
    staff_client.login(staff.email)
    assert staff_client.get("/").status_code == 200

    login_as(Role.PROVIDER_ADMIN, org=org)
    # An unticked "Active" box is absent from the form data: the user is deactivated.
    response = client.post_form(
        f"/admin/users/{staff.id}",
        {"name": staff.name, "email": staff.email, "locale": ""},
        token_from="/account",
    )
    assert response.status_code == 302
    assert staff_client.get("/").status_code == 302
    with app.app_context():
        assert db.session.get(User, staff.id).is_active is False


def test_membership_add_and_remove(client, login_as, make_org, make_user, app):
    first, second = make_org("provider"), make_org("provider")
    login_as(Role.ADMIN)
    target = make_user(Role.PROVIDER_STAFF, org=first)
    response = client.post_form(
        f"/admin/users/{target.id}/memberships",
        {"organization_id": str(second.id), "role": "provider_admin"},
        token_from="/account",
    )
    assert response.status_code == 302
    with app.app_context():
        memberships = db.session.get(User, target.id).memberships
        assert {(m.organization_id, m.role.value) for m in memberships} == {
            (first.id, "provider_staff"),
            (second.id, "provider_admin"),
        }
        remove_id = next(m.id for m in memberships if m.organization_id == first.id)
    client.post_form(
        f"/admin/users/{target.id}/memberships/{remove_id}/delete", token_from="/account"
    )
    with app.app_context():
        assert [m.organization_id for m in db.session.get(User, target.id).memberships] == [
            second.id
        ]
