"""FHIR R4 export of one referral: a Bundle (type "collection") holding a Task shaped as the
SDOH Clinical Care IG's TaskForReferralManagement, its ServiceRequest, the Patient and the
two Organizations.

The export shows exactly what the viewer may see: it is built from `referral_view()` (plus
the client's phone, see `export_view`), and a field withheld from the viewer is simply left
out of the resources, as is anything derived from it (e.g. businessStatus "scheduled" when
the appointment is withheld, or the outcome of a sensitive program).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from referral_hub import policies
from referral_hub.accounts.models import Organization, User
from referral_hub.core.db import utcnow
from referral_hub.referrals.lifecycle import FHIR_STATUS, REASON_TITLES, Side
from referral_hub.referrals.models import Referral, Status
from referral_hub.referrals.views_common import referral_view

MEDIA_TYPE = "application/fhir+json"
TASK_PROFILE = (
    "http://hl7.org/fhir/us/sdoh-clinicalcare/StructureDefinition/SDOHCC-TaskForReferralManagement"
)
TASK_CODE_SYSTEM = "http://hl7.org/fhir/CodeSystem/task-code"
BCP47 = "urn:ietf:bcp:47"
# Stable namespace for ids derived with uuid5 (ServiceRequest, Organizations).
NAMESPACE = uuid.UUID("8a3e7c52-5f0b-5c8e-9d6a-0f1e2d3c4b5a")

# ServiceRequest.status per state: the request stays active while it is being worked on.
SERVICE_REQUEST_STATUS: dict[Status, str] = {
    Status.DRAFT: "draft",
    Status.SENT: "active",
    Status.ACCEPTED: "active",
    Status.EN_ROUTE: "active",
    Status.ARRIVED: "active",
    Status.HANDED_OFF: "active",
    Status.ON_HOLD: "on-hold",
    Status.COMPLETED: "completed",
    Status.DECLINED: "revoked",
    Status.CANCELLED: "revoked",
    Status.NO_SHOW: "revoked",
    Status.ENTERED_IN_ERROR: "entered-in-error",
}

# Task states whose statusReason is explained to the reader.
_EXPLAINED = frozenset({"rejected", "cancelled", "on-hold", "failed"})

# Sides that may see the client's phone number.
_PHONE_SIDES = frozenset({Side.REFERRER, Side.PROVIDER})


def export_view(user: User, referral: Referral) -> dict[str, Any]:
    """`referral_view()` plus the client's phone, withheld unless the viewer is on the
    referring or the provider side (a coordinator reads the referral, not the phone)."""
    view = referral_view(user, referral)
    if policies.referral_sides(user, referral) & _PHONE_SIDES:
        view["client_phone"] = referral.client.phone
    else:
        view["client_phone"] = None
        view["withheld"] = [*view["withheld"], "client_phone"]
    return view


# --- helpers ---------------------------------------------------------------------------------


def _instant(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:  # the database hands back aware UTC values; be safe anyway
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat(timespec="seconds")


def _derived_id(kind: str, key: str) -> str:
    return str(uuid.uuid5(NAMESPACE, f"{kind}/{key}"))


def _urn(resource_id: str) -> str:
    return f"urn:uuid:{resource_id}"


def _ref(resource_id: str, display: str | None = None) -> dict[str, str]:
    reference = {"reference": _urn(resource_id)}
    if display:
        reference["display"] = display
    return reference


def _title(code: str) -> str:
    return str(REASON_TITLES.get(code, code))


def _concept(system: str, code: str, text: str | None = None) -> dict[str, Any]:
    concept: dict[str, Any] = {"coding": [{"system": system, "code": code}]}
    if text:
        concept["coding"][0]["display"] = text
        concept["text"] = text
    return concept


def _prune(resource: dict[str, Any]) -> dict[str, Any]:
    """Drop keys whose value is None or empty: FHIR forbids empty elements."""
    return {k: v for k, v in resource.items() if v not in (None, "", [], {})}


class _Systems:
    """Our code systems and identifier systems, under the deployment's base URL."""

    def __init__(self, base_url: str) -> None:
        base = base_url.rstrip("/")
        self.referrals = f"{base}/referrals"
        self.organizations = f"{base}/organizations"
        self.categories = f"{base}/fhir/CodeSystem/service-category"
        self.business_status = f"{base}/fhir/CodeSystem/referral-business-status"
        self.reasons = f"{base}/fhir/CodeSystem/referral-reason"
        self.outcomes = f"{base}/fhir/CodeSystem/referral-outcome"


# --- resources -------------------------------------------------------------------------------


def _business_status(
    status: Status, view: dict[str, Any], systems: _Systems
) -> dict[str, Any] | None:
    """Task.businessStatus per DESIGN.md section 4, from visible fields only."""
    _, business = FHIR_STATUS[status]
    if status == Status.ACCEPTED:
        if view.get("appointment_at") is not None:
            return _concept(systems.business_status, "scheduled", "Appointment scheduled")
        return None
    if business == "reason":
        code = view.get("reason_code")
        return _concept(systems.reasons, code, _title(code)) if code else None
    if business == "outcome":
        code = view.get("outcome")
        return _concept(systems.outcomes, code, _title(code)) if code else None
    if business is not None:
        return _concept(systems.business_status, business, status.title)
    return None


