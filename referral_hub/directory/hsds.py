"""Open Referral HSDS 3.0 mapping: the directory as HSDS objects, and HSDS values back.

Program -> `service`, Organization -> `organization`, Site -> `location`, ProgramSite ->
`service_at_location` (hours as `schedules`), Category -> `taxonomy_term`. Ids are our uuid
columns; rows without one get `uuid5(NAMESPACE, "<kind>:<key>")`, e.g. an organization
`uuid5(NAMESPACE, "organization:<id>")` and a language `"language:<service id>:<code>"`,
so they stay the same from one export to the next.

Two taxonomies are published (GET /hsds/taxonomies):

* **referral_hub categories** — the kinds of service (housing, employment, diversion, ...);
  each Category is a term whose id is the category's uuid and whose code is its code.
  A service carries one attribute per category.
* **referral_hub** — machine-readable facts HSDS has no field for, carried by service
  attributes whose `value` is text:

  =====================  ==================================================================
  term code              attribute value
  =====================  ==================================================================
  eligibility-criteria   JSON text of the eligibility rule: JsonLogic in the subset that
                         referral_hub.matching.rules documents (variables are the codes of
                         the screener's questions: age, needs, veteran, ...). Absent: the
                         service is open to everyone.
  criteria-version       integer, bumped whenever the rule changes
  capacity-status        capacity | no-capacity | waitlist | additional-assessment-required
                         (the FHIR SDOH capacity codes)
  open-slots             non-negative integer; absent when not tracked
  interpreter-languages  comma-separated ISO 639 codes served through an interpreter (HSDS
                         `languages` lists only languages the staff speak)
  =====================  ==================================================================

Conventions beyond the specification: schedule times are wall-clock times in the city's
time zone (named in each schedule's description); a weekly schedule whose `closes_at` is
at or before `opens_at` closes after midnight; 24/7 is one schedule MO-SU 00:00-23:59;
a schedule with `valid_from == valid_to` is a dated exception (no `opens_at`: closed that
day; `notes`: the reason). Service areas are ZIP codes (`extent_type` "text", comma
separated), a circle (`extent_type` "geojson", a Point Feature with property `radius_km`)
or a GeoJSON Polygon / MultiPolygon.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from babel import Locale
from sqlalchemy.orm import joinedload, selectinload

from referral_hub.accounts.models import Organization
from referral_hub.directory.hsds_values import (
    age_bounds,
    clean,
    hsds_id,
    schedules,
    service_area,
)
from referral_hub.directory.models import Category, LanguageMode, Program, ProgramSite, Site

# Loader options: one query per relationship, however many services are dumped.
SERVICE_FLAT = (joinedload(Program.organization), selectinload(Program.languages))
SERVICE_TREE = (
    *SERVICE_FLAT,
    selectinload(Program.categories),
    selectinload(Program.service_areas),
    selectinload(Program.program_sites).options(
        joinedload(ProgramSite.site),
        selectinload(ProgramSite.weekly_hours),
        selectinload(ProgramSite.exceptions),
    ),
)


def organization_id(org_id: int) -> str:
    """The HSDS id of an organization (organizations have no uuid column)."""
    return hsds_id("organization", org_id)


# --- taxonomies ------------------------------------------------------------------------------

TAXONOMY_ID = hsds_id("taxonomy", "referral_hub")
CATEGORY_TAXONOMY_ID = hsds_id("taxonomy", "categories")
TAXONOMIES = {
    TAXONOMY_ID: {
        "id": TAXONOMY_ID,
        "name": "referral_hub",
        "description": "Facts referral_hub publishes as service attributes: eligibility "
        "criteria (JsonLogic), criteria version, capacity status, open slots and interpreter "
        "languages. See the module documentation of referral_hub.directory.hsds.",
        "version": "1",
    },
    CATEGORY_TAXONOMY_ID: {
        "id": CATEGORY_TAXONOMY_ID,
        "name": "referral_hub categories",
        "description": "The kinds of service programs are listed under: housing, employment, "
        "diversion, victim services, behavioral health and more.",
        "version": "1",
    },
}
TERMS = {
    "eligibility-criteria": (
        "Eligibility criteria",
        "JSON text of the eligibility rule in referral_hub's JsonLogic subset.",
    ),
    "criteria-version": ("Criteria version", "Integer version of the eligibility rule."),
    "capacity-status": (
        "Capacity status",
        "capacity, no-capacity, waitlist or additional-assessment-required.",
    ),
    "open-slots": ("Open slots", "Number of places open now (a non-negative integer)."),
    "interpreter-languages": (
        "Interpreter languages",
        "Comma-separated language codes served through an interpreter.",
    ),
}


def term(code: str) -> dict[str, Any]:
    """A term of the referral_hub taxonomy."""
    name, description = TERMS[code]
    return {
        "id": hsds_id("taxonomy_term", "referral_hub", code),
        "code": code,
        "name": name,
        "description": description,
        "taxonomy": "referral_hub",
        "taxonomy_id": TAXONOMY_ID,
        "taxonomy_detail": TAXONOMIES[TAXONOMY_ID],
        "language": "en",
    }


TERM_CODES = {term(code)["id"]: code for code in TERMS}


def referral_hub_code(term_id: Any, found: dict[str, Any] | None) -> str | None:
    """The code of a referral_hub term, known by its id or by its code and taxonomy."""
    if term_id in TERM_CODES:
        return TERM_CODES[term_id]
    ours = found is not None and (
        found.get("taxonomy_id") == TAXONOMY_ID or found.get("taxonomy") == "referral_hub"
    )
    return found["code"] if ours and found.get("code") in TERMS else None


def category_term(category: Category) -> dict[str, Any]:
    """A category as a term of the referral_hub categories taxonomy."""
    return {
        "id": category.uuid,
        "code": category.code,
        "name": category.name,
        "description": category.description or category.name,
        "taxonomy": "referral_hub categories",
        "taxonomy_id": CATEGORY_TAXONOMY_ID,
        "taxonomy_detail": TAXONOMIES[CATEGORY_TAXONOMY_ID],
        "language": "en",
    }


def _attribute(link_id: str, taxonomy_term: dict, value: str | None = None) -> dict[str, Any]:
    return clean(
        {
            "id": hsds_id("attribute", link_id, taxonomy_term["id"]),
            "link_id": link_id,
            "link_entity": "service",
            "taxonomy_term_id": taxonomy_term["id"],
            "value": value,
            "taxonomy_term": taxonomy_term,
        }
    )


# --- model -> HSDS ---------------------------------------------------------------------------


def organization_flat(org: Organization) -> dict[str, Any]:
    """An organization as a list item (compiled/organization_list)."""
    return clean(
        {
            "id": organization_id(org.id),
            "name": org.name,
            "description": org.description or "",
            "website": org.website,
        }
    )


def organization(
    org: Organization, sites: Iterable[Site], services: Iterable[dict[str, Any]]
) -> dict[str, Any]:
    """An organization in full (compiled/organization), with its locations and services."""
    doc = organization_flat(org)
    org_id = doc["id"]
    doc["phones"] = _phones(org.phone, "organization", org_id)
    doc["locations"] = [location(site) for site in sites]
    doc["services"] = list(services)
    return doc


def _phones(number: str | None, owner: str, owner_id: str) -> list[dict[str, Any]]:
    if not number:
        return []
    return [
        {
            "id": hsds_id("phone", owner, owner_id),
            f"{owner}_id": owner_id,
            "number": number,
            "type": "voice",
        }
    ]


def _language_name(code: str) -> str:
    return Locale("en").languages.get(code) or code


def service_flat(program: Program, *, with_organization: bool = True) -> dict[str, Any]:
    """A program as a service list item (compiled/service_list)."""
    interpreted = [
        lang.language for lang in program.languages if lang.mode == LanguageMode.INTERPRETER
    ]
    minimum_age, maximum_age = age_bounds(program.criteria)
    return clean(
        {
            "id": program.uuid,
            "organization_id": organization_id(program.organization_id),
            "name": program.name,
            "description": program.description or "",
            "url": program.url,
            "email": program.email,
            "status": "active" if program.is_active else "inactive",
            "interpretation_services": (
                "Interpreters for " + ", ".join(_language_name(c) for c in sorted(interpreted))
                if interpreted
                else None
            ),
            "fees_description": None if program.is_free else (program.fee_description or "Fees"),
            "eligibility_description": program.eligibility_description,
            "minimum_age": minimum_age,
            "maximum_age": maximum_age,
            "last_modified": program.updated_at.isoformat(timespec="milliseconds"),
            "organization": organization_flat(program.organization) if with_organization else None,
        }
    )


def service(program: Program, *, with_locations: bool = True) -> dict[str, Any]:
    """A program as a full service (compiled/service)."""
    doc = service_flat(program)
    sid = program.uuid
    doc["phones"] = _phones(program.phone, "service", sid)
    doc["schedules"] = []
    doc["service_areas"] = [service_area(area, sid) for area in program.service_areas]
    if with_locations:
        doc["service_at_locations"] = [
            service_at_location(ps, with_service=False) for ps in active_program_sites(program)
        ]
    doc["languages"] = [
        {
            "id": hsds_id("language", sid, lang.language),
            "service_id": sid,
            "name": _language_name(lang.language),
            "code": lang.language,
            "note": "Spoken by staff",
        }
        for lang in sorted(program.languages, key=lambda lang: lang.language)
        if lang.mode == LanguageMode.STAFF
    ]
    doc["cost_options"] = [
        clean(
            {
                "id": hsds_id("cost_option", sid),
                "service_id": sid,
                "option": "Free" if program.is_free else "Fee",
                "amount": 0 if program.is_free else None,
                "currency": "USD" if program.is_free else None,
                "amount_description": None if program.is_free else program.fee_description,
            }
        )
    ]
    doc["required_documents"] = [
        {"id": hsds_id("required_document", sid, text), "service_id": sid, "document": text}
        for text in dict.fromkeys(program.required_documents or [])
    ]
    doc["contacts"] = []
    doc["attributes"] = service_attributes(program)
    return doc


def service_attributes(program: Program) -> list[dict[str, Any]]:
    """Categories and the referral_hub facts of a program, as HSDS attributes."""
    sid = program.uuid
    found = [
        _attribute(sid, category_term(c)) for c in sorted(program.categories, key=lambda c: c.code)
    ]
    if program.criteria is not None:
        found.append(_attribute(sid, term("eligibility-criteria"), json.dumps(program.criteria)))
    found.append(_attribute(sid, term("criteria-version"), str(program.criteria_version)))
    found.append(_attribute(sid, term("capacity-status"), str(program.capacity_status)))
    if program.open_slots is not None:
        found.append(_attribute(sid, term("open-slots"), str(program.open_slots)))
    interpreted = sorted(
        lang.language for lang in program.languages if lang.mode == LanguageMode.INTERPRETER
    )
    if interpreted:
        found.append(_attribute(sid, term("interpreter-languages"), ",".join(interpreted)))
    return found


def active_program_sites(program: Program) -> list[ProgramSite]:
    """The program's sites that are open to the public, in a stable order."""
    found = [ps for ps in program.program_sites if ps.site.is_active]
    return sorted(found, key=lambda ps: (ps.site.name, ps.uuid))


