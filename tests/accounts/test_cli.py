"""The CLI: seed demo (idempotent), users create / list / token / deactivate."""

import pytest
from sqlalchemy import func, select

from referral_hub.accounts.models import Organization, User
from referral_hub.demo import demo_users
from referral_hub.directory.models import Site
from referral_hub.extensions import db

from ..conftest import PASSWORD


def count(app, model):
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model))


@pytest.fixture
def cli(app):
    return app.test_cli_runner()


def test_seed_demo_is_idempotent_and_complete(app, cli):
    first = cli.invoke(args=["seed", "demo"])
    assert first.exit_code == 0, first.output
    counts = [count(app, m) for m in (Organization, Site, User)]
    second = cli.invoke(args=["seed", "demo"])
    assert second.exit_code == 0 and "Created: nothing" in second.output
    assert [count(app, m) for m in (Organization, Site, User)] == counts
    with app.app_context():
        kinds = db.session.execute(
            select(Organization.kind, func.count()).group_by(Organization.kind)
        ).all()
        roles = {m.role.value for u in db.session.scalars(select(User)) for m in u.memberships}
    by_kind = {k.value: n for k, n in kinds}
    assert by_kind["provider"] >= 12 and by_kind["transport_vendor"] >= 1
    assert by_kind["responder_team"] >= 3 and by_kind["city_department"] >= 1
    assert roles == {
        "responder",
        "provider_staff",
        "provider_admin",
        "dispatcher",
        "coordinator",
        "admin",
    }


def test_every_demo_user_can_sign_in(app, cli, client):
    assert cli.invoke(args=["seed", "demo"]).exit_code == 0
    for item in demo_users():
        fresh = app.test_client_class(app)
        assert fresh.login(item["email"], PASSWORD).status_code == 302, item["email"]


def test_seed_if_empty_leaves_existing_data_alone(app, cli, make_user):
    make_user("responder")
    result = cli.invoke(args=["seed", "demo", "--if-empty"])
    assert "not loaded" in result.output
    assert count(app, Site) == 0


def test_demo_sites_are_in_minneapolis(app, cli):
    cli.invoke(args=["seed", "demo"])
    with app.app_context():
        sites = db.session.scalars(select(Site)).all()
    assert len(sites) >= 20
    for site in sites:
        assert 44.88 < site.latitude < 45.06 and -93.34 < site.longitude < -93.18, site.slug
        assert site.city == "Minneapolis"


def test_users_create_list_and_token(app, cli, client, make_org):
    org = make_org("provider", slug="cli-org")
    result = cli.invoke(
        args=[
            "users",
            "create",
            "New.Person@Example.org",
            "--org",
            "cli-org",
            "--role",
            "provider_staff",
            "--name",
            "New Person",
        ],
        env={"RH_USER_PASSWORD": PASSWORD},
    )
    assert result.exit_code == 0, result.output

    listing = cli.invoke(args=["users", "list"]).output.splitlines()
    assert f"new.person@example.org\t{org.slug}\tprovider_staff" in listing

    token = cli.invoke(args=["users", "token", "new.person@example.org"]).output.split()[-1]
    response = client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert response.get_json()["email"] == "new.person@example.org"

    result = cli.invoke(args=["users", "deactivate", "new.person@example.org"])
    assert result.exit_code == 0
    response = client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["x@example.org", "--org", "missing", "--role", "responder"], "No organization"),
        (["bad-email", "--org", "cli-org2", "--role", "provider_staff"], "valid e-mail"),
        (["y@example.org", "--org", "cli-org2", "--role", "dispatcher"], "does not fit"),
    ],
)
def test_users_create_reports_bad_input(app, cli, make_org, args, message):
    make_org("provider", slug="cli-org2")
    result = cli.invoke(args=["users", "create", *args], env={"RH_USER_PASSWORD": PASSWORD})
    assert result.exit_code != 0
    assert message in result.output


def test_users_create_refuses_a_short_password(app, cli, make_org):
    make_org("provider", slug="cli-org3")
    result = cli.invoke(
        args=["users", "create", "z@example.org", "--org", "cli-org3", "--role", "provider_staff"],
        env={"RH_USER_PASSWORD": "short"},
    )
    assert result.exit_code != 0 and "12 characters" in result.output
    assert count(app, User) == 0


def test_token_for_unknown_user(cli):
    result = cli.invoke(args=["users", "token", "ghost@example.org"])
    assert result.exit_code != 0 and "No user" in result.output
