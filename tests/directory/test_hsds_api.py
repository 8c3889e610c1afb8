"""The public HSDS 3.0 read API: every answer validates strictly against the official schemas."""

from __future__ import annotations

import json
from datetime import date, time
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from referral_hub.accounts.models import Organization
from referral_hub.directory import hsds
from referral_hub.directory import operations as directory
from referral_hub.directory.hsds_schemas import BASE_URI, detail_schema, load, registry
from referral_hub.extensions import db
from tests.conftest import counting_selects

SHELTER_CRITERIA = {"and": [{">=": [{"var": "age"}, 18]}, {"in": ["housing", {"var": "needs"}]}]}


def strict(schema: Any) -> Any:
    """Set additionalProperties: false on every object schema with properties, as the spec's
    validate_examples script does (compiletojsonschema --set-additional-properties-false...)."""
    if isinstance(schema, dict):
        if "properties" in schema:
            schema["additionalProperties"] = False
        for value in schema.values():
            strict(value)
    elif isinstance(schema, list):
        for value in schema:
            strict(value)
    return schema


STRICT_REGISTRY = registry(transform=strict)


def validator(schema: dict[str, Any]) -> Draft202012Validator:
    return Draft202012Validator(
        strict(schema),
        registry=STRICT_REGISTRY,
        format_checker=Draft202012Validator.FORMAT_CHECKER,
    )


def page_validator(item: dict[str, Any]) -> Draft202012Validator:
    """The Page object of openapi.json with its contents, every key required."""
    page = load("openapi")["components"]["schemas"]["Page"]
    page["properties"]["contents"] = {"type": "array", "items": item}
    page["required"] = sorted(page["properties"])
    return validator(page)


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"{BASE_URI}{name}.json"}


DETAIL = {
    kind: validator(detail_schema(kind))
    for kind in ("service", "organization", "service_at_location")
}
TAXONOMY = validator(ref("taxonomy"))
TERM = validator(ref("taxonomy_term"))
PAGES = {
    "services": page_validator(ref("compiled/service_list")),
    "organizations": page_validator(ref("compiled/organization_list")),
    "service_at_locations": page_validator(ref("compiled/service_at_location_list")),
    "taxonomies": page_validator(ref("taxonomy")),
    "taxonomy_terms": page_validator(ref("taxonomy_term")),
}


def assert_valid(check: Draft202012Validator, doc: Any) -> None:
    problems = [f"{list(e.absolute_path)}: {e.message}" for e in check.iter_errors(doc)]
    assert not problems, "\n".join(problems)


