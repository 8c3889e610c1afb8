"""HSDS import and export through the CLI: round trips, re-imports, skipped records."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, func, select

from referral_hub.accounts.models import Organization
from referral_hub.directory.hsds_schemas import KINDS
from referral_hub.directory.models import (
    Category,
    HoursException,
    Program,
    ProgramLanguage,
    ProgramSite,
    ServiceArea,
    Site,
    WeeklyHours,
)
from referral_hub.extensions import db
from tests.directory.test_hsds_api import DETAIL, assert_valid, build_directory

FIXTURES = Path(__file__).parent / "fixtures"
COUNTED = (
    Organization,
    Site,
    Program,
    ProgramSite,
    ProgramLanguage,
    ServiceArea,
    WeeklyHours,
    HoursException,
    Category,
)


def hsds(app, *args: str):
    return app.test_cli_runner().invoke(args=["hsds", *args])


def row_counts(app) -> dict[str, int]:
    with app.app_context():
        return {m.__name__: db.session.scalar(select(func.count()).select_from(m)) for m in COUNTED}


def services_snapshot(path: Path) -> list[dict[str, Any]]:
    """Exported services, minus what a fresh database cannot keep (org ids, timestamps)."""
    services = json.loads(path.read_text())
    for service in services:
        assert_valid(DETAIL["service"], service)
        service.pop("last_modified")
        org_id = service["organization"].pop("id")
        text = json.dumps(service, sort_keys=True).replace(org_id, "ORG")
        service.clear()
        service.update(json.loads(text))
    return sorted(services, key=lambda s: s["id"])


def wipe(app) -> None:
    """Empty the directory inside the test's transaction (rolled back afterwards)."""
    with app.app_context():
        for model in (Program, Site, Category, Organization):
            db.session.execute(delete(model))
        db.session.commit()
    assert set(row_counts(app).values()) == {0}


@pytest.fixture
def exported(app, make_org, tmp_path) -> Path:
    build_directory(app, make_org)
    result = hsds(app, "export", str(tmp_path / "out"))
    assert result.exit_code == 0, result.output
    assert "4 services" in result.output
    return tmp_path / "out"


def test_export_writes_json_and_a_csv_data_package(exported):
    for name in (
        "services",
        "organizations",
        "service_at_locations",
        "taxonomies",
        "taxonomy_terms",
    ):
        assert isinstance(json.loads((exported / f"{name}.json").read_text()), list)
    for organization in json.loads((exported / "organizations.json").read_text()):
        assert_valid(DETAIL["organization"], organization)
    for link in json.loads((exported / "service_at_locations.json").read_text()):
        assert_valid(DETAIL["service_at_location"], link)
    package = json.loads((exported / "datapackage.json").read_text())
    names = {resource["name"] for resource in package["resources"]}
    assert {
        "service",
        "organization",
        "location",
        "service_at_location",
        "schedule",
        "language",
        "attribute",
        "taxonomy_term",
        "service_area",
        "address",
    } <= names
    assert names <= set(KINDS)
    for resource in package["resources"]:
        header = (exported / resource["path"]).read_text().splitlines()[0].split(",")
        assert header == [f["name"] for f in resource["schema"]["fields"]]


@pytest.mark.parametrize("source", ["", "services.json"], ids=["csv", "json"])
def test_round_trip_into_an_empty_directory(app, exported, tmp_path, source):
    before = services_snapshot(exported / "services.json")
    counts = row_counts(app)
    wipe(app)
    result = hsds(app, "import", str(exported / source))
    assert result.exit_code == 0, result.output
    assert "organization: 1 created, 0 updated" in result.output
    assert "location: 2 created" in result.output
    assert "service: 4 created" in result.output
    assert "service_at_location: 3 created" in result.output
    assert "skipped" not in result.output
    hsds(app, "export", str(tmp_path / "again"))
    assert services_snapshot(tmp_path / "again" / "services.json") == before
    # The inactive site was not exported, so its program site is gone; the rest is back.
    assert row_counts(app) == counts | {"Site": 2, "ProgramSite": 3}
    with app.app_context():
        retired = db.session.scalar(select(Program).where(Program.name == "Retired Pantry"))
        advocacy = db.session.scalar(select(Program).where(Program.name == "Victim Advocacy"))
        assert retired.is_active is False and advocacy.sensitive is True
        org = db.session.scalar(select(Organization))
        assert org.kind == "provider" and org.website == "https://northside.example.org"


@pytest.mark.parametrize(
    "source", ["", "services.json", "organizations.json", "service_at_locations.json"]
)
def test_importing_again_updates_and_never_duplicates(app, exported, tmp_path, source):
    before = services_snapshot(exported / "services.json")
    counts = row_counts(app)
    for _ in range(2):
        result = hsds(app, "import", str(exported / source))
        assert result.exit_code == 0, result.output
        assert " 0 created" in result.output and "skipped" not in result.output
    assert row_counts(app) == counts
    hsds(app, "export", str(tmp_path / "again"))
    assert services_snapshot(tmp_path / "again" / "services.json") == before


