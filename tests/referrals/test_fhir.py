"""The FHIR R4 export of a referral: a valid Bundle, the lifecycle mapped as DESIGN.md section 4
says, withheld fields left out, and the view logged."""

from datetime import timedelta

import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.organization import Organization as FhirOrganization
from fhir.resources.R4B.patient import Patient
from fhir.resources.R4B.servicerequest import ServiceRequest
from fhir.resources.R4B.task import Task

from referral_hub.accounts.models import Role
from referral_hub.core.db import utcnow
from referral_hub.directory.models import Program
from referral_hub.extensions import db
from referral_hub.referrals.models import RecordView, Referral, Status

from .conftest import load

MODELS = {
    "Task": Task,
    "ServiceRequest": ServiceRequest,
    "Patient": Patient,
    "Organization": FhirOrganization,
}
PROFILE = (
    "http://hl7.org/fhir/us/sdoh-clinicalcare/StructureDefinition/SDOHCC-TaskForReferralManagement"
)

# DESIGN.md section 4, written out again here on purpose: state -> (Task.status,
# businessStatus code or None), with the fields each state carries set on the referral.
APPOINTMENT = utcnow().replace(microsecond=0) + timedelta(days=1)
LIFECYCLE = [
    (Status.DRAFT, {}, "draft", None, "draft"),
    (Status.SENT, {}, "requested", None, "active"),
    (Status.ACCEPTED, {"accepted": True}, "accepted", None, "active"),
    (
        Status.ACCEPTED,
        {"accepted": True, "appointment_at": APPOINTMENT},
        "accepted",
        "scheduled",
        "active",
    ),
    (
        Status.DECLINED,
        {"reason_code": "no_capacity", "closed": True},
        "rejected",
        "no_capacity",
        "revoked",
    ),
    (Status.EN_ROUTE, {"accepted": True}, "accepted", "en-route", "active"),
    (Status.ARRIVED, {"accepted": True}, "accepted", "arrived", "active"),
    (Status.HANDED_OFF, {"accepted": True}, "in-progress", "handed-off", "active"),
    (
        Status.ON_HOLD,
        {"reason_code": "client_asked_to_wait"},
        "on-hold",
        "client_asked_to_wait",
        "on-hold",
    ),
    (
        Status.COMPLETED,
        {"accepted": True, "outcome": "enrolled", "closed": True},
        "completed",
        "enrolled",
        "completed",
    ),
    (Status.NO_SHOW, {"accepted": True, "closed": True}, "failed", "no-show", "revoked"),
    (
        Status.CANCELLED,
        {"reason_code": "client_unreachable", "closed": True},
        "cancelled",
        "client_unreachable",
        "revoked",
    ),
    (
        Status.ENTERED_IN_ERROR,
        {"reason_note": "wrong client", "closed": True},
        "entered-in-error",
        None,
        "entered-in-error",
    ),
]


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def tokens(world, api_token):
    return {
        "responder": bearer(api_token(world.responder)),
        "staff": bearer(api_token(world.staff)),
        "coordinator": bearer(api_token(world.coordinator)),
    }