def build_directory(app, make_org) -> dict[str, str]:
    """A directory covering what HSDS must carry; returns HSDS ids by name."""
    org = make_org("provider", name="Northside Housing Collective")
    with app.test_request_context():
        org = db.session.get(Organization, org.id)
        org.phone, org.website = "+1 612 555 0100", "https://northside.example.org"
        shelter = directory.create_site(
            org,
            name="Northside Shelter",
            address_1="1200 W Broadway",
            postal_code="55411",
            latitude=44.9990,
            longitude=-93.2960,
            phone="+1 612 555 0101",
            accessibility="Step-free entrance; accessible restroom",
            transit_notes="Bus 14",
        )
        office = directory.create_site(
            org,
            name="Job Hub",
            address_1="800 Nicollet Mall",
            postal_code="55402",
            latitude=44.9760,
            longitude=-93.2720,
        )
        closed_site = directory.create_site(
            org,
            name="Old Annex",
            address_1="1 Gone St",
            postal_code="55401",
            latitude=44.98,
            longitude=-93.27,
            is_active=False,
        )
        housing = directory.create_program(
            org,
            name="Emergency Shelter",
            categories=["housing"],
            criteria=SHELTER_CRITERIA,
            description="Beds and meals tonight.",
            eligibility_description="Adults 18+.",
            languages=[("en", "staff"), ("so", "staff"), ("hmn", "interpreter")],
            required_documents=["Photo ID", "Proof of income"],
            is_free=False,
            fee_description="$5 a night, waived on request",
            phone="+1 612 555 0102",
            email="intake@northside.example.org",
            url="https://northside.example.org/shelter",
        )
        directory.set_capacity(housing, "waitlist", 3)
        directory.set_service_areas(
            housing,
            [
                {
                    "kind": "radius",
                    "name": "Near North",
                    "center_latitude": 44.999,
                    "center_longitude": -93.296,
                    "radius_km": 5,
                },
                {"kind": "postal_codes", "name": "North ZIPs", "postal_codes": ["55411", "55412"]},
            ],
        )
        at_shelter = directory.offer_at(housing, shelter, open_24_7=True)
        directory.offer_at(housing, closed_site, open_24_7=True)
        jobs = directory.create_program(
            org,
            name="Night Job Readiness",
            categories=["employment"],
            languages=[("en", "staff"), ("es", "staff")],
        )
        directory.set_service_areas(
            jobs,
            [
                {
                    "kind": "polygon",
                    "name": "Downtown",
                    "geometry": {
                        "type": "Polygon",
                        "coordinates": [
                            [[-93.28, 44.97], [-93.26, 44.97], [-93.26, 44.99], [-93.28, 44.97]]
                        ],
                    },
                }
            ],
        )
        at_office = directory.offer_at(
            jobs,
            office,
            weekly=[
                (0, time(9), time(17)),
                (2, time(9), time(17)),
                (4, time(22), time(2)),
            ],
        )
        directory.add_exception(at_office, date(2026, 12, 25), reason="Holiday")
        directory.add_exception(
            at_office,
            date(2026, 12, 24),
            closed=False,
            opens=time(9),
            closes=time(12),
            reason="Short day",
        )
        advocacy = directory.create_program(
            org, name="Victim Advocacy", categories=["victim_services"]
        )
        directory.offer_at(advocacy, office, weekly=[(1, time(10), time(14))])
        retired = directory.create_program(
            org, name="Retired Pantry", categories=["food"], is_active=False
        )
        db.session.commit()
        return {
            "org": hsds.organization_id(org.id),
            "housing": housing.uuid,
            "jobs": jobs.uuid,
            "advocacy": advocacy.uuid,
            "retired": retired.uuid,
            "at_shelter": at_shelter.uuid,
            "at_office": at_office.uuid,
            "housing_cat": housing.categories[0].uuid,
        }


@pytest.fixture
def ids(app, make_org) -> dict[str, str]:
    return build_directory(app, make_org)


def test_root(client):
    body = client.get("/hsds/").get_json()
    assert body["version"].startswith("3.0")


