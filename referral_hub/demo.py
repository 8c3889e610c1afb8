"""Load the Minneapolis demo data from seed/ through the domain operations (idempotent)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import time
from pathlib import Path

from sqlalchemy import select

from referral_hub import demo_history
from referral_hub.accounts import operations as accounts
from referral_hub.accounts.models import Organization, User
from referral_hub.directory import operations as directory
from referral_hub.directory.models import Program, Site
from referral_hub.extensions import db
from referral_hub.geo.models import Landmark
from referral_hub.transport import demo as transport_demo

SEED_DIR = Path(__file__).resolve().parent.parent / "seed"


@dataclass
class SeedReport:
    created: dict[str, int] = field(default_factory=dict)
    updated: dict[str, int] = field(default_factory=dict)

    def count(self, kind: str, created: bool) -> None:
        bucket = self.created if created else self.updated
        bucket[kind] = bucket.get(kind, 0) + 1


def load_demo(password: str, seed_dir: Path = SEED_DIR) -> SeedReport:
    """Create or update the demo organizations, sites and users; flushes, never commits."""
    data = json.loads((seed_dir / "minneapolis" / "organizations.json").read_text())
    report = SeedReport()
    orgs: dict[str, Organization] = {}
    for item in data["organizations"]:
        org = db.session.scalar(select(Organization).where(Organization.slug == item["slug"]))
        values = {k: item.get(k) for k in ("name", "phone", "website", "description")}
        if org is None:
            org = accounts.create_organization(slug=item["slug"], kind=item["kind"], **values)
            report.count("organizations", True)
        else:
            accounts.update_organization(org, **values)
            report.count("organizations", False)
        orgs[item["slug"]] = org

    for item in data["sites"]:
        site = db.session.scalar(select(Site).where(Site.slug == item["slug"]))
        created = site is None
        if created:
            site = Site(slug=item["slug"])
            db.session.add(site)
        site.organization = orgs[item["organization"]]
        for key in (
            "name",
            "address_1",
            "city",
            "state",
            "postal_code",
            "latitude",
            "longitude",
            "phone",
            "accessibility",
            "transit_notes",
        ):
            setattr(site, key, item.get(key))
        report.count("sites", created)
    db.session.flush()

    for item in data.get("landmarks", []):
        landmark = db.session.scalar(select(Landmark).where(Landmark.name == item["name"]))
        created = landmark is None
        if created:
            landmark = Landmark(name=item["name"])
            db.session.add(landmark)
        landmark.latitude, landmark.longitude = item["latitude"], item["longitude"]
        landmark.postal_code = item.get("postal_code")
        report.count("landmarks", created)

    programs_file = seed_dir / "minneapolis" / "programs.json"
    if programs_file.exists():
        sites = {s.slug: s for s in db.session.scalars(select(Site))}
        for item in json.loads(programs_file.read_text())["programs"]:
            report.count("programs", load_program(item, orgs, sites))

    for item in data["users"]:
        user = db.session.scalar(select(User).where(User.email == item["email"].lower()))
        if user is None:
            accounts.create_user(
                email=item["email"],
                name=item["name"],
                password=password,
                organization=orgs[item["organization"]],
                role=item["role"],
                locale=item.get("locale"),
            )
            report.count("users", True)
        else:
            # Re-seeding restores the documented demo logins without touching anything else.
            accounts.set_membership(user, orgs[item["organization"]], item["role"])
            report.count("users", False)
    db.session.flush()
    history = demo_history.load_history()
    if history:
        report.count("referrals", True)
        report.created["referrals"] = history
    rides = transport_demo.load_transport_demo(seed_dir / "minneapolis", report.count)
    if rides:
        report.created["rides"] = rides
    return report


DAYS = {"mon": 0, "tue": 1, "wed": 2, "thu": 3, "fri": 4, "sat": 5, "sun": 6}


def parse_days(spec: str) -> list[int]:
    """'mon-fri' -> [0..4], 'sat' -> [5], 'daily' -> [0..6]."""
    if spec == "daily":
        return list(range(7))
    if "-" in spec:
        first, last = (DAYS[part] for part in spec.split("-"))
        return list(range(first, last + 1))
    return [DAYS[spec]]


def load_program(item: dict, orgs: dict[str, Organization], sites: dict[str, Site]) -> bool:
    """Create or refresh one demo program with its sites and hours; True when created."""
    program = db.session.scalar(select(Program).where(Program.slug == item["slug"]))
    fields = {
        key: item.get(key)
        for key in (
            "description",
            "eligibility_description",
            "response_target_hours",
            "accepts_responder_referrals",
            "required_documents",
            "is_free",
            "fee_description",
            "phone",
            "url",
        )
    }
    fields = {k: v for k, v in fields.items() if v is not None}
    created = program is None
    if created:
        program = directory.create_program(
            orgs[item["organization"]],
            name=item["name"],
            slug=item["slug"],
            categories=item["categories"],
            criteria=item.get("criteria"),
            **fields,
        )
    else:
        directory.update_program(
            program, name=item["name"], categories=item["categories"], **fields
        )
        directory.set_criteria(program, item.get("criteria"))
    directory.set_languages(program, [tuple(pair) for pair in item.get("languages", [])])
    directory.set_capacity(program, item.get("capacity_status", "capacity"), item.get("open_slots"))
    directory.set_service_areas(program, item.get("service_areas", []))
    for offer in item["sites"]:
        weekly = [
            (day, time.fromisoformat(opens), time.fromisoformat(closes))
            for days, opens, closes in offer.get("hours", [])
            for day in parse_days(days)
        ]
        directory.offer_at(
            program, sites[offer["site"]], open_24_7=offer.get("open_24_7", False), weekly=weekly
        )
    return created


def demo_users(seed_dir: Path = SEED_DIR) -> list[dict]:
    """The demo logins, for the README and the `make run` banner."""
    data = json.loads((seed_dir / "minneapolis" / "organizations.json").read_text())
    return data["users"]
