"""Directory rules: programs, their criteria, capacity, languages, sites and hours."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import date, time
from typing import Any

from flask_babel import gettext as _
from sqlalchemy import select

from referral_hub.accounts.models import Organization
from referral_hub.core.db import utcnow
from referral_hub.core.errors import ValidationFailed
from referral_hub.directory.models import (
    AreaKind,
    CapacityStatus,
    Category,
    HoursException,
    LanguageMode,
    Program,
    ProgramLanguage,
    ProgramSite,
    ServiceArea,
    Site,
    WeeklyHours,
)
from referral_hub.extensions import db
from referral_hub.geo.service import invalidate_gazetteer
from referral_hub.matching.questions import CATEGORY_OPTIONS
from referral_hub.matching.rules import validate_criteria

SLUG_CLEAN = re.compile(r"[^a-z0-9]+")
SENSITIVE_CATEGORIES = {"victim_services", "diversion"}

PROGRAM_FIELDS = {
    "name",
    "description",
    "eligibility_description",
    "response_target_hours",
    "accepts_responder_referrals",
    "sensitive",
    "required_documents",
    "is_free",
    "fee_description",
    "url",
    "email",
    "phone",
    "is_active",
}


def slugify(text: str) -> str:
    """A URL-safe short name from free text."""
    return SLUG_CLEAN.sub("-", text.lower()).strip("-")[:100] or "item"


def unique_slug(model: type, base: str) -> str:
    """`base`, or `base-2`, `base-3`, ... whichever is free for the model."""
    slug, n = base, 1
    while db.session.scalar(select(model.id).where(model.slug == slug)) is not None:
        n += 1
        slug = f"{base}-{n}"
    return slug


# --- categories ------------------------------------------------------------------------------


def category(code: str, name: str | None = None) -> Category:
    """The category with this code, created on first use."""
    found = db.session.scalar(select(Category).where(Category.code == code))
    if found is None:
        default = dict((o.value, str(o.label)) for o in CATEGORY_OPTIONS).get(code, code)
        found = Category(code=code, name=name or default)
        db.session.add(found)
        db.session.flush()
    return found


# --- programs --------------------------------------------------------------------------------


def create_program(
    organization: Organization,
    *,
    name: str,
    categories: Sequence[str],
    slug: str | None = None,
    criteria: Any = None,
    languages: Iterable[tuple[str, str]] = (),
    **fields: Any,
) -> Program:
    """Create a program; criteria are validated, sensitivity follows the categories."""
    if not (name or "").strip():
        message = _("A name is required.")
        raise ValidationFailed(message, fields={"name": [message]})
    if not categories:
        message = _("Choose at least one category.")
        raise ValidationFailed(message, fields={"categories": [message]})
    validate_criteria(criteria)
    program = Program(
        organization=organization,
        name=name.strip(),
        slug=unique_slug(Program, slug or slugify(f"{organization.slug}-{name}")),
        criteria=criteria,
        criteria_version=1,
        sensitive=bool(SENSITIVE_CATEGORIES & set(categories)),
        capacity_updated_at=utcnow(),
    )
    program.categories = [category(code) for code in categories]
    _apply_fields(program, fields)
    db.session.add(program)
    set_languages(program, languages)
    db.session.flush()
    return program


def update_program(program: Program, **fields: Any) -> Program:
    """Change a program's listing (not criteria or capacity: those have their own rules)."""
    categories = fields.pop("categories", None)
    if categories is not None:
        if not categories:
            message = _("Choose at least one category.")
            raise ValidationFailed(message, fields={"categories": [message]})
        program.categories = [category(code) for code in categories]
    _apply_fields(program, fields)
    db.session.flush()
    return program


def _apply_fields(program: Program, fields: dict[str, Any]) -> None:
    unknown = set(fields) - PROGRAM_FIELDS - {"capacity_status", "open_slots"}
    if unknown:
        raise ValueError(f"unknown program fields: {sorted(unknown)}")
    errors: dict[str, list[str]] = {}
    if "name" in fields and not (fields["name"] or "").strip():
        errors["name"] = [_("A name is required.")]
    hours = fields.get("response_target_hours")
    if hours is not None and not (1 <= int(hours) <= 24 * 30):
        errors["response_target_hours"] = [_("Choose between 1 and 720 hours.")]
    if errors:
        raise ValidationFailed(_("Please correct the marked fields."), fields=errors)
    for key in PROGRAM_FIELDS & set(fields):
        value = fields[key]
        if isinstance(value, str):
            value = value.strip() or (None if key not in {"name", "description"} else "")
        setattr(program, key, value)
    if "capacity_status" in fields or "open_slots" in fields:
        set_capacity(
            program,
            fields.get("capacity_status", program.capacity_status),
            fields.get("open_slots", program.open_slots),
        )


def set_criteria(
    program: Program, rule: Any, *, eligibility_description: str | None = None
) -> Program:
    """Replace the eligibility rule (validated); the version changes, so caches renew."""
    validate_criteria(rule)
    if rule != program.criteria:
        program.criteria = rule
        program.criteria_version = (program.criteria_version or 0) + 1
    if eligibility_description is not None:
        program.eligibility_description = eligibility_description.strip() or None
    db.session.flush()
    return program


def set_capacity(program: Program, status: CapacityStatus | str, open_slots: int | None) -> Program:
    """Record capacity now; open slots only make sense while taking referrals or waitlisting."""
    status = CapacityStatus(status)
    if open_slots is not None and open_slots < 0:
        message = _("Open slots cannot be negative.")
        raise ValidationFailed(message, fields={"open_slots": [message]})
    if status == CapacityStatus.NO_CAPACITY:
        open_slots = 0 if open_slots is not None else None
    program.capacity_status = status
    program.open_slots = open_slots
    program.capacity_updated_at = utcnow()
    db.session.flush()
    return program


