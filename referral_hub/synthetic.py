"""A large synthetic directory for benchmarks: `flask seed synthetic --programs N --sites M`.

Sites spread over Minnesota, denser in the Twin Cities (as real directories are); each
program runs at one to four sites of its organization with realistic criteria and hours.
Rows are written with bulk Core inserts in batches; the same --seed gives the same data.
"""

from __future__ import annotations

import math
import random
import uuid
from datetime import time, timedelta

from sqlalchemy import func, insert, select

from referral_hub.accounts.models import Membership, Organization, OrgKind, Role
from referral_hub.core.db import utcnow
from referral_hub.directory import operations as directory
from referral_hub.directory.models import (
    Program,
    ProgramLanguage,
    ProgramSite,
    Site,
    WeeklyHours,
    program_categories,
)
from referral_hub.extensions import db
from referral_hub.insights import tallies
from referral_hub.referrals.models import Client, Referral, ReferralEvent

PREFIX = "syn-"
DOWNTOWN = (44.9778, -93.2650)
STATE_BOX = (43.6, -96.8, 48.9, -90.0)  # lat/lon bounds of most of Minnesota
METRO_SHARE = 0.3
BATCH = 5000
CATEGORIES = [
    "housing",
    "employment",
    "diversion",
    "victim_services",
    "behavioral_health",
    "food",
    "legal",
]
CRITERIA = [
    None,
    {">=": [{"var": "age"}, 18]},
    {"and": [{">=": [{"var": "age"}, 18]}, {"<=": [{"var": "age"}, 24]}]},
    {"var": "unsheltered"},
    {"var": "veteran"},
    {"==": [{"var": "household"}, "with_children"]},
    {"in": [{"var": "justice_status"}, ["arrested_not_charged", "charged_misdemeanor"]]},
    {"and": [{">=": [{"var": "age"}, 18]}, {"!": {"==": [{"var": "crime_type"}, "none"]}}]},
    {"or": [{"var": "mental_health_crisis"}, {"var": "unsheltered"}]},
]
LANGUAGES = ["es", "so", "hmn", "om", "vi"]
HOURS = [
    [(d, time(9), time(17)) for d in range(5)],
    [(d, time(8), time(20)) for d in range(6)],
    [(d, time(19), time(7)) for d in range(7)],
    [],  # 24/7
]


class SyntheticExists(Exception):
    """The database already holds a synthetic directory."""


