"""The referral API as responders, providers, police and coordinators meet it."""

from datetime import timedelta

import pytest

from referral_hub.accounts.models import Organization, Role
from referral_hub.core.db import utcnow
from referral_hub.directory.models import Program
from referral_hub.extensions import db
from referral_hub.referrals.models import RecordView
from tests.conftest import counting_selects


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def tokens(world, api_token):
    return {
        "responder": bearer(api_token(world.responder)),
        "staff": bearer(api_token(world.staff)),
        "coordinator": bearer(api_token(world.coordinator)),
    }


def _send(client, world, tokens, **extra):
    body = {
        "client_id": world.client.id,
        "program_id": world.program.id,
        "site_id": world.site.id,
        "consent_id": world.consent.id,
        "priority": "urgent",
        "note": "Needs a bed tonight",
        "answers": {"age": 20},
    }
    body.update(extra)
    return client.post("/api/v1/referrals", json=body, headers=tokens["responder"])


def test_full_handoff_seen_by_both_sides(client, world, tokens):
    response = _send(client, world, tokens)
    assert response.status_code == 201, response.get_json()
    sent = response.get_json()
    assert sent["status"] == "sent" and sent["handoff_code"]
    rid = sent["id"]

    inbox = client.get("/api/v1/referrals?side=provider", headers=tokens["staff"]).get_json()
    assert [r["id"] for r in inbox["items"]] == [rid]
    assert inbox["items"][0]["handoff_code"] is None  # the provider checks it, never sees it
    assert inbox["items"][0]["actions"][:2] == ["accept", "decline"]

    appointment = (utcnow() + timedelta(days=1)).isoformat()
    for action, body in [
        ("accept", {"appointment_at": appointment}),
        ("hand_off", {"handed_off_to": "Kou Vang", "code": sent["handoff_code"]}),
        ("complete", {"outcome": "enrolled", "provider_notes": "intake done"}),
    ]:
        response = client.post(
            f"/api/v1/referrals/{rid}/actions/{action}", json=body, headers=tokens["staff"]
        )
        assert response.status_code == 200, response.get_json()

    seen = client.get(f"/api/v1/referrals/{rid}", headers=tokens["responder"]).get_json()
    assert seen["status"] == "completed" and seen["outcome"] == "enrolled"
    assert seen["handed_off_at"] and seen["provider_notes"] is None
    timeline = client.get(
        f"/api/v1/referrals/{rid}/events", headers=tokens["responder"]
    ).get_json()["items"]
    assert [e["action"] for e in timeline] == ["send", "accept", "hand_off", "complete"]


def test_conflict_answers_409_with_the_state(client, world, tokens):
    rid = _send(client, world, tokens).get_json()["id"]
    client.post(f"/api/v1/referrals/{rid}/actions/accept", json={}, headers=tokens["staff"])
    again = client.post(f"/api/v1/referrals/{rid}/actions/accept", json={}, headers=tokens["staff"])
    assert again.status_code == 409
    assert again.get_json()["error"]["status"] == "accepted"
    stale = client.post(
        f"/api/v1/referrals/{rid}/actions/hand_off",
        json={"handed_off_to": "X", "version": 1},
        headers=tokens["staff"],
    )
    assert stale.status_code == 409


def test_missing_reason_is_a_field_error(client, world, tokens):
    rid = _send(client, world, tokens).get_json()["id"]
    response = client.post(
        f"/api/v1/referrals/{rid}/actions/decline", json={}, headers=tokens["staff"]
    )
    assert response.status_code == 422
    assert "reason_code" in response.get_json()["error"]["fields"]


def test_wrong_side_is_forbidden_and_foreign_is_404(client, world, tokens, make_user, api_token):
    rid = _send(client, world, tokens).get_json()["id"]
    response = client.post(
        f"/api/v1/referrals/{rid}/actions/accept", json={}, headers=tokens["responder"]
    )
    assert response.status_code == 403
    stranger = bearer(api_token(make_user(Role.PROVIDER_STAFF)))
    assert client.get(f"/api/v1/referrals/{rid}", headers=stranger).status_code == 404
    assert (
        client.post(
            f"/api/v1/referrals/{rid}/actions/accept", json={}, headers=stranger
        ).status_code
        == 404
    )
    assert client.get(f"/api/v1/clients/{world.client.id}", headers=stranger).status_code == 404


def test_sending_needs_consent(client, world, tokens, app):
    with app.test_request_context():
        from referral_hub.directory import operations as directory

        other = directory.create_program(
            db.session.get(Organization, world.provider.id), name="Other", categories=["housing"]
        )
        db.session.commit()
        other_id = other.id
    response = _send(client, world, tokens, program_id=other_id, site_id=None)
    assert response.status_code == 422
    assert "consent" in response.get_json()["error"]["fields"]


def test_sensitive_program_shows_police_only_that_the_handoff_happened(client, world, tokens, app):
    with app.test_request_context():
        db.session.get(Program, world.program.id).sensitive = True
        db.session.commit()
    rid = _send(client, world, tokens).get_json()["id"]
    for action, body in [
        ("accept", {}),
        ("hand_off", {"handed_off_to": "Advocate"}),
        (
            "complete",
            {"outcome": "services_delivered", "note": "details", "provider_notes": "private"},
        ),
    ]:
        client.post(f"/api/v1/referrals/{rid}/actions/{action}", json=body, headers=tokens["staff"])
    seen = client.get(f"/api/v1/referrals/{rid}", headers=tokens["responder"]).get_json()
    assert seen["status"] == "completed" and seen["handed_off_at"]
    assert seen["outcome"] is None and seen["reason_note"] is None
    assert seen["provider_notes"] is None and seen["note"] is None
    assert {"outcome", "provider_notes"} <= set(seen["withheld"])
    own = client.get(f"/api/v1/referrals/{rid}", headers=tokens["staff"]).get_json()
    assert own["outcome"] == "services_delivered" and own["provider_notes"] == "private"


def test_client_views_are_logged_without_contents(client, world, tokens, app):
    client.get(f"/api/v1/clients/{world.client.id}", headers=tokens["responder"])
    with app.app_context():
        views = db.session.query(RecordView).filter_by(client_id=world.client.id).all()
        assert len(views) == 1 and views[0].user_id == world.responder.id
        assert views[0].context == "api"


def test_duplicate_hint_api(client, world, tokens):
    found = client.get(
        "/api/v1/clients/duplicates?display_name=AMINA&birth_year=1990", headers=tokens["responder"]
    ).get_json()
    assert [c["id"] for c in found["items"]] == [world.client.id]


def _count_selects(app, fn):
    with counting_selects(app) as seen:
        result = fn()
    return len(seen), result


def test_list_filters_and_query_count(client, world, tokens, app):
    for _ in range(2):
        _send(client, world, tokens)

    def page(per_page):
        return client.get(
            f"/api/v1/referrals?per_page={per_page}&status=sent", headers=tokens["staff"]
        ).get_json()

    page(1)  # the token's first use is recorded once; count steady-state requests
    one, _ = _count_selects(app, lambda: page(1))
    two, _ = _count_selects(app, lambda: page(2))
    for _ in range(3):
        _send(client, world, tokens)
    five, body = _count_selects(app, lambda: page(5))
    assert one == two == five
    assert body["total"] == 5 and len(body["items"]) == 5
    none = client.get("/api/v1/referrals?status=completed", headers=tokens["staff"]).get_json()
    assert none["total"] == 0
