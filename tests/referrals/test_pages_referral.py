"""The referral page and its action buttons, as provider staff and responders meet them."""

import re
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select

from referral_hub.accounts.models import Role
from referral_hub.directory.models import Program
from referral_hub.extensions import db
from referral_hub.referrals import operations as ops
from referral_hub.referrals.models import RecordView, Status

from .conftest import load, provider


def act(client, rid, action, **data):
    data.setdefault("expected_version", load_version(client.application, rid))
    return client.post_form(
        f"/referrals/{rid}/actions/{action}", data, token_from=f"/referrals/{rid}"
    )


def load_version(app, rid):
    with app.app_context():
        return load(rid).version


def test_accept_with_an_appointment_in_city_time(client, world, send, login_as, app):
    rid = send()
    login_as(world.staff)
    page = client.get(f"/referrals/{rid}").get_data(as_text=True)
    assert f'action="/referrals/{rid}/actions/accept"' in page
    assert f'action="/referrals/{rid}/actions/decline"' in page
    assert 'type="datetime-local"' in page
    response = act(client, rid, "accept", appointment_at="2031-07-01T14:30")
    assert response.status_code == 302, response.get_data(as_text=True)
    city = ZoneInfo(app.config["TIMEZONE"])
    with app.app_context():
        referral = load(rid)
        assert referral.status == Status.ACCEPTED
        assert referral.appointment_at == datetime(2031, 7, 1, 14, 30, tzinfo=city)
        assert referral.appointment_at.tzinfo == UTC
    shown = client.get(f"/referrals/{rid}").get_data(as_text=True)
    assert "Saved: Accept." in shown and "2031" in shown


def test_decline_without_reason_is_a_field_error(client, world, send, login_as, app):
    rid = send()
    login_as(world.staff)
    response = act(client, rid, "decline", note="full tonight")
    body = response.get_data(as_text=True)
    assert response.status_code == 422
    assert 'id="decline-reason_code-error"' in body and "This is required." in body
    assert "full tonight" in body  # what was typed is kept
    with app.app_context():
        assert load(rid).status == Status.SENT
    declined = act(client, rid, "decline", reason_code="no_capacity")
    assert declined.status_code == 302
    shown = client.get(f"/referrals/{rid}").get_data(as_text=True)
    assert "Declined" in shown and "No capacity" in shown


def test_stale_page_gets_a_conflict_with_the_current_state(client, world, send, login_as, app):
    rid = send()
    login_as(world.staff)
    seen = load_version(app, rid)  # the version on the page the user still has open
    assert act(client, rid, "accept").status_code == 302
    stale = act(client, rid, "hold", reason_code="program_closed", expected_version=seen)
    body = stale.get_data(as_text=True)
    assert stale.status_code == 409
    assert "Someone else changed this referral first" in body
    assert "Accepted" in body
    assert f'name="expected_version" value="{load_version(app, rid)}"' in body
    with app.app_context():
        assert load(rid).status == Status.ACCEPTED
    again = act(client, rid, "accept")  # no longer offered: the state moved on
    assert again.status_code == 409 and "cannot be changed that way" in again.get_data(as_text=True)


def test_hand_off_checks_the_clients_code(client, world, send, login_as, app):
    rid = send()
    with app.test_request_context():
        ops.perform(load(rid), "accept", provider(world))
        db.session.commit()
        code = load(rid).handoff_code
    login_as(world.staff)
    page = client.get(f"/referrals/{rid}").get_data(as_text=True)
    assert f'value="{world.staff.name}"' in page  # "received by" defaults to the user
    wrong = "000000" if code != "000000" else "111111"
    response = act(client, rid, "hand_off", handed_off_to="Kou Vang", code=wrong)
    assert response.status_code == 422
    assert "This code does not match" in response.get_data(as_text=True)
    assert act(client, rid, "hand_off", handed_off_to="Kou Vang", code=code).status_code == 302
    with app.app_context():
        assert load(rid).handed_off_to == "Kou Vang"