def set_languages(program: Program, languages: Iterable[tuple[str, str]]) -> None:
    """Replace the languages a program serves in (code, 'staff' | 'interpreter')."""
    wanted: dict[str, LanguageMode] = {}
    for code, mode in languages:
        code = (code or "").strip().lower()
        if not re.fullmatch(r"[a-z]{2,3}", code):
            message = _("Use a language code such as en, es, so or hmn.")
            raise ValidationFailed(message, fields={"languages": [message]})
        wanted[code] = LanguageMode(mode)
    # Update rows in place: replacing the list would insert before it deletes and trip the
    # (program, language) unique constraint.
    for row in list(program.languages):
        if row.language in wanted:
            row.mode = wanted.pop(row.language)
        else:
            program.languages.remove(row)
    program.languages.extend(ProgramLanguage(language=c, mode=m) for c, m in wanted.items())


def set_service_areas(program: Program, areas: Iterable[dict[str, Any]]) -> None:
    """Replace the service areas: {kind, name, postal_codes | center+radius_km | geometry}."""
    result = []
    for area in areas:
        kind = AreaKind(area["kind"])
        item = ServiceArea(kind=kind, name=area.get("name") or kind.value)
        if kind == AreaKind.POSTAL_CODES:
            codes = [str(c).strip() for c in area.get("postal_codes") or []]
            if not codes or not all(re.fullmatch(r"\d{5}", c) for c in codes):
                message = _("List five-digit ZIP codes.")
                raise ValidationFailed(message, fields={"service_areas": [message]})
            item.postal_codes = codes
        elif kind == AreaKind.RADIUS:
            item.center_latitude = float(area["center_latitude"])
            item.center_longitude = float(area["center_longitude"])
            item.radius_km = float(area["radius_km"])
            if item.radius_km <= 0:
                message = _("The radius must be more than zero.")
                raise ValidationFailed(message, fields={"service_areas": [message]})
        else:
            geometry = area.get("geometry") or {}
            if geometry.get("type") not in ("Polygon", "MultiPolygon"):
                message = _("The area must be a GeoJSON Polygon or MultiPolygon.")
                raise ValidationFailed(message, fields={"service_areas": [message]})
            item.geometry = geometry
        result.append(item)
    program.service_areas = result
    db.session.flush()


# --- sites and hours -------------------------------------------------------------------------


def create_site(
    organization: Organization,
    *,
    name: str,
    address_1: str,
    postal_code: str,
    latitude: float,
    longitude: float,
    city: str = "Minneapolis",
    state: str = "MN",
    slug: str | None = None,
    **fields: Any,
) -> Site:
    """Create a site at a geocoded address."""
    if not -90 <= latitude <= 90 or not -180 <= longitude <= 180:
        message = _("The coordinates are out of range.")
        raise ValidationFailed(message, fields={"latitude": [message]})
    site = Site(
        organization=organization,
        name=name.strip(),
        address_1=address_1.strip(),
        postal_code=postal_code.strip(),
        latitude=latitude,
        longitude=longitude,
        city=city,
        state=state,
        slug=unique_slug(Site, slug or slugify(f"{organization.slug}-{name}")),
        **fields,
    )
    db.session.add(site)
    db.session.flush()
    invalidate_gazetteer()  # the offline geocoder knows sites by name and address
    return site


def offer_at(
    program: Program,
    site: Site,
    *,
    open_24_7: bool = False,
    weekly: Iterable[tuple[int, time, time]] = (),
) -> ProgramSite:
    """Offer a program at a site with its weekly hours (in the city's time zone)."""
    program_site = (
        db.session.scalar(
            select(ProgramSite).where(
                ProgramSite.program_id == program.id, ProgramSite.site_id == site.id
            )
        )
        if program.id and site.id
        else None
    )
    if program_site is None:
        program_site = ProgramSite(program=program, site=site)
        db.session.add(program_site)
    set_hours(program_site, open_24_7=open_24_7, weekly=weekly)
    return program_site


def set_hours(
    program_site: ProgramSite, *, open_24_7: bool, weekly: Iterable[tuple[int, time, time]]
) -> None:
    """Replace a program site's regular hours."""
    intervals = []
    for weekday, opens, closes in weekly:
        if not 0 <= weekday <= 6:
            message = _("Choose a day of the week.")
            raise ValidationFailed(message, fields={"weekly_hours": [message]})
        if opens == closes:
            message = _("Opening and closing times must differ.")
            raise ValidationFailed(message, fields={"weekly_hours": [message]})
        intervals.append(WeeklyHours(weekday=weekday, opens_at=opens, closes_at=closes))
    if not open_24_7 and not intervals:
        message = _("Give opening hours, or mark the service as open around the clock.")
        raise ValidationFailed(message, fields={"weekly_hours": [message]})
    program_site.open_24_7 = open_24_7
    program_site.weekly_hours = [] if open_24_7 else intervals
    db.session.flush()


def add_exception(
    program_site: ProgramSite,
    on_date: date,
    *,
    closed: bool = True,
    opens: time | None = None,
    closes: time | None = None,
    reason: str | None = None,
) -> HoursException:
    """Close a program site on a date, or give it special hours that day."""
    if not closed and (opens is None or closes is None):
        message = _("Give the special opening and closing times.")
        raise ValidationFailed(message, fields={"exceptions": [message]})
    existing = next((e for e in program_site.exceptions if e.on_date == on_date), None)
    if existing is not None:
        program_site.exceptions.remove(existing)
        db.session.flush()
    item = HoursException(
        on_date=on_date, closed=closed, opens_at=opens, closes_at=closes, reason=reason
    )
    program_site.exceptions.append(item)
    db.session.flush()
    return item
