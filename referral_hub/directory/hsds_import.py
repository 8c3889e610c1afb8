"""Import HSDS 3.0 into the directory, one record at a time.

Each organization, location, service and service_at_location is checked against the
official schema and our rules, then written in its own SAVEPOINT: a record that fails is
skipped whole and reported, never half-written. Records are matched by HSDS id (kept as our
uuid; organizations, which have none, by exact name or derived id), so importing again
updates instead of duplicating. A record changes only what it carries: a service without a
`languages` list keeps its languages. Writes go through directory.operations, so imported
programs obey the same rules as edited ones (a category, valid criteria, opening hours).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from referral_hub.accounts import operations as accounts
from referral_hub.accounts.models import Organization, OrgKind
from referral_hub.core.errors import AppError
from referral_hub.directory import hsds, hsds_schemas
from referral_hub.directory import operations as directory
from referral_hub.directory.hsds_io import Dataset
from referral_hub.directory.hsds_values import (
    HsdsValueError,
    age_clauses,
    area_from_hsds,
    code_list,
    fees_from_hsds,
    hours_from_schedules,
    language_codes,
    merge_criteria,
    parse_count,
    parse_criteria,
    site_address,
)
from referral_hub.directory.models import (
    CapacityStatus,
    Category,
    HoursException,
    LanguageMode,
    Program,
    ProgramSite,
    Site,
)
from referral_hub.extensions import db

KIND_ORDER = ("organization", "location", "service", "service_at_location", "category")
MODELS = {"location": Site, "service": Program}
SERVICE_LISTS = {
    "languages": "language",
    "service_areas": "service_area",
    "phones": "phone",
    "cost_options": "cost_option",
    "required_documents": "required_document",
}


class Skip(Exception):
    """A record that cannot be imported; the message says why."""


@dataclass
class Report:
    """What an import did: counts per kind, and each skipped record with the reason."""

    created: Counter[str] = field(default_factory=Counter)
    updated: Counter[str] = field(default_factory=Counter)
    skipped: list[tuple[str, str, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def imported(self) -> int:
        """How many records were created or updated."""
        return sum(self.created.values()) + sum(self.updated.values())

    def lines(self) -> list[str]:
        """The report as printable lines."""
        kinds = [k for k in KIND_ORDER if self.created[k] or self.updated[k]]
        out = [f"{k}: {self.created[k]} created, {self.updated[k]} updated" for k in kinds]
        out = out or ["nothing imported"]
        out += [f"skipped {kind} {rid}: {reason}" for kind, rid, reason in self.skipped]
        return out + [f"warning: {text}" for text in self.warnings]


def _reason(exc: Exception) -> str:
    if isinstance(exc, AppError) and exc.fields:
        return "; ".join(f"{name}: {' '.join(map(str, m))}" for name, m in exc.fields.items())
    if isinstance(exc, SQLAlchemyError):
        return f"the database refused it: {str(getattr(exc, 'orig', exc)).splitlines()[0]}"
    return str(exc)


def _check(kind: str, rows: list[dict[str, Any]], *, nested: bool = True) -> None:
    """Skip the record if it, or one of the nested rows it carries, breaks the HSDS schema."""
    for row in rows:
        problems = hsds_schemas.errors(kind, row)
        if problems:
            where = f"{kind} {row.get('id', '?')}: " if nested else ""
            raise Skip(where + "; ".join(problems[:3]))


def _fit(model: type, values: dict[str, Any]) -> None:
    # Our columns are shorter than HSDS text; PostgreSQL would refuse, SQLite would not.
    for name, value in values.items():
        length = getattr(model.__table__.c[name].type, "length", None)
        if length and isinstance(value, str) and len(value) > length:
            raise Skip(f"{name} is longer than {length} characters")


def _given(row: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    return {ours: row[theirs] for ours, theirs in names.items() if theirs in row}


class Importer:
    """Writes a dataset into the directory, kind by kind, one savepoint per record."""

    def __init__(self, dataset: Dataset):
        self.data = dataset
        self.report = Report()
        self.done: dict[str, dict[str, int]] = {kind: {} for kind in KIND_ORDER}
        self.failed: dict[str, set[str]] = {kind: set() for kind in KIND_ORDER}
        self._org_pks: dict[str, int] | None = None
        self._notes: list[str] = []
        self._counts: Counter[str] = Counter()
        # A location may name no organization: it is then the one of a service offered there.
        self.location_owner: dict[str, Any] = {}
        for _key, link in dataset.table("service_at_location"):
            service = dataset.get("service", link.get("service_id"))
            if service and isinstance(link.get("location_id"), str):
                self.location_owner.setdefault(link["location_id"], service.get("organization_id"))

    def run(self) -> Report:
        """Import every record; the caller commits."""
        writers: dict[str, Callable[[str, dict[str, Any]], tuple[bool, int]]] = {
            "organization": self._organization,
            "location": self._location,
            "service": self._service,
            "service_at_location": self._service_at_location,
        }
        for kind, write in writers.items():
            for key, row in self.data.table(kind):
                self._record(kind, key, row, write)
        self.report.skipped += [("document", "-", text) for text in self.data.unknown]
        return self.report

    def _record(self, kind: str, key: str, row: dict, write: Callable) -> None:
        self._notes, self._counts = [], Counter()
        try:
            with db.session.begin_nested():
                created, pk = write(key, row)
        except (Skip, AppError, HsdsValueError, SQLAlchemyError) as exc:
            rid = "(no id)" if key.startswith("#") else key
            self.report.skipped.append((kind, rid, _reason(exc)))
            self.failed[kind].add(key)
            return
        (self.report.created if created else self.report.updated)[kind] += 1
        self.report.created.update(self._counts)
        self.report.warnings += self._notes
        self.done[kind][key] = pk

    def _resolve(self, kind: str, ref: Any) -> int:
        if not isinstance(ref, str):
            raise Skip(f"it names no {kind}")
        if ref in self.done[kind]:
            return self.done[kind][ref]
        if ref in self.failed[kind]:
            raise Skip(f"its {kind} {ref} was skipped")
        if kind == "organization":
            if self._org_pks is None:
                ids = db.session.scalars(select(Organization.id))
                self._org_pks = {hsds.organization_id(pk): pk for pk in ids}
            pk = self._org_pks.get(ref)
        else:
            pk = db.session.scalar(select(MODELS[kind].id).where(MODELS[kind].uuid == ref))
        if pk is None:
            raise Skip(f"unknown {kind} {ref}")
        return pk

    # --- organizations and locations ---------------------------------------------------------

    def _organization(self, key: str, row: dict[str, Any]) -> tuple[bool, int]:
        _check("organization", [row], nested=False)
        values = _given(row, {"name": "name", "description": "description", "website": "website"})
        if self.data.carries("organization", key, "phones"):
            phones = self.data.children("phone", "organization_id", key)
            _check("phone", phones)
            values["phone"] = next((p["number"] for p in phones), None)
        _fit(Organization, values)
        org = db.session.scalar(select(Organization).where(Organization.name == row["name"]))
        if org is None:
            try:
                org = db.session.get(Organization, self._resolve("organization", key))
            except Skip:
                slug = directory.slugify(row["name"])[:70].strip("-") or "organization"
                slug = directory.unique_slug(Organization, slug)
                org = accounts.create_organization(slug=slug, kind=OrgKind.PROVIDER, **values)
                return True, org.id
        accounts.update_organization(org, **values)
        return False, org.id

    def _location(self, key: str, row: dict[str, Any]) -> tuple[bool, int]:
        _check("location", [row], nested=False)
        lists = {n: self.data.children(n, "location_id", key) for n in ("address", "phone")}
        lists["accessibility"] = self.data.children("accessibility", "location_id", key)
        for kind, rows in lists.items():
            _check(kind, rows)
        site = db.session.scalar(select(Site).where(Site.uuid == key))
        lat, lon = row.get("latitude"), row.get("longitude")
        if lat is None or lon is None:
            raise Skip("latitude and longitude are required")
        if not (-90 <= lat <= 90 and -180 <= lon <= 180):
            raise Skip("latitude or longitude is out of range")
        values = {"latitude": lat, "longitude": lon}
        values |= _given(row, {"name": "name", "transit_notes": "transportation"})
        addresses = lists["address"]
        if self.data.carries("location", key, "addresses") and addresses:
            values |= site_address(addresses)
        elif site is None:
            raise Skip("an address is required")
        if self.data.carries("location", key, "phones"):
            values["phone"] = next((p["number"] for p in lists["phone"]), None)
        if self.data.carries("location", key, "accessibility"):
            texts = [a.get("description") or a.get("details") for a in lists["accessibility"]]
            values["accessibility"] = "; ".join(t for t in texts if t) or None
        _fit(Site, values)
        if site is not None:
            for name, value in values.items():
                setattr(site, name, value)
            db.session.flush()
            return False, site.id
        owner = self._resolve(
            "organization", row.get("organization_id") or self.location_owner.get(key)
        )
        name = values.pop("name", None) or values["address_1"]
        site = directory.create_site(db.session.get(Organization, owner), name=name, **values)
        site.uuid = key
        db.session.flush()
        return True, site.id

    # --- services ----------------------------------------------------------------------------

    def _attributes(self, key: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """The referral_hub facts a service carries, and its other terms (categories)."""
        rows = [
            a
            for a in self.data.children("attribute", "link_id", key)
            if a.get("link_entity") in (None, "service")
        ]
        _check("attribute", rows)
        facts: dict[str, Any] = {}
        terms = []
        for attribute in rows:
            term_id = attribute.get("taxonomy_term_id")
            found = self.data.get("taxonomy_term", term_id)
            code = hsds.referral_hub_code(term_id, found)
            if code:
                facts[code] = attribute.get("value")
            elif found:
                _check("taxonomy_term", [found])
                terms.append(found)
            else:
                self._notes.append(f"attribute {attribute.get('id')}: its term is not given")
        return facts, terms

    def _category(self, term: dict[str, Any]) -> str:
        found = db.session.scalar(select(Category).where(Category.uuid == term["id"]))
        code = (term.get("code") or directory.slugify(term["name"])).strip()
        found = found or db.session.scalar(select(Category).where(Category.code == code))
        if found is None:
            _fit(Category, {"code": code, "name": term["name"], "description": term["description"]})
            found = directory.category(code, term["name"])
            found.uuid, found.description = term["id"], term["description"] or None
            self._counts["category"] += 1
        return found.code

    def _service(self, key: str, row: dict[str, Any]) -> tuple[bool, int]:
        _check("service", [row], nested=False)
        lists = {n: self.data.children(k, "service_id", key) for n, k in SERVICE_LISTS.items()}
        for name, rows in lists.items():
            _check(SERVICE_LISTS[name], rows)
        carried = {
            n for n in [*SERVICE_LISTS, "attributes"] if self.data.carries("service", key, n)
        }
        org = db.session.get(
            Organization, self._resolve("organization", row.get("organization_id"))
        )
        facts, terms = self._attributes(key)
        program = db.session.scalar(select(Program).where(Program.uuid == key))
        fields = _given(
            row, {n: n for n in ("name", "description", "eligibility_description", "url", "email")}
        )
        if "status" in row:
            fields["is_active"] = row["status"] == "active"
        if "phones" in carried:
            fields["phone"] = next((p["number"] for p in lists["phones"]), None)
        if "required_documents" in carried:
            docs = [d["document"] for d in lists["required_documents"] if d.get("document")]
            fields["required_documents"] = docs
        if "cost_options" in carried or "fees_description" in row:
            costs = lists["cost_options"]
            fields["is_free"], fields["fee_description"] = fees_from_hsds(
                row.get("fees_description"), costs
            )
        _fit(Program, fields)
        codes = [self._category(term) for term in terms]
        clauses = age_clauses(row.get("minimum_age"), row.get("maximum_age"))
        # The rule travels as an attribute; HSDS's age fields add to it (or make it, if new).
        criteria, replace_criteria = None, "attributes" in carried or program is None
        if "attributes" in carried:
            text = facts.get("eligibility-criteria")
            criteria = None if text is None else parse_criteria(text)
        criteria = merge_criteria(criteria, clauses) if replace_criteria else None
        created = program is None
        if program is None:
            name = fields.pop("name")
            program = directory.create_program(
                org, name=name, categories=codes, criteria=criteria, **fields
            )
            program.uuid = key
        else:
            program.organization = org
            directory.update_program(program, **fields, **({"categories": codes} if codes else {}))
            if replace_criteria:
                directory.set_criteria(program, criteria)
        self._service_facts(program, facts, "attributes" in carried)
        self._service_lists(program, lists, carried, facts)
        db.session.flush()
        return created, program.id

    def _service_facts(self, program: Program, facts: dict[str, Any], carried: bool) -> None:
        if facts.get("criteria-version") is not None:
            program.criteria_version = parse_count(facts["criteria-version"], "criteria-version")
        if not carried:
            return
        status = facts.get("capacity-status") or program.capacity_status
        if status not in set(CapacityStatus):
            raise Skip(f"capacity-status {status!r} is not one of {', '.join(CapacityStatus)}")
        slots = facts.get("open-slots")
        slots = None if slots is None else parse_count(slots, "open-slots")
        if (status, slots) != (program.capacity_status, program.open_slots):
            directory.set_capacity(program, status, slots)

    def _service_lists(self, program: Program, lists: dict, carried: set, facts: dict) -> None:
        existing = {lang.language: lang.mode for lang in program.languages}
        staff = [c for c, mode in existing.items() if mode == LanguageMode.STAFF]
        interpreted = [c for c, mode in existing.items() if mode == LanguageMode.INTERPRETER]
        if "languages" in carried:
            staff, left_out = language_codes(lists["languages"])
            self._notes += left_out
        if "attributes" in carried:
            interpreted = code_list(facts.get("interpreter-languages"))
        # A language the staff speak needs no interpreter.
        wanted = dict.fromkeys(interpreted, LanguageMode.INTERPRETER)
        wanted |= dict.fromkeys(staff, LanguageMode.STAFF)
        if wanted != existing:
            directory.set_languages(program, list(wanted.items()))
        if "service_areas" in carried:
            readable = []
            for row in lists["service_areas"]:
                area = area_from_hsds(row)
                if area is None:
                    self._notes.append(f"service area {row.get('id')}: unreadable, left out")
                else:
                    readable.append((row["id"], area))
            directory.set_service_areas(program, [area for _id, area in readable])
            for area, (area_id, _area) in zip(program.service_areas, readable, strict=True):
                area.uuid = area_id

    # --- services at locations ---------------------------------------------------------------

    def _service_at_location(self, key: str, row: dict[str, Any]) -> tuple[bool, int]:
        _check("service_at_location", [row], nested=False)
        schedules = self.data.children("schedule", "service_at_location_id", key)
        given = self.data.carries("service_at_location", key, "schedules") or bool(schedules)
        if not schedules:  # Schedules of the service apply at each of its locations.
            for_service = self.data.children("schedule", "service_id", row.get("service_id"))
            schedules = [
                s
                for s in for_service
                if not s.get("location_id") and not s.get("service_at_location_id")
            ]
            given = given or bool(schedules)
        _check("schedule", schedules)
        program = db.session.get(Program, self._resolve("service", row.get("service_id")))
        site = db.session.get(Site, self._resolve("location", row.get("location_id")))
        found = db.session.scalar(select(ProgramSite).where(ProgramSite.uuid == key))
        found = found or db.session.scalar(
            select(ProgramSite).where(ProgramSite.program == program, ProgramSite.site == site)
        )
        hours = hours_from_schedules(schedules)
        self._notes += hours.warnings
        created = found is None
        if found is None:
            found = directory.offer_at(
                program, site, open_24_7=hours.open_24_7, weekly=hours.weekly
            )
            found.uuid = key
        else:
            found.program, found.site = program, site
            if given:
                directory.set_hours(found, open_24_7=hours.open_24_7, weekly=hours.weekly)
        if given:
            found.exceptions.clear()
            db.session.flush()
            for day in hours.exceptions:
                _fit(HoursException, {"reason": day["reason"]})
                directory.add_exception(found, **day)
        db.session.flush()
        return created, found.id


def import_dataset(dataset: Dataset) -> Report:
    """Import a dataset into the directory (the caller commits)."""
    return Importer(dataset).run()