def _status_reason(
    status: Status, task_status: str, view: dict[str, Any], systems: _Systems
) -> dict[str, Any] | None:
    if task_status not in _EXPLAINED:
        return None
    code = view.get("reason_code")
    reason = _concept(systems.reasons, code, _title(code)) if code else {"text": status.title}
    if view.get("reason_note"):
        reason["text"] = f"{reason['text']}: {view['reason_note']}"
    return reason


def _task(
    referral: Referral, view: dict[str, Any], ids: dict[str, str], systems: _Systems
) -> dict[str, Any]:
    status = Status(view["status"])
    task_status, _ = FHIR_STATUS[status]
    outputs = []
    if status == Status.COMPLETED and view.get("outcome"):
        outputs.append(
            {
                "type": {"text": "outcome"},
                "valueCodeableConcept": _concept(
                    systems.outcomes, view["outcome"], _title(view["outcome"])
                ),
            }
        )
    period = _prune(
        {"start": _instant(view.get("accepted_at")), "end": _instant(view.get("closed_at"))}
    )
    return _prune(
        {
            "resourceType": "Task",
            "id": ids["task"],
            "meta": {"profile": [TASK_PROFILE]},
            "identifier": [{"system": systems.referrals, "value": referral.uuid}],
            "status": task_status,
            "statusReason": _status_reason(status, task_status, view, systems),
            "businessStatus": _business_status(status, view, systems),
            "intent": "order",
            "priority": str(view["priority"]),
            "code": {
                "coding": [
                    {
                        "system": TASK_CODE_SYSTEM,
                        "code": "fulfill",
                        "display": "Fulfill the focal request",
                    }
                ]
            },
            "focus": _ref(ids["service_request"]),
            "for": _ref(ids["patient"]),
            "executionPeriod": period,
            "authoredOn": _instant(view.get("sent_at") or referral.created_at),
            "lastModified": _instant(referral.updated_at),
            "requester": _ref(ids["referring"], referral.referring_org.name),
            "owner": _ref(ids["provider"], referral.provider_org.name),
            "output": outputs,
        }
    )


def _service_request(
    referral: Referral, view: dict[str, Any], ids: dict[str, str], systems: _Systems
) -> dict[str, Any]:
    program = referral.program
    return _prune(
        {
            "resourceType": "ServiceRequest",
            "id": ids["service_request"],
            "identifier": [{"system": systems.referrals, "value": referral.uuid}],
            "status": SERVICE_REQUEST_STATUS[Status(view["status"])],
            "intent": "order",
            "category": [_concept(systems.categories, c.code, c.name) for c in program.categories],
            "priority": str(view["priority"]),
            "code": {"text": program.name},
            "subject": _ref(ids["patient"]),
            "occurrenceDateTime": _instant(view.get("appointment_at")),
            "authoredOn": _instant(view.get("sent_at") or referral.created_at),
            "requester": _ref(ids["referring"], referral.referring_org.name),
            "performer": [_ref(ids["provider"], referral.provider_org.name)],
            "note": [{"text": view["note"]}] if view.get("note") else None,
        }
    )


def _patient(referral: Referral, view: dict[str, Any], ids: dict[str, str]) -> dict[str, Any]:
    client = referral.client
    phone = view.get("client_phone")
    return _prune(
        {
            "resourceType": "Patient",
            "id": ids["patient"],
            "name": [{"text": client.display_name}],
            "telecom": [{"system": "phone", "value": phone}] if phone else None,
            "birthDate": f"{client.birth_year:04d}" if client.birth_year else None,
            "communication": [
                {
                    "language": {
                        "coding": [{"system": BCP47, "code": client.preferred_language}],
                        "text": client.preferred_language,
                    },
                    "preferred": True,
                }
            ]
            if client.preferred_language
            else None,
        }
    )


def _organization(org: Organization, resource_id: str, systems: _Systems) -> dict[str, Any]:
    return {
        "resourceType": "Organization",
        "id": resource_id,
        "identifier": [{"system": systems.organizations, "value": org.slug}],
        "active": org.is_active,
        "name": org.name,
    }


def referral_bundle(referral: Referral, view: dict[str, Any], base_url: str) -> dict[str, Any]:
    """The referral as a FHIR R4 Bundle (JSON-ready dict), honouring the viewer's `view`.

    `view` is `referral_view()` (or `export_view()`, which adds the client's phone) for the
    viewer; withheld fields are None there and are left out here.
    """
    systems = _Systems(base_url)
    ids = {
        "task": referral.uuid,
        "service_request": _derived_id("ServiceRequest", referral.uuid),
        "patient": referral.client.uuid,
        "provider": _derived_id("Organization", referral.provider_org.slug),
        "referring": _derived_id("Organization", referral.referring_org.slug),
    }
    resources = [
        _task(referral, view, ids, systems),
        _service_request(referral, view, ids, systems),
        _patient(referral, view, ids),
        _organization(referral.provider_org, ids["provider"], systems),
    ]
    if ids["referring"] != ids["provider"]:
        resources.append(_organization(referral.referring_org, ids["referring"], systems))
    return {
        "resourceType": "Bundle",
        "id": str(uuid.uuid4()),
        "type": "collection",
        "timestamp": _instant(utcnow()),
        "entry": [{"fullUrl": _urn(r["id"]), "resource": r} for r in resources],
    }
