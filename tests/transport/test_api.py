"""The ride API as responders, providers and dispatchers meet it."""

import pytest

from referral_hub.accounts.models import Role
from referral_hub.directory.models import Program
from referral_hub.extensions import db
from referral_hub.referrals.models import Referral, Status
from tests.transport.conftest import next_weekday_at

PICKUP = "44.9483,-93.2348"


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def tokens(world, fleet, api_token):
    return {
        "responder": bearer(api_token(world.responder)),
        "staff": bearer(api_token(world.staff)),
        "dispatcher": bearer(api_token(fleet.dispatcher)),
    }


def create(client, rid, headers, **body):
    return client.post(
        f"/api/v1/referrals/{rid}/rides", json={"place": PICKUP, **body}, headers=headers
    )


def test_book_list_get_and_act(client, world, fleet, accepted, tokens, app):
    rid = accepted(next_weekday_at(11))
    response = create(client, rid, tokens["responder"], wheelchair=True, driver_notes="Ramp")
    assert response.status_code == 201, response.get_json()
    ride = response.get_json()
    assert ride["referral_id"] == rid and ride["leg"] == "outbound" and ride["mode"] == "vendor"
    assert ride["status"] == "requested" and ride["version"] == 1
    assert ride["vendor_org_id"] == fleet.vendor.id and ride["warnings"] == []
    assert ride["estimate_source"] == "estimate" and ride["travel_minutes"] > 0
    assert ride["times"]["window_start_at"] < ride["times"]["window_end_at"]
    assert ride["places"]["pickup"] == {"label": PICKUP, "lat": 44.9483, "lon": -93.2348}
    assert ride["places"]["dropoff"]["label"] == "Main office, 1 Main St"
    assert ride["mobility"] == {"wheelchair": True, "service_animal": False, "companions": 0}
    assert ride["driver_notes"] == "Ramp" and ride["driver_first_name"] is None
    assert ride["actions"] == ["cancel"]  # "ready" is for a will-call return only
    assert ride["program_name"] == "Youth Housing"

    listed = client.get(f"/api/v1/referrals/{rid}/rides", headers=tokens["staff"]).get_json()
    assert [r["id"] for r in listed["items"]] == [ride["id"]]

    seen = client.get(f"/api/v1/rides/{ride['id']}", headers=tokens["dispatcher"]).get_json()
    assert "assign" in seen["actions"] and seen["program_name"] == "Youth Housing"
    assigned = client.post(
        f"/api/v1/rides/{ride['id']}/actions/assign",
        json={"expected_version": 1, "driver_id": fleet.driver.id, "vehicle_id": fleet.van.id},
        headers=tokens["dispatcher"],
    )
    assert assigned.status_code == 200, assigned.get_json()
    body = assigned.get_json()
    assert body["status"] == "scheduled" and body["version"] == 2
    assert body["driver_first_name"] == "Sam" and body["vehicle"] == "Van 1"

    cancelled = client.post(
        f"/api/v1/rides/{ride['id']}/actions/cancel",
        json={"expected_version": 2, "reason_code": "client_declined"},
        headers=tokens["responder"],
    )
    assert cancelled.status_code == 200, cancelled.get_json()
    assert cancelled.get_json()["status"] == "cancelled"
    assert cancelled.get_json()["reason_code"] == "client_declined"
    assert cancelled.get_json()["actions"] == []


def test_booking_from_device_coordinates_and_a_will_call_return(
    client, world, fleet, accepted, tokens
):
    rid = accepted(next_weekday_at(11))
    out = create(client, rid, tokens["responder"], place="", lat=44.9483, lon=-93.2348)
    assert out.status_code == 201 and out.get_json()["places"]["pickup_from_device"]
    back = create(client, rid, tokens["responder"], leg="return", when="will_call", mode="walk")
    assert back.status_code == 201, back.get_json()
    body = back.get_json()
    assert body["will_call"] and body["times"]["window_start_at"] is None
    assert body["status"] == "scheduled" and body["vendor_org_id"] is None
    assert body["places"]["pickup"]["label"] == "Main office, 1 Main St"
    assert body["actions"] == ["ready", "cancel"]
    ready = client.post(
        f"/api/v1/rides/{body['id']}/actions/ready", json={}, headers=tokens["responder"]
    )
    assert ready.status_code == 200, ready.get_json()
    assert ready.get_json()["times"]["window_start_at"] is not None
    assert ready.get_json()["actions"] == ["depart", "pick_up", "cancel"]