def test_handoff_code_shown_to_the_referrer_never_to_the_provider(
    client, world, send, login_as, app
):
    rid = send()
    with app.app_context():
        code = load(rid).handoff_code
    login_as(world.responder)
    mine = client.get(f"/referrals/{rid}").get_data(as_text=True)
    assert f"<strong>{code}</strong>" in mine and "handoff-code" in mine
    assert "+16125550123" in mine  # the referring side sees the client's phone
    client.post_form("/logout", token_from=f"/referrals/{rid}")
    login_as(world.staff)
    theirs = client.get(f"/referrals/{rid}").get_data(as_text=True)
    assert "handoff-code" not in theirs and f"<strong>{code}</strong>" not in theirs
    assert "Amina" in theirs and "+16125550123" in theirs


def test_sensitive_program_shows_the_referrer_only_the_handoff(client, world, send, login_as, app):
    with app.app_context():
        db.session.get(Program, world.program.id).sensitive = True
        db.session.commit()
    rid = send(note="Fled home last night")
    login_as(world.staff)
    for action, data in [
        ("accept", {"appointment_at": "2031-07-01T09:00"}),
        ("hand_off", {"handed_off_to": "Advocate"}),
        (
            "complete",
            {
                "outcome": "services_delivered",
                "note": "safety plan",
                "provider_notes": "private intake",
            },
        ),
    ]:
        assert act(client, rid, action, **data).status_code == 302
    own = client.get(f"/referrals/{rid}").get_data(as_text=True)
    assert "Services delivered" in own and "private intake" in own
    client.post_form("/logout", token_from=f"/referrals/{rid}")
    login_as(world.responder)
    police = client.get(f"/referrals/{rid}").get_data(as_text=True)
    assert "Received in person" in police and "Completed" in police
    for secret in (
        "Services delivered",
        "private intake",
        "safety plan",
        "Advocate",
        "Fled home",
        "2031",
    ):
        assert secret not in police, secret
    assert "This program is sensitive" in police
    assert not re.search(rf"{world.staff.name}\b", police)  # staff show as their organization
    assert world.provider.name in police


def test_foreign_referral_is_404_for_another_provider(client, world, send, login_as, make_user):
    rid = send()
    login_as(make_user(Role.PROVIDER_STAFF))
    assert client.get(f"/referrals/{rid}").status_code == 404
    token_page = "/referrals"
    response = client.post_form(
        f"/referrals/{rid}/actions/accept", {"expected_version": 1}, token_from=token_page
    )
    assert response.status_code == 404
    assert client.get(f"/clients/{world.client.id}").status_code == 404


def test_wrong_side_is_forbidden(client, world, send, login_as):
    rid = send()
    login_as(world.responder)
    page = client.get(f"/referrals/{rid}").get_data(as_text=True)
    assert "/actions/accept" not in page and "/actions/cancel" in page
    assert act(client, rid, "accept").status_code == 403
    assert act(client, rid, "teleport").status_code == 404


def test_viewing_the_page_is_logged(client, world, send, login_as, app):
    rid = send()
    login_as(world.staff)
    assert client.get(f"/referrals/{rid}").status_code == 200
    with app.app_context():
        views = db.session.scalars(select(RecordView).where(RecordView.referral_id == rid)).all()
        assert [(v.user_id, v.organization_id, v.client_id, v.context) for v in views] == [
            (world.staff.id, world.provider.id, world.client.id, "page")
        ]


def test_actions_need_the_csrf_token(client, world, send, login_as, app):
    rid = send()
    login_as(world.staff)
    response = client.post(f"/referrals/{rid}/actions/accept", data={"expected_version": 1})
    assert response.status_code == 400
    with app.app_context():
        assert load(rid).status == Status.SENT


def test_coordinator_sees_the_full_timeline(client, world, send, login_as, app):
    rid = send()
    with app.test_request_context():
        ops.perform(load(rid), "decline", provider(world), reason_code="not_eligible")
        db.session.commit()
    login_as(world.coordinator)
    page = client.get(f"/referrals/{rid}").get_data(as_text=True)
    assert "Send referral" in page and "Decline" in page and "Not eligible" in page
    assert f"({world.provider.name})" in page and f"({world.team.name})" in page
    assert "Sent, awaiting answer → Declined" in page