@pytest.mark.parametrize("kind", list(PAGES))
def test_every_list_validates_and_is_paged(client, ids, kind):
    body = client.get(f"/hsds/{kind}?per_page=2").get_json()
    assert_valid(PAGES[kind], body)
    assert body["page_number"] == 1 and body["first_page"] and body["size"] <= 2
    assert body["total_pages"] == -(-body["total_items"] // 2)
    last = client.get(f"/hsds/{kind}?per_page=2&page={body['total_pages']}").get_json()
    assert_valid(PAGES[kind], last)
    assert last["last_page"] and not last["empty"]


def test_services_list_active_programs_only(client, ids):
    body = client.get("/hsds/services").get_json()
    names = [s["name"] for s in body["contents"]]
    assert names == ["Emergency Shelter", "Night Job Readiness", "Victim Advocacy"]
    shelter = body["contents"][0]
    assert shelter["organization"]["id"] == ids["org"] == shelter["organization_id"]
    assert shelter["minimum_age"] == 18 and "maximum_age" not in shelter
    assert shelter["fees_description"] == "$5 a night, waived on request"


def test_service_detail_carries_everything(client, ids):
    doc = client.get(f"/hsds/services/{ids['housing']}").get_json()
    assert_valid(DETAIL["service"], doc)
    attributes = {a["taxonomy_term"]["code"]: a.get("value") for a in doc["attributes"]}
    assert json.loads(attributes["eligibility-criteria"]) == SHELTER_CRITERIA
    assert attributes["criteria-version"] == "1"
    assert attributes["capacity-status"] == "waitlist" and attributes["open-slots"] == "3"
    assert attributes["interpreter-languages"] == "hmn" and attributes["housing"] is None
    assert {lang["code"] for lang in doc["languages"]} == {"en", "so"}
    assert "Hmong" in doc["interpretation_services"]
    assert [d["document"] for d in doc["required_documents"]] == ["Photo ID", "Proof of income"]
    assert doc["cost_options"][0]["amount_description"] == "$5 a night, waived on request"
    areas = {a["name"]: a for a in doc["service_areas"]}
    assert areas["North ZIPs"]["extent"] == "55411, 55412"
    circle = json.loads(areas["Near North"]["extent"])
    assert circle["geometry"]["coordinates"] == [-93.296, 44.999]
    assert circle["properties"]["radius_km"] == 5
    (at_shelter,) = doc["service_at_locations"]  # the inactive site is not shown
    assert at_shelter["location"]["addresses"][0]["postal_code"] == "55411"
    assert at_shelter["location"]["accessibility"][0]["description"].startswith("Step-free")
    assert at_shelter["location"]["phones"][0]["number"] == "+1 612 555 0101"
    (always,) = at_shelter["schedules"]
    assert always["byday"] == "MO,TU,WE,TH,FR,SA,SU" and always["opens_at"] == "00:00"


def test_schedules_weekly_overnight_and_exceptions(client, ids):
    doc = client.get(f"/hsds/service_at_locations/{ids['at_office']}").get_json()
    assert_valid(DETAIL["service_at_location"], doc)
    assert doc["service"]["name"] == "Night Job Readiness"
    by_days = {s.get("valid_from") or s["byday"]: s for s in doc["schedules"]}
    assert by_days["MO,WE"]["opens_at"] == "09:00" and by_days["MO,WE"]["closes_at"] == "17:00"
    overnight = by_days["FR"]
    assert (overnight["opens_at"], overnight["closes_at"]) == ("22:00", "02:00")
    assert "next day" in overnight["description"]
    holiday = by_days["2026-12-25"]
    assert "opens_at" not in holiday and holiday["notes"] == "Holiday"
    assert by_days["2026-12-24"]["closes_at"] == "12:00"


def test_organization_detail(client, ids):
    doc = client.get(f"/hsds/organizations/{ids['org']}").get_json()
    assert_valid(DETAIL["organization"], doc)
    assert [loc["name"] for loc in doc["locations"]] == ["Job Hub", "Northside Shelter"]
    assert {s["name"] for s in doc["services"]} == {
        "Emergency Shelter",
        "Night Job Readiness",
        "Victim Advocacy",
    }
    full = client.get(f"/hsds/organizations/{ids['org']}?full_service=true").get_json()
    assert_valid(DETAIL["organization"], full)
    assert all(s["attributes"] for s in full["services"])


def test_taxonomies_and_terms(client, ids):
    for taxonomy in client.get("/hsds/taxonomies").get_json()["contents"]:
        assert_valid(TAXONOMY, client.get(f"/hsds/taxonomies/{taxonomy['id']}").get_json())
    terms = client.get("/hsds/taxonomy_terms?per_page=200").get_json()["contents"]
    codes = {t["code"] for t in terms}
    assert {"eligibility-criteria", "capacity-status", "open-slots", "housing"} <= codes
    for item in terms:
        assert_valid(TERM, client.get(f"/hsds/taxonomy_terms/{item['id']}").get_json())
    ours = client.get(f"/hsds/taxonomy_terms?taxonomy_id={hsds.TAXONOMY_ID}").get_json()
    assert {t["code"] for t in ours["contents"]} == set(hsds.TERMS)


def test_filters(client, ids):
    def names(url: str) -> list[str]:
        return [s["name"] for s in client.get(url).get_json()["contents"]]

    assert names("/hsds/services?search=shelt") == ["Emergency Shelter"]
    assert names("/hsds/services?search=100%25") == []
    assert names(f"/hsds/services?taxonomy_term_id={ids['housing_cat']}") == ["Emergency Shelter"]
    assert len(names(f"/hsds/services?organization_id={ids['org']}")) == 3
    assert names(f"/hsds/services?organization_id={hsds.hsds_id('x')}") == []
    assert names("/hsds/organizations?search=northside") == ["Northside Housing Collective"]
    sal = client.get(f"/hsds/service_at_locations?taxonomy_term_id={ids['housing_cat']}")
    assert [s["location"]["name"] for s in sal.get_json()["contents"]] == ["Northside Shelter"]


@pytest.mark.parametrize(
    "path",
    ["services", "organizations", "service_at_locations", "taxonomies", "taxonomy_terms"],
)
def test_unknown_ids_are_404_in_the_error_shape(client, ids, path):
    for bad in (hsds.hsds_id("nothing"), "not-a-uuid"):
        response = client.get(f"/hsds/{path}/{bad}")
        assert response.status_code == 404
        assert response.get_json()["error"]["code"] == "not_found"
        assert response.get_json()["error"]["fields"] == {}


def test_inactive_programs_are_not_served(client, ids):
    assert client.get(f"/hsds/services/{ids['retired']}").status_code == 404


@pytest.mark.parametrize(
    "query",
    [
        "page=0",
        "page=x",
        "per_page=0",
        "per_page=1000",
        "modified_after=soon",
        "taxonomy_term_id=nope",
        "postcode=55411",
        "format=ndjson",
    ],
)
def test_bad_parameters_are_400(client, query):
    response = client.get(f"/hsds/services?{query}")
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "bad_request"


def test_sensitive_programs_are_public_services_too(client, ids):
    response = client.get(f"/hsds/services/{ids['advocacy']}")  # no login
    assert response.status_code == 200 and response.get_json()["name"] == "Victim Advocacy"


@pytest.mark.parametrize(
    ("path", "sizes"),
    [
        ("/hsds/services", (1, 10)),
        ("/hsds/organizations", (1, 10)),
        ("/hsds/service_at_locations", (1, 10)),
        # The five referral_hub terms come first: both sizes reach into the categories.
        ("/hsds/taxonomy_terms", (6, 20)),
    ],
)
def test_queries_do_not_grow_with_page_size(app, client, make_org, path, sizes):
    for _ in range(3):
        build_directory_copy(app, make_org)
    counts = []
    for per_page in sizes:
        with count_selects(app) as statements:
            body = client.get(f"{path}?per_page={per_page}").get_json()
        assert body["size"] == min(per_page, body["total_items"])
        counts.append(len(statements))
    assert counts[0] == counts[1]


count_selects = counting_selects


def build_directory_copy(app, make_org) -> None:
    """Another organization with the same shape, so pages hold several of everything."""
    org = make_org("provider")
    with app.test_request_context():
        org = db.session.get(Organization, org.id)
        site = directory.create_site(
            org,
            name=f"Site of {org.name}",
            address_1="1 Main St",
            postal_code="55401",
            latitude=44.98,
            longitude=-93.27,
        )
        for n in range(2):
            program = directory.create_program(
                org,
                name=f"{org.name} program {n}",
                categories=["housing", f"cat-{org.id}"],
                languages=[("en", "staff"), ("so", "interpreter")],
            )
            directory.offer_at(program, site, weekly=[(0, time(9), time(17))])
        db.session.commit()