def test_a_page_of_flat_services_changes_only_what_it_carries(app, client, exported, tmp_path):
    page = tmp_path / "page.json"
    page.write_text(client.get("/hsds/services").get_data(as_text=True))
    result = hsds(app, "import", str(page))
    assert result.exit_code == 0, result.output
    assert "service: 0 created, 3 updated" in result.output
    hsds(app, "export", str(tmp_path / "again"))
    after = services_snapshot(tmp_path / "again" / "services.json")
    assert after == services_snapshot(exported / "services.json")


def test_malformed_records_are_skipped_whole_and_reported(app):
    counts = row_counts(app)
    result = hsds(app, "import", str(FIXTURES / "hsds_mixed.json"))
    assert result.exit_code == 0, result.output
    out = result.output
    assert "organization: 1 created" in out and "service: 1 created" in out
    assert "location: 1 created" in out and "service_at_location: 1 created" in out
    assert "skipped location 10c00000-0000-4000-8000-000000000002: latitude and longitude" in out
    assert (
        "skipped service_at_location 5a700000-0000-4000-8000-000000000002: its location "
        "10c00000-0000-4000-8000-000000000002 was skipped"
    ) in out
    assert "skipped service 5a1c0000-0000-4000-8000-000000000002: 'name' is a required" in out
    assert "minimum_age: 'eighteen' is not of type 'number'" in out
    assert "languages: 'en' is not of type 'array'" in out
    assert "skipped service 5a1c0000-0000-4000-8000-000000000004: criteria:" in out
    assert "shoe_size" in out
    assert "skipped document -: document 5: not an HSDS" in out
    assert "warning: schedule 5c000000-0000-4000-8000-000000000002" in out
    with app.app_context():
        good = db.session.scalar(select(Program).where(Program.name == "Good Food Shelf"))
        assert good.criteria == {
            "and": [{">=": [{"var": "age"}, 16]}, {"in": ["food", {"var": "needs"}]}]
        }
        assert [(lang.language, lang.mode) for lang in good.languages] == [("so", "staff")]
        (site,) = good.program_sites
        assert [(h.weekday, h.opens_at.hour, h.closes_at.hour) for h in site.weekly_hours] == [
            (1, 10, 14),
            (3, 10, 14),
        ]
        # Nothing of the skipped services was written: no row, no category, no area.
        assert db.session.scalar(select(Category).where(Category.code == "shoes")) is None
    assert row_counts(app) == counts | {
        "Organization": counts["Organization"] + 1,
        "Site": 1,
        "Program": 1,
        "ProgramSite": 1,
        "ProgramLanguage": 1,
        "WeeklyHours": 2,
        "Category": counts["Category"] + 1,
    }


def test_a_foreign_csv_data_package(app):
    result = hsds(app, "import", str(FIXTURES / "hsds_csv"))
    assert result.exit_code == 0, result.output
    assert "service: 2 created" in result.output and "category: 1 created" in result.output
    assert "skipped location c5200000-0000-4000-8000-000000000002" in result.output
    with app.app_context():
        hotline = db.session.scalar(select(Program).where(Program.name == "Tenant Hotline"))
        clinic = db.session.scalar(select(Program).where(Program.name == "Expungement Clinic"))
        assert hotline.criteria == {">=": [{"var": "age"}, 18]}
        assert {lang.language for lang in hotline.languages} == {"en", "es"}
        assert hotline.phone == "+1 612 555 0199" and hotline.is_free
        assert hotline.service_areas[0].postal_codes == ["55401", "55402", "55403"]
        assert clinic.fee_description == "$25 filing fee, waivable" and not clinic.is_free
        assert clinic.capacity_status == "waitlist"
        assert clinic.service_areas[0].radius_km == 10
        (at_office,) = clinic.program_sites
        assert at_office.site.transit_notes.startswith("Light rail")
        assert [(e.on_date.isoformat(), e.closed, e.reason) for e in at_office.exceptions] == [
            ("2026-07-01", True, "Staff training")
        ]
        assert [c.code for c in clinic.categories] == ["legal"]


@pytest.mark.parametrize("content", [None, "not json", "42", "[1, 2]"])
def test_unreadable_input_exits_1(app, tmp_path, content):
    path = tmp_path / "input.json"
    if content is not None:
        path.write_text(content)
    result = hsds(app, "import", str(path))
    assert result.exit_code == 1
    assert "Cannot read" in result.output


def test_a_directory_without_datapackage_exits_1(app, tmp_path):
    assert hsds(app, "import", str(tmp_path)).exit_code == 1


def test_input_where_every_record_is_skipped_exits_1(app, tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"id": "x", "name": "No status", "status": 3}))
    result = hsds(app, "import", str(path))
    assert result.exit_code == 1 and "nothing imported" in result.output