def test_validation_answers_422_with_fields(client, world, fleet, accepted, tokens):
    rid = accepted(next_weekday_at(11))
    shape = create(client, rid, tokens["responder"], companions=9, when="soon", surprise=1)
    assert shape.status_code == 422
    assert {"companions", "when", "surprise"} <= set(shape.get_json()["error"]["fields"])
    rule = create(client, rid, tokens["responder"], place="", when="at")
    assert rule.status_code == 422
    assert {"place", "at"} & set(rule.get_json()["error"]["fields"])
    created = create(client, rid, tokens["responder"]).get_json()
    missing = client.post(
        f"/api/v1/rides/{created['id']}/actions/cancel", json={}, headers=tokens["responder"]
    )
    assert missing.status_code == 422
    assert "reason_code" in missing.get_json()["error"]["fields"]


def test_conflicts_answer_409(client, world, fleet, accepted, send, tokens):
    sent = send()
    early = create(client, sent, tokens["responder"])
    assert early.status_code == 409 and early.get_json()["error"]["status"] == "sent"
    rid = accepted(next_weekday_at(11))
    ride = create(client, rid, tokens["responder"]).get_json()
    twice = create(client, rid, tokens["responder"])
    assert twice.status_code == 409 and twice.get_json()["error"]["ride_id"] == ride["id"]
    stale = client.post(
        f"/api/v1/rides/{ride['id']}/actions/cancel",
        json={"expected_version": 7, "reason_code": "other"},
        headers=tokens["responder"],
    )
    assert stale.status_code == 409


def test_sides_and_foreign_records(client, world, fleet, accepted, tokens, make_user, api_token):
    rid = accepted(next_weekday_at(11))
    ride = create(client, rid, tokens["staff"]).get_json()  # the provider may book too
    assert ride["status"] == "requested"
    forbidden = client.post(
        f"/api/v1/rides/{ride['id']}/actions/no_show", json={}, headers=tokens["responder"]
    )
    assert forbidden.status_code == 403
    unknown = client.post(
        f"/api/v1/rides/{ride['id']}/actions/teleport", json={}, headers=tokens["responder"]
    )
    assert unknown.status_code == 404
    # The dispatcher sees the ride, never the referral behind it.
    assert (
        client.get(f"/api/v1/referrals/{rid}/rides", headers=tokens["dispatcher"]).status_code
        == 404
    )
    stranger = bearer(api_token(make_user(Role.RESPONDER)))
    assert client.get(f"/api/v1/rides/{ride['id']}", headers=stranger).status_code == 404
    assert client.get(f"/api/v1/referrals/{rid}/rides", headers=stranger).status_code == 404
    assert create(client, rid, stranger).status_code == 404
    cancel = client.post(
        f"/api/v1/rides/{ride['id']}/actions/cancel",
        json={"reason_code": "other"},
        headers=stranger,
    )
    assert cancel.status_code == 404


def test_dispatcher_never_gets_a_sensitive_programs_name(
    client, world, fleet, accepted, tokens, app
):
    with app.app_context():
        db.session.get(Program, world.program.id).sensitive = True
        db.session.commit()
    rid = accepted(next_weekday_at(11))
    ride = create(client, rid, tokens["responder"]).get_json()
    assert ride["program_name"] == "Youth Housing"  # the referring side knows where it goes
    seen = client.get(f"/api/v1/rides/{ride['id']}", headers=tokens["dispatcher"]).get_json()
    assert seen["program_name"] is None
    assert "Main office" not in str(seen) and "1 Main St" in seen["places"]["dropoff"]["label"]


def test_companion_drop_off_makes_the_referral_arrived(client, world, fleet, accepted, tokens, app):
    rid = accepted(next_weekday_at(11))
    ride = create(client, rid, tokens["responder"], mode="escort").get_json()
    assert ride["actions"] == ["depart", "pick_up", "cancel"]
    for action in ("pick_up", "drop_off"):
        response = client.post(
            f"/api/v1/rides/{ride['id']}/actions/{action}", json={}, headers=tokens["responder"]
        )
        assert response.status_code == 200, response.get_json()
    with app.app_context():
        assert db.session.get(Referral, rid).status == Status.ARRIVED
