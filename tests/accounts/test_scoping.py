"""Tenant isolation: another organization's records answer 404 on every page and API route."""

import re

import pytest

from referral_hub.accounts import operations as accounts_ops
from referral_hub.accounts import operations as ops
from referral_hub.accounts.models import Membership, Organization, Role, User, UserSession
from referral_hub.directory import operations as directory
from referral_hub.extensions import db
from referral_hub.insights.models import Goal
from referral_hub.referrals import operations as referral_ops
from referral_hub.transport.models import Driver, FollowUp, Ride, RideMode, Vehicle

from ..conftest import PASSWORD

PARAM = re.compile(r"<(?:[a-z]+:)?(\w+)>")


@pytest.fixture
def two_tenants(app, make_org, make_user, client, api_token):
    """A provider admin signed in, and a foreign organization with a user, token and session."""
    mine = make_org("provider")
    theirs = make_org("provider")
    me = make_user(Role.PROVIDER_ADMIN, org=mine)
    colleague = make_user(Role.PROVIDER_STAFF, org=mine)
    stranger = make_user(Role.PROVIDER_STAFF, org=theirs)
    api_token(stranger)
    app.test_client_class(app).login(stranger.email)
    with app.test_request_context():
        # The other tenant's directory listing and a referral between two other organizations.
        their_org = db.session.get(Organization, theirs.id)
        program = directory.create_program(their_org, name="Their program", categories=["housing"])
        site = directory.create_site(
            their_org,
            name="Their site",
            address_1="1 St",
            postal_code="55415",
            latitude=44.97,
            longitude=-93.26,
        )
        program_site = directory.offer_at(program, site, open_24_7=True)
        team = accounts_ops.create_organization(
            name="Their team", slug="their-team", kind="responder_team"
        )
        their_responder = db.session.get(User, make_user(Role.RESPONDER, org=team).id)
        person = referral_ops.create_client(team, their_responder, display_name="Someone")
        consent = referral_ops.record_consent(person, program, their_responder, method="verbal")
        referral = referral_ops.send_referral(
            client=person, program=program, user=their_responder, organization=team, consent=consent
        )
        # Their ride, their transport vendor's driver and vehicle, their follow-up.
        vendor = accounts_ops.create_organization(
            name="Their rides", slug="their-rides", kind="transport_vendor"
        )
        driver = Driver(organization=vendor, first_name="Their driver")
        vehicle = Vehicle(organization=vendor, label="Their van")
        ride = Ride(referral=referral, mode=RideMode.VENDOR, vendor_org=vendor, driver=driver)
        follow_up = FollowUp(
            referral=referral, ride=ride, organization_id=team.id, reason="ride_no_show"
        )
        # A coordinator's goal on their program: only coordinators may deactivate goals.
        goal = Goal(
            program_id=program.id, metric="accepted_share", comparator="at_least", target=0.9
        )
        db.session.add_all([driver, vehicle, ride, follow_up, goal])
        db.session.commit()
        directory_ids = {
            "program_id": program.id,
            "program_site_id": program_site.id,
            "client_id": person.id,
            "consent_id": consent.id,
            "referral_id": referral.id,
            "action": "accept",
            "ride_id": ride.id,
            "driver_id": driver.id,
            "vehicle_id": vehicle.id,
            "follow_up_id": follow_up.id,
            "goal_id": goal.id,
            "token": "d_" + "x" * 43,  # a driver link nobody issued
        }
    with app.app_context():
        foreign = {
            **directory_ids,
            "org_id": theirs.id,
            "user_id": stranger.id,
            "membership_id": db.session.query(Membership.id)
            .filter_by(user_id=stranger.id)
            .scalar(),
            "token_id": ops.user_api_tokens(db.session.get(User, stranger.id))[0].id,
            "session_id": db.session.query(UserSession.id).filter_by(user_id=stranger.id).scalar(),
        }
    return {
        "me": me,
        "colleague": colleague,
        "stranger": stranger,
        "mine": mine,
        "theirs": theirs,
        "foreign": foreign,
        "my_token": api_token(me),
    }


# The service directory is shared on purpose: HSDS is public open data, and every signed-in
# staff member may read any program's listing. Editing it (/manage) is tenant-scoped.
SHARED_PREFIXES = ("/hsds/", "/directory/")


def _routes_with_ids(app):
    for rule in app.url_map.iter_rules():
        names = PARAM.findall(rule.rule)
        if names and rule.endpoint != "static" and not rule.rule.startswith(SHARED_PREFIXES):
            yield rule, names


