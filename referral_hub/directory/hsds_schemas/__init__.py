"""The vendored HSDS 3.0 JSON Schemas: loading, `$ref` resolution and record validation.

The files beside this module are the official schemas (see README.md); this module only
reads them. The import validates each incoming record against them, the CSV export takes
its columns and `datapackage.json` from them, and the tests validate every API response.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

HERE = Path(__file__).parent
# Where the specification publishes these files; openapi.json refers to them by this URL.
BASE_URI = "https://raw.githubusercontent.com/openreferral/specification/3.0/schema/"
KINDS = tuple(sorted(p.stem for p in HERE.glob("*.json") if p.stem != "openapi"))
# The compiled detail shapes add these links to the per-object schemas (see README.md).
COMPILED_LINKS = {
    ("organization", "services"): ("service", True),
    ("service_at_location", "service"): ("service", False),
}

Transform = Callable[[dict[str, Any]], dict[str, Any]]


@cache
def _read(name: str) -> dict[str, Any]:
    return json.loads((HERE / f"{name}.json").read_text(encoding="utf-8"))


def load(name: str) -> dict[str, Any]:
    """A fresh copy of a vendored schema: "service", "compiled/service_list", "openapi"."""
    return copy.deepcopy(_read(name))


def registry(transform: Transform | None = None) -> Registry:
    """Every vendored schema under its published URL, optionally transformed first."""
    names = [*KINDS, *(f"compiled/{p.stem}" for p in (HERE / "compiled").glob("*.json"))]
    resources = []
    for name in names:
        contents = load(name)
        if transform:
            contents = transform(contents)
        resources.append(
            (
                f"{BASE_URI}{name}.json",
                Resource.from_contents(contents, default_specification=DRAFT202012),
            )
        )
    return Registry().with_resources(resources)


def detail_schema(kind: str) -> dict[str, Any]:
    """The compiled detail shape of a service, organization or service_at_location."""
    schema = load(kind)
    if kind == "organization":
        schema["properties"]["services"] = {"type": "array", "items": {"$ref": "service.json"}}
    elif kind == "service_at_location":
        service = load("service")
        del service["properties"]["service_at_locations"]
        schema["properties"]["service"] = service
    # An $id beside the other files, so their relative $refs resolve.
    schema["$id"] = f"{BASE_URI}{kind}.compiled.json"
    return schema


def children(kind: str) -> dict[str, tuple[str, bool]]:
    """The nested objects of a kind: property -> (kind of the child, whether it is a list)."""
    found: dict[str, tuple[str, bool]] = {}
    for name, spec in _read(kind)["properties"].items():
        if "$ref" in spec:
            found[name] = (spec["$ref"].removesuffix(".json"), False)
        elif spec.get("type") == "array" and "$ref" in spec.get("items", {}):
            found[name] = (spec["items"]["$ref"].removesuffix(".json"), True)
    for (owner, name), link in COMPILED_LINKS.items():
        if owner == kind:
            found[name] = link
    return found


def scalar_fields(kind: str) -> dict[str, dict[str, Any]]:
    """The properties of a kind that are plain values: the columns of its CSV table."""
    return {
        name: spec
        for name, spec in _read(kind)["properties"].items()
        if "$ref" not in spec and spec.get("type") not in ("array", "object")
    }


@cache
def types(kind: str) -> dict[str, str | None]:
    """The JSON type of each plain property of a kind, to read CSV cells back."""
    return {name: spec.get("type") for name, spec in scalar_fields(kind).items()}


@cache
def required(kind: str) -> frozenset[str]:
    """The properties a record of this kind must have."""
    return frozenset(_read(kind).get("required", []))


def csv_path(kind: str) -> str:
    """The file name of a kind's table in the HSDS CSV data package."""
    return _read(kind)["path"]


@cache
def _validator(kind: str) -> Draft202012Validator:
    schema = load(kind)
    schema["$id"] = f"{BASE_URI}{kind}.json"
    return Draft202012Validator(
        schema, registry=registry(), format_checker=Draft202012Validator.FORMAT_CHECKER
    )


def errors(kind: str, record: dict[str, Any]) -> list[str]:
    """What is wrong with one record by the official schema, one message per fault."""
    found = []
    for error in sorted(
        _validator(kind).iter_errors(record), key=lambda e: [str(p) for p in e.path]
    ):
        where = ".".join(str(part) for part in error.absolute_path)
        found.append(f"{where}: {error.message}" if where else error.message)
    return found