def export(client, rid, headers):
    response = client.get(f"/api/v1/referrals/{rid}/fhir", headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "application/fhir+json"
    return response.get_json()


def validated(data) -> dict[str, dict]:
    """Parse the Bundle and each resource with the R4B models; resources by type."""
    bundle = Bundle.model_validate(data)
    assert bundle.type == "collection"
    by_type: dict[str, dict] = {}
    full_urls = set()
    for entry, parsed in zip(data["entry"], bundle.entry, strict=True):
        resource = entry["resource"]
        kind = resource["resourceType"]
        model = MODELS[kind].model_validate(resource)
        assert parsed.resource.get_resource_type() == kind
        assert model.id == resource["id"]
        assert entry["fullUrl"] == f"urn:uuid:{resource['id']}"
        full_urls.add(entry["fullUrl"])
        if kind == "Organization":
            by_type.setdefault("organizations", []).append(resource)
        else:
            assert kind not in by_type
            by_type[kind] = resource
    assert len(full_urls) == len(data["entry"])
    # Every reference resolves inside the Bundle.
    task, request = by_type["Task"], by_type["ServiceRequest"]
    for reference in (
        task["focus"],
        task["for"],
        task["requester"],
        task["owner"],
        request["subject"],
        request["requester"],
        *request["performer"],
    ):
        assert reference["reference"] in full_urls
    return by_type


def set_state(app, rid, status: Status, fields: dict) -> None:
    with app.test_request_context():
        referral = load(rid)
        referral.status = status
        now = utcnow().replace(microsecond=0)
        referral.accepted_at = now - timedelta(hours=2) if fields.get("accepted") else None
        referral.closed_at = now if fields.get("closed") else None
        referral.appointment_at = fields.get("appointment_at")
        referral.reason_code = fields.get("reason_code")
        referral.reason_note = fields.get("reason_note")
        referral.outcome = fields.get("outcome")
        db.session.commit()


def code_of(concept):
    return concept["coding"][0]["code"] if concept else None


@pytest.mark.parametrize(
    ("status", "fields", "task_status", "business", "request_status"),
    LIFECYCLE,
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_every_state_maps_as_designed(
    client, app, world, send, tokens, status, fields, task_status, business, request_status
):
    rid = send(priority="urgent", note="Needs a bed tonight")
    set_state(app, rid, status, fields)
    found = validated(export(client, rid, tokens["staff"]))
    task, request = found["Task"], found["ServiceRequest"]

    assert task["status"] == task_status
    assert code_of(task.get("businessStatus")) == business
    assert request["status"] == request_status
    assert task["meta"]["profile"] == [PROFILE]
    assert task["intent"] == request["intent"] == "order"
    assert task["code"]["coding"][0] == {
        "system": "http://hl7.org/fhir/CodeSystem/task-code",
        "code": "fulfill",
        "display": "Fulfill the focal request",
    }
    assert task["priority"] == request["priority"] == "urgent"
    with app.test_request_context():
        referral = load(rid)
        assert task["identifier"] == [
            {"system": "http://127.0.0.1:5000/referrals", "value": referral.uuid}
        ]
        assert task["id"] == referral.uuid
        assert task["authoredOn"].startswith(referral.sent_at.isoformat()[:19])

    if business in ("no_capacity", "client_asked_to_wait", "client_unreachable"):
        assert task["businessStatus"]["text"] == task["businessStatus"]["coding"][0]["display"]
    if task_status in ("rejected", "cancelled", "on-hold", "failed"):
        assert task["statusReason"]["text"]
    else:
        assert "statusReason" not in task
    if status == Status.COMPLETED:
        [output] = task["output"]
        assert output["type"]["text"] == "outcome"
        assert code_of(output["valueCodeableConcept"]) == "enrolled"
    else:
        assert "output" not in task
    period = task.get("executionPeriod", {})
    assert ("start" in period) == bool(fields.get("accepted"))
    assert ("end" in period) == bool(fields.get("closed"))
    if fields.get("appointment_at"):
        assert request["occurrenceDateTime"].startswith(APPOINTMENT.isoformat()[:19])
    else:
        assert "occurrenceDateTime" not in request


def test_bundle_contents_for_the_provider(client, app, world, send, tokens):
    rid = send(note="Needs a bed tonight")
    found = validated(export(client, rid, tokens["staff"]))
    task, request, patient = found["Task"], found["ServiceRequest"], found["Patient"]

    assert request["code"] == {"text": "Youth Housing"}
    assert [c["coding"][0]["code"] for c in request["category"]] == ["housing"]
    assert request["note"] == [{"text": "Needs a bed tonight"}]
    assert task["priority"] == "routine"
    assert patient["name"] == [{"text": "Amina"}]
    assert patient["birthDate"] == "1990"
    assert patient["communication"][0]["language"]["coding"][0] == {
        "system": "urn:ietf:bcp:47",
        "code": "so",
    }
    assert patient["telecom"][0]["system"] == "phone"  # the provider side sees the phone

    orgs = {o["identifier"][0]["value"]: o for o in found["organizations"]}
    assert set(orgs) == {world.provider.slug, world.team.slug}
    provider, team = orgs[world.provider.slug], orgs[world.team.slug]
    assert provider["name"] == world.provider.name
    assert (
        task["owner"]["reference"]
        == request["performer"][0]["reference"]
        == (f"urn:uuid:{provider['id']}")
    )
    assert (
        task["requester"]["reference"]
        == request["requester"]["reference"]
        == (f"urn:uuid:{team['id']}")
    )
    assert (
        task["for"]["reference"] == request["subject"]["reference"] == (f"urn:uuid:{patient['id']}")
    )
    assert task["focus"]["reference"] == f"urn:uuid:{request['id']}"
    # Derived ids are stable between exports.
    again = validated(export(client, rid, tokens["staff"]))
    assert again["ServiceRequest"]["id"] == request["id"]
    assert {o["id"] for o in again["organizations"]} == {provider["id"], team["id"]}


def test_coordinator_gets_no_phone(client, world, send, tokens):
    rid = send()
    patient = validated(export(client, rid, tokens["coordinator"]))["Patient"]
    assert "telecom" not in patient and patient["name"] == [{"text": "Amina"}]
    patient = validated(export(client, rid, tokens["responder"]))["Patient"]
    assert patient["telecom"]


def test_sensitive_program_withholds_outcome_and_note_from_the_referrer(
    client, app, world, send, tokens
):
    with app.test_request_context():
        db.session.get(Program, world.program.id).sensitive = True
        db.session.commit()
    rid = send(note="Fleeing a partner")
    appointment = (utcnow() + timedelta(days=1)).isoformat()
    for action, body in [
        ("accept", {"appointment_at": appointment}),
        ("hand_off", {"handed_off_to": "Advocate"}),
        ("complete", {"outcome": "services_delivered", "provider_notes": "private"}),
    ]:
        response = client.post(
            f"/api/v1/referrals/{rid}/actions/{action}", json=body, headers=tokens["staff"]
        )
        assert response.status_code == 200, response.get_json()

    seen = export(client, rid, tokens["responder"])
    found = validated(seen)
    task, request = found["Task"], found["ServiceRequest"]
    assert task["status"] == "completed"  # whether the handoff happened is not withheld
    assert "output" not in task and "businessStatus" not in task
    assert "note" not in request and "occurrenceDateTime" not in request
    text = str(seen)
    for secret in ("services_delivered", "Fleeing a partner", "private"):
        assert secret not in text

    own = validated(export(client, rid, tokens["staff"]))
    assert code_of(own["Task"]["output"][0]["valueCodeableConcept"]) == "services_delivered"
    assert code_of(own["Task"]["businessStatus"]) == "services_delivered"
    assert own["ServiceRequest"]["note"] == [{"text": "Fleeing a partner"}]
    assert "occurrenceDateTime" in own["ServiceRequest"]


def test_export_is_logged(client, app, world, send, tokens):
    rid = send()
    export(client, rid, tokens["responder"])
    with app.app_context():
        views = db.session.query(RecordView).filter_by(client_id=world.client.id).all()
        assert [(v.context, v.referral_id, v.user_id) for v in views] == [
            ("fhir", rid, world.responder.id)
        ]


def test_foreign_referral_is_404_and_anonymous_401(client, app, world, send, make_user, api_token):
    rid = send()
    stranger = bearer(api_token(make_user(Role.PROVIDER_STAFF)))
    response = client.get(f"/api/v1/referrals/{rid}/fhir", headers=stranger)
    assert response.status_code == 404
    assert client.get("/api/v1/referrals/999999/fhir", headers=stranger).status_code == 404
    assert client.get(f"/api/v1/referrals/{rid}/fhir").status_code == 401
    with app.app_context():
        assert db.session.query(RecordView).count() == 0
        assert db.session.get(Referral, rid) is not None


def test_endpoint_is_in_the_openapi_document(client):
    spec = client.get("/api/v1/openapi.json").get_json()
    operation = spec["paths"]["/api/v1/referrals/{referral_id}/fhir"]["get"]
    assert "FHIR" in operation["summary"]
    assert {"200", "401", "404"} <= set(operation["responses"])
    assert operation["security"] == [{"bearer": []}]