def _fill(rule, names, ids):
    missing = [n for n in names if n not in ids]
    assert not missing, f"{rule.rule}: add a foreign record for {missing} to this test"
    return PARAM.sub(lambda m: str(ids[m.group(1)]), rule.rule)


def test_every_page_and_api_route_answers_404_for_foreign_ids(app, client, two_tenants):
    client.login(two_tenants["me"].email)
    checked = 0
    for rule, names in _routes_with_ids(app):
        path = _fill(rule, names, two_tenants["foreign"])
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            if rule.rule.startswith("/api/"):
                headers = {"Authorization": f"Bearer {two_tenants['my_token']}"}
                body = {"handed_off_to": "x"} if "/actions/" in path else {}
                response = client.open(path, method=method, headers=headers, json=body)
            else:
                data = {"csrf_token": client.csrf("/account")} if method != "GET" else None
                response = client.open(path, method=method, data=data)
            assert response.status_code == 404, f"{method} {path} -> {response.status_code}"
            checked += 1
    assert checked >= 10


def test_foreign_records_are_unchanged_after_the_attempts(app, client, two_tenants):
    client.login(two_tenants["me"].email)
    for rule, names in _routes_with_ids(app):
        if rule.rule.startswith("/api/") or "POST" not in rule.methods:
            continue
        client.post(
            _fill(rule, names, two_tenants["foreign"]),
            data={"csrf_token": client.csrf("/account"), "name": "Hijacked", "is_active": ""},
        )
    with app.app_context():
        stranger = db.session.get(User, two_tenants["stranger"].id)
        assert stranger.is_active and stranger.name != "Hijacked"
        assert ops.user_api_tokens(stranger)
        assert ops.live_sessions(stranger)


def test_lists_show_only_own_organization(client, two_tenants, make_user):
    client.login(two_tenants["me"].email)
    html = client.get("/admin/users").get_data(as_text=True)
    assert two_tenants["colleague"].email in html
    assert two_tenants["stranger"].email not in html

    headers = {"Authorization": f"Bearer {two_tenants['my_token']}"}
    users = client.get("/api/v1/users", headers=headers).get_json()
    emails = {u["email"] for u in users["items"]}
    assert emails == {two_tenants["me"].email, two_tenants["colleague"].email}
    orgs = client.get("/api/v1/organizations", headers=headers).get_json()
    assert [o["id"] for o in orgs["items"]] == [two_tenants["mine"].id]
    # Filtering by a foreign organization finds nothing rather than leaking its members.
    foreign = client.get(
        f"/api/v1/users?organization_id={two_tenants['theirs'].id}", headers=headers
    ).get_json()
    assert foreign["items"] == [] and foreign["total"] == 0


def test_provider_admin_cannot_create_users_in_another_organization(client, two_tenants):
    headers = {"Authorization": f"Bearer {two_tenants['my_token']}"}
    response = client.post(
        "/api/v1/users",
        headers=headers,
        json={
            "email": "new@example.org",
            "name": "New",
            "role": "provider_staff",
            "organization_id": two_tenants["theirs"].id,
            "password": PASSWORD,
        },
    )
    assert response.status_code == 404
    response = client.post(
        "/api/v1/users",
        headers=headers,
        json={
            "email": "new@example.org",
            "name": "New",
            "role": "provider_staff",
            "organization_id": two_tenants["mine"].id,
            "password": PASSWORD,
        },
    )
    assert response.status_code == 201


def test_staff_can_see_but_not_edit_colleagues(client, two_tenants, api_token):
    token = api_token(two_tenants["colleague"])
    response = client.patch(
        f"/api/v1/users/{two_tenants['me'].id}",
        json={"name": "x"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 403
    assert response.get_json()["error"]["code"] == "forbidden"


def test_coordinator_reads_every_organization_but_not_their_users(
    client, make_user, two_tenants, api_token
):
    coordinator = make_user(Role.COORDINATOR)
    headers = {"Authorization": f"Bearer {api_token(coordinator)}"}
    response = client.get(f"/api/v1/organizations/{two_tenants['theirs'].id}", headers=headers)
    assert response.status_code == 200
    response = client.get(f"/api/v1/users/{two_tenants['stranger'].id}", headers=headers)
    assert response.status_code == 404


def test_admin_reaches_everything(client, make_user, two_tenants):
    admin = make_user(Role.ADMIN)
    client.login(admin.email)
    assert client.get(f"/admin/users/{two_tenants['stranger'].id}").status_code == 200
    assert client.get(f"/admin/organizations/{two_tenants['theirs'].id}").status_code == 200