def build(programs: int, sites: int, seed: int = 42) -> dict[str, int]:
    """Insert a synthetic directory; returns counts. Commits in batches (a bulk tool)."""
    if db.session.scalar(
        select(func.count()).select_from(Organization).where(Organization.slug.like(f"{PREFIX}%"))
    ):
        raise SyntheticExists("this database already has a synthetic directory")
    rng = random.Random(seed)  # noqa: S311  (reproducible test data, not secrets)
    now = utcnow()
    category_ids = {code: directory.category(code).id for code in CATEGORIES}
    db.session.commit()

    org_count = max(1, programs // 8)
    db.session.execute(
        insert(Organization),
        [
            {
                "slug": f"{PREFIX}org-{i}",
                "name": f"Synthetic Provider {i}",
                "kind": OrgKind.PROVIDER,
                "is_active": True,
                "created_at": now,
                "updated_at": now,
            }
            for i in range(org_count)
        ],
    )
    org_ids = list(
        db.session.scalars(
            select(Organization.id)
            .where(Organization.slug.like(f"{PREFIX}%"))
            .order_by(Organization.id)
        )
    )

    site_rows = []
    for i in range(sites):
        lat, lon = _place(rng)
        site_rows.append(
            {
                "uuid": _uuid(rng),
                "organization_id": org_ids[i % len(org_ids)],
                "slug": f"{PREFIX}site-{i}",
                "name": f"Synthetic Site {i}",
                "address_1": f"{rng.randint(100, 9999)} Synthetic Ave",
                "city": "Minneapolis",
                "state": "MN",
                "postal_code": "55401",
                "latitude": lat,
                "longitude": lon,
                "is_active": True,
                "created_at": now,
                "updated_at": now,
            }
        )
    _bulk(Site, site_rows)
    sites_by_org: dict[int, list[int]] = {}
    for site_id, org_id in db.session.execute(
        select(Site.id, Site.organization_id).where(Site.slug.like(f"{PREFIX}%"))
    ):
        sites_by_org.setdefault(org_id, []).append(site_id)

    program_rows = []
    for i in range(programs):
        program_rows.append(
            {
                "uuid": _uuid(rng),
                "organization_id": org_ids[i % len(org_ids)],
                "slug": f"{PREFIX}program-{i}",
                "name": f"Synthetic Program {i}",
                "description": "",
                "criteria": rng.choice(CRITERIA),
                "criteria_version": 1,
                "capacity_status": rng.choice(["capacity", "capacity", "waitlist", "no-capacity"]),
                "open_slots": rng.choice([None, 0, 2, 5]),
                "capacity_updated_at": now,
                "response_target_hours": rng.choice([4, 24, 48]),
                "accepts_responder_referrals": True,
                "sensitive": False,
                "required_documents": [],
                "is_free": True,
                "is_active": True,
                "created_at": now,
                "updated_at": now,
            }
        )
    _bulk(Program, program_rows)
    program_ids = list(
        db.session.execute(
            select(Program.id, Program.organization_id)
            .where(Program.slug.like(f"{PREFIX}%"))
            .order_by(Program.id)
        )
    )

    links, languages, offers = [], [], []
    for program_id, org_id in program_ids:
        for code in rng.sample(CATEGORIES, rng.choice([1, 1, 2])):
            links.append({"program_id": program_id, "category_id": category_ids[code]})
        for code in rng.sample(LANGUAGES, rng.randint(0, 2)):
            languages.append(
                {
                    "program_id": program_id,
                    "language": code,
                    "mode": rng.choice(["staff", "interpreter"]),
                }
            )
        own_sites = sites_by_org.get(org_id, [])
        for site_id in rng.sample(own_sites, min(len(own_sites), rng.randint(1, 4))):
            offers.append(
                {
                    "uuid": _uuid(rng),
                    "program_id": program_id,
                    "site_id": site_id,
                    "open_24_7": False,
                    "created_at": now,
                    "updated_at": now,
                }
            )
    _bulk(program_categories, links)
    _bulk(ProgramLanguage, languages)
    _bulk(ProgramSite, offers)

    hours = []
    for (program_site_id,) in db.session.execute(
        select(ProgramSite.id).join(Program).where(Program.slug.like(f"{PREFIX}%"))
    ):
        pattern = rng.choice(HOURS)
        hours.extend(
            {"program_site_id": program_site_id, "weekday": d, "opens_at": o, "closes_at": c}
            for d, o, c in pattern
        )
    _bulk(WeeklyHours, hours)
    # Sites with no weekly hours are the 24/7 ones.
    db.session.execute(
        ProgramSite.__table__.update()
        .where(ProgramSite.id.not_in(select(WeeklyHours.program_site_id)))
        .where(
            ProgramSite.program_id.in_(select(Program.id).where(Program.slug.like(f"{PREFIX}%")))
        )
        .values(open_24_7=True)
    )
    db.session.commit()
    return {
        "organizations": len(org_ids),
        "sites": len(site_rows),
        "programs": len(program_ids),
        "program_sites": len(offers),
        "weekly_hours": len(hours),
        "categories": len(category_ids),
    }


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _place(rng: random.Random) -> tuple[float, float]:
    if rng.random() < METRO_SHARE:
        # Uniform over a 25 km disc around downtown Minneapolis.
        r = 25 * math.sqrt(rng.random())
        theta = rng.random() * 2 * math.pi
        lat = DOWNTOWN[0] + (r * math.cos(theta)) / 111.2
        lon = DOWNTOWN[1] + (r * math.sin(theta)) / (111.2 * math.cos(math.radians(DOWNTOWN[0])))
        return round(lat, 6), round(lon, 6)
    min_lat, min_lon, max_lat, max_lon = STATE_BOX
    return round(rng.uniform(min_lat, max_lat), 6), round(rng.uniform(min_lon, max_lon), 6)


def _bulk(target, rows: list[dict]) -> None:
    for start in range(0, len(rows), BATCH):
        db.session.execute(insert(target), rows[start : start + BATCH])
    db.session.commit()


__all__ = ["SyntheticExists", "build"]


# --- referral history ----------------------------------------------------------------------

STATUS_WEIGHTS = [
    ("completed", 30),
    ("handed_off", 8),
    ("declined", 12),
    ("cancelled", 10),
    ("no_show", 7),
    ("accepted", 10),
    ("sent", 12),
    ("on_hold", 3),
    ("en_route", 2),
    ("arrived", 2),
]


def build_referrals(count: int, *, days: int = 90, seed: int = 7) -> dict[str, int]:
    """Bulk-insert a referral history (with its send events) over the existing directory."""
    rng = random.Random(seed)  # noqa: S311  (reproducible test data, not secrets)
    now = utcnow()
    programs = list(
        db.session.execute(select(Program.id, Program.organization_id).where(Program.is_active))
    )
    teams = list(
        db.session.scalars(
            select(Membership.organization_id).where(Membership.role == Role.RESPONDER).distinct()
        )
    )
    if not programs or not teams:
        raise SyntheticExists("load a directory and responders first (seed demo)")
    clients = [
        {
            "uuid": _uuid(rng),
            "organization_id": rng.choice(teams),
            "display_name": f"Client {i}",
            "name_key": f"client {i}",
            "preferred_language": "en",
            "sms_ok": False,
            "neutral_sender": False,
            "created_at": now,
            "updated_at": now,
        }
        for i in range(max(1, count // 20))
    ]
    _bulk(Client, clients)
    client_ids = list(
        db.session.scalars(
            select(Client.id)
            .where(Client.display_name.like("Client %"))
            .order_by(Client.id.desc())
            .limit(len(clients))
        )
    )
    statuses = [s for s, _ in STATUS_WEIGHTS]
    weights = [w for _, w in STATUS_WEIGHTS]
    rows = []
    for _ in range(count):
        program_id, provider_id = rng.choice(programs)
        sent = now - timedelta(days=rng.uniform(0, days))
        status = rng.choices(statuses, weights)[0]
        terminal = status in ("completed", "declined", "cancelled", "no_show")
        rows.append(
            {
                "uuid": _uuid(rng),
                "client_id": rng.choice(client_ids),
                "program_id": program_id,
                "provider_org_id": provider_id,
                "referring_org_id": rng.choice(teams),
                "status": status,
                "priority": "routine",
                "answers": {},
                "screener_version": 1,
                "sent_at": sent,
                "response_due_at": sent + timedelta(hours=24),
                "accepted_at": sent + timedelta(hours=3)
                if status not in ("sent", "declined")
                else None,
                "closed_at": sent + timedelta(days=2) if terminal else None,
                "holds_slot": False,
                "version": 1,
                "created_at": sent,
                "updated_at": sent,
            }
        )
    _bulk(Referral, rows)
    ids = list(
        db.session.execute(
            select(Referral.id, Referral.created_at).order_by(Referral.id.desc()).limit(count)
        )
    )
    _bulk(
        ReferralEvent,
        [
            {
                "referral_id": rid,
                "action": "send",
                "from_status": "draft",
                "to_status": "sent",
                "actor_label": "synthetic",
                "data": {},
                "created_at": created,
            }
            for rid, created in ids
        ],
    )
    tallies.rebuild(db.session.connection())  # no flush saw these rows
    return {"referrals": count, "clients": len(clients), "events": len(ids)}
