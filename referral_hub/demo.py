"""Load the Minneapolis demo data from seed/ through the domain operations (idempotent)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select

from referral_hub.accounts import operations as accounts
from referral_hub.accounts.models import Organization, User
from referral_hub.directory.models import Site
from referral_hub.extensions import db

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
    return report


def demo_users(seed_dir: Path = SEED_DIR) -> list[dict]:
    """The demo logins, for the README and the `make run` banner."""
    data = json.loads((seed_dir / "minneapolis" / "organizations.json").read_text())
    return data["users"]