def location_flat(site: Site) -> dict[str, Any]:
    """A site as a location without its lists (compiled/service_at_location_list)."""
    return clean(
        {
            "id": site.uuid,
            "location_type": "physical",
            "organization_id": organization_id(site.organization_id),
            "name": site.name,
            "transportation": site.transit_notes,
            "latitude": site.latitude,
            "longitude": site.longitude,
        }
    )


def location(site: Site) -> dict[str, Any]:
    """A site as a full location: address, phone, accessibility."""
    doc = location_flat(site)
    doc["addresses"] = [
        {
            "id": hsds_id("address", site.uuid),
            "location_id": site.uuid,
            "address_1": site.address_1,
            "city": site.city,
            "state_province": site.state,
            "postal_code": site.postal_code,
            "country": "US",
            "address_type": "physical",
        }
    ]
    doc["phones"] = _phones(site.phone, "location", site.uuid)
    doc["accessibility"] = (
        [
            {
                "id": hsds_id("accessibility", site.uuid),
                "location_id": site.uuid,
                "description": site.accessibility,
            }
        ]
        if site.accessibility
        else []
    )
    doc["languages"] = []
    doc["schedules"] = []
    doc["contacts"] = []
    doc["attributes"] = []
    return doc


def service_at_location_flat(program_site: ProgramSite) -> dict[str, Any]:
    """A program site as a list item (compiled/service_at_location_list)."""
    return {
        "id": program_site.uuid,
        "service_id": program_site.program.uuid,
        "location_id": program_site.site.uuid,
        "location": location_flat(program_site.site),
        "service": service_flat(program_site.program),
    }


def service_at_location(program_site: ProgramSite, *, with_service: bool) -> dict[str, Any]:
    """A program site in full (compiled/service_at_location), with its schedules."""
    doc = {
        "id": program_site.uuid,
        "service_id": program_site.program.uuid,
        "location_id": program_site.site.uuid,
        "contacts": [],
        "phones": [],
        "schedules": schedules(program_site),
        "location": location(program_site.site),
        "attributes": [],
    }
    if with_service:
        doc["service"] = service(program_site.program, with_locations=False)
    return doc
