"""HSDS 3.0 files: read JSON documents and CSV data packages into flat tables, and export
the directory as both.

Every input becomes a `Dataset`: one table per HSDS object, the way the CSV data package
lays them out, with nested JSON objects pulled out into their own tables and linked by id.
The importer (hsds_import) then reads one shape only.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select

from referral_hub.accounts.models import Organization
from referral_hub.core.db import utcnow
from referral_hub.directory import hsds, hsds_schemas
from referral_hub.directory.models import Category, Program, Site
from referral_hub.extensions import db

# JSON documents found at the top level of an input, and the file names that hint them.
DOCUMENT_KINDS = ("service", "organization", "service_at_location")
FILE_HINTS = {
    "services": "service",
    "organizations": "organization",
    "service_at_locations": "service_at_location",
}


class InputError(Exception):
    """The input cannot be read at all (missing, not JSON, not a data package)."""


@dataclass
class Dataset:
    """HSDS records as flat tables: kind -> key (the record's id) -> row."""

    rows: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    # Which nested lists a JSON record gave, so what a record leaves out is left unchanged.
    carried: dict[tuple[str, str], set[str]] = field(default_factory=dict)
    # Tables given whole (a CSV package): every record of their parent kinds carries them.
    tables: set[str] = field(default_factory=set)
    unknown: list[str] = field(default_factory=list)
    _index: dict[tuple[str, str], dict[Any, list[dict[str, Any]]]] = field(default_factory=dict)

    def add(self, kind: str, row: dict[str, Any]) -> str:
        """Add a row; a row seen before (same id) only fills in the fields it lacked."""
        table = self.rows.setdefault(kind, {})
        key = row.get("id")
        if not isinstance(key, str):  # No usable id: kept apart, for the importer to report.
            key = f"#{sum(map(len, self.rows.values()))}"
        if key in table:
            table[key].update({k: v for k, v in row.items() if k not in table[key]})
        else:
            table[key] = row
        self._index.clear()
        return key

    def table(self, kind: str) -> list[tuple[str, dict[str, Any]]]:
        """The (key, row) pairs of one kind, in the order they came."""
        return list(self.rows.get(kind, {}).items())

    def get(self, kind: str, key: Any) -> dict[str, Any] | None:
        """The row of a kind with this id, if given."""
        return self.rows.get(kind, {}).get(key) if isinstance(key, str) else None

    def carries(self, kind: str, key: str, name: str) -> bool:
        """Whether a record gave its nested list `name` (possibly empty)."""
        child = hsds_schemas.children(kind).get(name)
        return name in self.carried.get((kind, key), ()) or bool(child and child[0] in self.tables)

    def children(self, kind: str, link: str, parent_id: Any) -> list[dict[str, Any]]:
        """The rows of a kind whose `link` column is `parent_id`."""
        index = self._index.get((kind, link))
        if index is None:
            index = self._index[(kind, link)] = {}
            for row in self.rows.get(kind, {}).values():
                index.setdefault(row.get(link), []).append(row)
        return index.get(parent_id, []) if parent_id is not None else []


# --- nested JSON -> tables -------------------------------------------------------------------


def _links(parent_kind: str, parent_id: Any, child_kind: str) -> dict[str, Any]:
    if not isinstance(parent_id, str):
        return {}
    if child_kind == "attribute":
        return {"link_id": parent_id, "link_entity": parent_kind}
    if child_kind == "metadata":
        return {"resource_id": parent_id, "resource_type": parent_kind}
    column = f"{parent_kind}_id"
    return {column: parent_id} if column in hsds_schemas.scalar_fields(child_kind) else {}


def flatten(dataset: Dataset, kind: str, doc: dict[str, Any], links: dict | None = None) -> str:
    """Add a nested HSDS object and everything inside it to the dataset's tables."""
    nested = hsds_schemas.children(kind)
    columns = hsds_schemas.scalar_fields(kind)
    row: dict[str, Any] = {}
    given: set[str] = set()
    for name, value in doc.items():
        child_kind, many = nested.get(name, (None, False))
        items = value if many else [value]
        if child_kind is None or not isinstance(value, list if many else dict):
            row[name] = value  # plain values, and malformed nesting for validation to report
        elif not all(isinstance(item, dict) for item in items):
            row[name] = value
        else:
            given.add(name)
            for item in items:
                flatten(dataset, child_kind, item, _links(kind, doc.get("id"), child_kind))
                link = f"{child_kind}_id"
                if not many and link in columns and isinstance(item.get("id"), str):
                    row[link] = item["id"]
    row.update(links or {})
    key = dataset.add(kind, row)
    if given:
        dataset.carried.setdefault((kind, key), set()).update(given)
    return key


def document_kind(doc: dict[str, Any], hint: str | None = None) -> str | None:
    """Which HSDS object a top-level JSON document is."""
    if hint:
        return hint
    if {"service", "location", "location_id"} & doc.keys():
        return "service_at_location"
    if {"status", "organization_id", "organization", "service_at_locations"} & doc.keys():
        return "service"
    if {"services", "locations", "website", "description"} & doc.keys():
        return "organization"
    return None


def read_json(path: Path) -> Dataset:
    """A JSON file: one service, organization or service_at_location, a list, or a Page."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise InputError(str(exc)) from exc
    if isinstance(data, dict) and isinstance(data.get("contents"), list):
        data = data["contents"]
    docs = data if isinstance(data, list) else [data]
    if not all(isinstance(doc, dict) for doc in docs):
        raise InputError("expected HSDS objects: an object, a list of objects or a Page")
    dataset = Dataset()
    for n, doc in enumerate(docs, 1):
        kind = document_kind(doc, FILE_HINTS.get(path.stem))
        if kind is None:
            dataset.unknown.append(f"document {n}: not an HSDS {', '.join(DOCUMENT_KINDS)}")
        else:
            flatten(dataset, kind, doc)
    return dataset


# --- CSV data package ------------------------------------------------------------------------


def _typed(text: str, kind: str | None) -> Any:
    # CSV cells are text; numbers and booleans are restored by the column's schema type.
    if kind == "number":
        try:
            return int(text)
        except ValueError:
            try:
                number = float(text)
            except ValueError:
                return text
            return number if math.isfinite(number) else text
    if kind == "boolean" and text.lower() in ("true", "false"):
        return text.lower() == "true"
    return text


def _row(kind: str, cells: dict[str | None, Any]) -> dict[str, Any]:
    # An empty cell is a value left out, except in a required text column (an empty text).
    required = hsds_schemas.required(kind)
    types = hsds_schemas.types(kind)
    return {
        name: _typed(text, types.get(name))
        for name, text in cells.items()
        if name and isinstance(text, str) and (text != "" or name in required)
    }


def read_package(directory: Path) -> Dataset:
    """An HSDS CSV data package: datapackage.json and the CSV files it lists."""
    try:
        package = json.loads((directory / "datapackage.json").read_text(encoding="utf-8"))
        resources = package.get("resources") or []
    except (OSError, UnicodeDecodeError, ValueError, AttributeError) as exc:
        raise InputError(f"datapackage.json: {exc}") from exc
    by_file = {hsds_schemas.csv_path(kind): kind for kind in hsds_schemas.KINDS}
    by_file["service_at_locations.csv"] = "service_at_location"
    root = directory.resolve()
    dataset = Dataset()
    for resource in resources:
        path = (root / str(resource.get("path", ""))).resolve()
        kind = resource.get("name") if resource.get("name") in hsds_schemas.KINDS else None
        kind = kind or by_file.get(path.name)
        # A package names its own files; never read outside its directory.
        if kind is None or not path.is_relative_to(root) or not path.is_file():
            continue
        try:
            with path.open(newline="", encoding="utf-8-sig") as handle:
                for cells in csv.DictReader(handle):
                    dataset.add(kind, _row(kind, cells))
        except (OSError, UnicodeDecodeError, csv.Error) as exc:
            raise InputError(f"{path.name}: {exc}") from exc
        dataset.tables.add(kind)
    if not dataset.tables:
        raise InputError("datapackage.json lists no HSDS tables that are here")
    return dataset


def read(path: Path) -> Dataset:
    """Read a JSON file or a CSV data package directory."""
    if path.is_dir():
        if not (path / "datapackage.json").is_file():
            raise InputError("a directory must hold an HSDS datapackage.json")
        return read_package(path)
    if not path.is_file():
        raise InputError("no such file")
    return read_json(path)


# --- export ----------------------------------------------------------------------------------


def _datapackage(kinds: Iterable[str]) -> dict[str, Any]:
    resources = []
    for kind in sorted(kinds, key=lambda k: hsds_schemas.load(k)["datapackage_metadata"]["order"]):
        schema = hsds_schemas.load(kind)
        required = {*schema.get("required", []), *schema.get("tabular_required", [])}
        fields = []
        for name, spec in hsds_schemas.scalar_fields(kind).items():
            column = {
                "name": name,
                "type": spec.get("datapackage_type") or spec["type"],
                "description": spec.get("description", ""),
                "constraints": {
                    "required": name in required,
                    "unique": spec.get("constraints", {}).get("unique", False),
                },
            }
            if spec.get("format") in ("uuid", "email", "uri") and column["type"] == "string":
                column["format"] = spec["format"]
            fields.append(column)
        resources.append(
            {
                "name": kind,
                "path": hsds_schemas.csv_path(kind),
                "profile": "tabular-data-resource",
                "format": "csv",
                "mediatype": "text/csv",
                "encoding": "utf-8",
                "schema": {"fields": fields, "primaryKey": "id"},
            }
        )
    return {
        "name": "referral-hub-directory",
        "title": "referral_hub service directory (HSDS 3.0)",
        "profile": "tabular-data-package",
        "created": utcnow().isoformat(timespec="seconds"),
        "resources": resources,
    }


def _cell(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def write_package(dataset: Dataset, directory: Path) -> None:
    """Write the dataset's tables as CSV files with their datapackage.json."""
    kinds = [kind for kind in dataset.rows if kind in hsds_schemas.KINDS and dataset.rows[kind]]
    for kind in kinds:
        columns = list(hsds_schemas.scalar_fields(kind))
        with (directory / hsds_schemas.csv_path(kind)).open("w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(columns)
            for _key, row in dataset.table(kind):
                writer.writerow([_cell(row.get(column)) for column in columns])
    _write_json(directory / "datapackage.json", _datapackage(kinds))


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def export_directory(directory: Path) -> dict[str, int]:
    """Write every program (active or not) as HSDS JSON files and as a CSV data package."""
    directory.mkdir(parents=True, exist_ok=True)
    programs = db.session.scalars(
        select(Program).options(*hsds.SERVICE_TREE).order_by(Program.name, Program.id)
    ).all()
    services = [hsds.service(program) for program in programs]
    # Sites may belong to another organization than the program: export those owners too.
    org_ids = {program.organization_id for program in programs} | {
        ps.site.organization_id for p in programs for ps in hsds.active_program_sites(p)
    }
    sites: dict[int, list[Site]] = {}
    for site in db.session.scalars(
        select(Site).where(Site.organization_id.in_(org_ids), Site.is_active.is_(True))
    ):
        sites.setdefault(site.organization_id, []).append(site)
    organizations = [
        hsds.organization(
            org,
            sorted(sites.get(org.id, []), key=lambda site: site.name),
            [
                hsds.service_flat(p, with_organization=False)
                for p in programs
                if p.organization_id == org.id
            ],
        )
        for org in db.session.scalars(
            select(Organization).where(Organization.id.in_(org_ids)).order_by(Organization.name)
        )
    ]
    service_at_locations = [
        hsds.service_at_location(ps, with_service=True)
        for program in programs
        for ps in hsds.active_program_sites(program)
    ]
    categories = db.session.scalars(select(Category).order_by(Category.code))
    terms = [hsds.term(code) for code in hsds.TERMS] + [hsds.category_term(c) for c in categories]
    files = {
        "services": services,
        "organizations": organizations,
        "service_at_locations": service_at_locations,
        "taxonomies": list(hsds.TAXONOMIES.values()),
        "taxonomy_terms": terms,
    }
    for name, docs in files.items():
        _write_json(directory / f"{name}.json", docs)
    dataset = Dataset()
    for kind, docs in (
        ("service", services),
        ("organization", organizations),
        ("taxonomy_term", terms),
    ):
        for doc in docs:
            flatten(dataset, kind, doc)
    write_package(dataset, directory)
    return {name: len(docs) for name, docs in files.items()}
