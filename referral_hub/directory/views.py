"""Directory pages: staff browse programs; provider admins keep their listings current."""

from __future__ import annotations

import math
import re
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from babel.dates import get_day_names
from flask import Blueprint, render_template, request, url_for
from flask_babel import format_date, format_decimal, format_timedelta, get_locale
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlalchemy import Select, exists, func, select
from sqlalchemy.orm import joinedload, selectinload

from referral_hub import policies
from referral_hub.accounts.models import Organization
from referral_hub.core.db import city_tz, utcnow
from referral_hub.core.errors import NotFound
from referral_hub.directory.forms import (
    BrowseForm,
    parse_rule,
)
from referral_hub.directory.hours import Exception_, Interval, is_open
from referral_hub.directory.models import (
    CapacityStatus,
    Category,
    HoursException,
    LanguageMode,
    Program,
    ProgramLanguage,
    ProgramSite,
    Site,
    WeeklyHours,
    program_categories,
)
from referral_hub.extensions import db
from referral_hub.geo.base import Point
from referral_hub.geo.distance import haversine_km
from referral_hub.geo.service import get_geo
from referral_hub.matching.questions import BY_CODE, CATEGORY_OPTIONS, LANGUAGE_OPTIONS
from referral_hub.matching.rules import (
    Leaf,
    describe,
    questions_used,
)

bp = Blueprint("directory", __name__, template_folder="templates")

PAGE_SIZE = 25
BROWSE_ARGS = {"category", "language", "open_now", "near"}
CATEGORY_LABELS = {o.value: o.label for o in CATEGORY_OPTIONS}
LANGUAGE_LABELS = {o.value: o.label for o in LANGUAGE_OPTIONS}
LEAF_OPS = {
    "is": "==",
    "is_not": "!=",
    "at_least": ">=",
    "at_most": "<=",
    "more_than": ">",
    "under": "<",
    "includes": "includes",
    "one_of": "one_of",
}
RANGE = "\u2013"  # an en dash, for ranges of days and hours
RULE_PATH = re.compile(r" \([\w.\[\]<>=!]*\)$")


def now() -> datetime:
    """The current moment; tests replace it to see the directory at a chosen time."""
    return utcnow()


# --- words and views of hours ---------------------------------------------------------------


@dataclass
class SiteView:
    program_site: ProgramSite
    site: Site
    open_now: bool
    hours: list[str]
    distance_km: float | None = None


@dataclass
class Listing:
    program: Program
    sites: list[SiteView]
    distance_km: float | None

    @property
    def open_now(self) -> bool:
        return any(s.open_now for s in self.sites)


def _clock(t: time, closing: bool = False) -> str:
    return "24:00" if closing and t == time(0) else f"{t.hour}:{t.minute:02d}"


def _span(opens: time, closes: time) -> str:
    text = f"{_clock(opens)}{RANGE}{_clock(closes, closing=True)}"
    if closes <= opens and closes != time(0):
        return _("%(hours)s (closes the next day)", hours=text)
    return text


def hours_in_words(program_site: ProgramSite) -> list[str]:
    """Weekly hours as lines such as "Mon-Fri 9:00-17:00", consecutive equal days joined."""
    if program_site.open_24_7:
        return [_("Open 24 hours, every day")]
    names = get_day_names("abbreviated", locale=get_locale())
    spans = {
        d: tuple(
            sorted((h.opens_at, h.closes_at) for h in program_site.weekly_hours if h.weekday == d)
        )
        for d in range(7)
    }
    lines, day = [], 0
    while day < 7:
        last = day
        while last < 6 and spans[last + 1] == spans[day]:
            last += 1
        if spans[day]:
            days = names[day] if last == day else f"{names[day]}{RANGE}{names[last]}"
            lines.append(f"{days} {', '.join(_span(*s) for s in spans[day])}")
        day = last + 1
    return lines or [_("No regular hours")]


def _open(program_site: ProgramSite, at: datetime) -> bool:
    return is_open(
        at,
        city_tz(),
        open_24_7=program_site.open_24_7,
        weekly=[Interval(h.weekday, h.opens_at, h.closes_at) for h in program_site.weekly_hours],
        exceptions={
            e.on_date: Exception_(e.closed, e.opens_at, e.closes_at)
            for e in program_site.exceptions
        },
    )


def _listing(program: Program, at: datetime, origin: Point | None) -> Listing:
    sites = [
        SiteView(
            ps,
            ps.site,
            _open(ps, at),
            hours_in_words(ps),
            haversine_km(origin, Point(ps.site.latitude, ps.site.longitude)) if origin else None,
        )
        for ps in program.program_sites
        if ps.site.is_active
    ]
    if origin:
        sites.sort(key=lambda s: s.distance_km)
    return Listing(program, sites, sites[0].distance_km if origin and sites else None)


def who_qualifies(rule: Any) -> dict[str, Any]:
    """The criteria in words: the builder's conditions, or else the questions it asks."""
    if rule is None:
        return {"open": True}
    parsed = parse_rule(rule)
    if parsed is None:
        codes = sorted(questions_used(rule), key=list(BY_CODE).index)
        return {"asks_about": [str(BY_CODE[c].label).strip("¿?") for c in codes]}
    return {
        "any": parsed.combinator == "or",
        "conditions": [describe(Leaf(c.code, LEAF_OPS[c.op], c.value)) for c in parsed.conditions],
        "in_service_area": parsed.in_service_area,
    }


def exception_text(item: HoursException) -> str:
    """A dated change of hours in words."""
    day = format_date(item.on_date, "medium")
    if item.closed:
        if item.reason:
            return _("%(date)s: closed (%(reason)s)", date=day, reason=item.reason)
        return _("%(date)s: closed", date=day)
    hours = _span(item.opens_at, item.closes_at)
    if item.reason:
        return _("%(date)s: open %(hours)s (%(reason)s)", date=day, hours=hours, reason=item.reason)
    return _("%(date)s: open %(hours)s", date=day, hours=hours)


@bp.context_processor
def helpers() -> dict[str, Any]:
    """Formatting helpers for this blueprint's templates."""

    def category_label(category: Category) -> str:
        return str(CATEGORY_LABELS.get(category.code, category.name))

    def language_label(code: str) -> str:
        return str(LANGUAGE_LABELS.get(code, code))

    def ago(moment: datetime | None) -> str:
        return format_timedelta(moment - now(), add_direction=True) if moment else ""

    def km(value: float) -> str:
        return _("%(km)s km", km=format_decimal(value, "#,##0.0"))

    def tel(phone: str) -> str:
        return re.sub(r"[^\d+]", "", phone)

    return {
        "category_label": category_label,
        "language_label": language_label,
        "ago": ago,
        "km": km,
        "tel": tel,
        "exception_text": exception_text,
        "hours_words": hours_in_words,
        "statuses": list(CapacityStatus),
    }


# --- browse ---------------------------------------------------------------------------------


def _local_day(at: datetime) -> date:
    return at.astimezone(city_tz()).date()


def _program_options(day: date) -> tuple:
    """Everything a listing shows, in a fixed number of queries whatever the page holds."""
    sites = selectinload(Program.program_sites)
    window = HoursException.on_date.between(day - timedelta(days=1), day + timedelta(days=14))
    return (
        joinedload(Program.organization),
        selectinload(Program.categories),
        selectinload(Program.languages),
        sites.selectinload(ProgramSite.site),
        sites.selectinload(ProgramSite.weekly_hours),
        sites.selectinload(ProgramSite.exceptions.and_(window)),
    )


def _directory(categories: list[str], language: str) -> Select:
    stmt = (
        select(Program.id)
        .join(Organization, Organization.id == Program.organization_id)
        .where(Program.is_active, Organization.is_active)
    )
    if categories:
        stmt = stmt.where(
            exists().where(
                program_categories.c.program_id == Program.id,
                program_categories.c.category_id == Category.id,
                Category.code.in_(categories),
            )
        )
    if language:
        stmt = stmt.where(
            exists().where(
                ProgramLanguage.program_id == Program.id, ProgramLanguage.language == language
            )
        )
    return stmt


def _open_program_sites(stmt: Select, rows: list[Any], at: datetime) -> set[int]:
    """Ids of the program sites open at `at`, from two queries over the filtered programs."""
    in_scope = select(ProgramSite.id).where(ProgramSite.program_id.in_(stmt))
    weekly: dict[int, list[Interval]] = defaultdict(list)
    for h in db.session.execute(
        select(WeeklyHours).where(WeeklyHours.program_site_id.in_(in_scope))
    ).scalars():
        weekly[h.program_site_id].append(Interval(h.weekday, h.opens_at, h.closes_at))
    day = _local_day(at)
    special: dict[int, dict[date, Exception_]] = defaultdict(dict)
    for e in db.session.execute(
        select(HoursException).where(
            HoursException.program_site_id.in_(in_scope),
            HoursException.on_date.between(day - timedelta(days=1), day),
        )
    ).scalars():
        special[e.program_site_id][e.on_date] = Exception_(e.closed, e.opens_at, e.closes_at)
    tz = city_tz()
    return {
        r.id
        for r in rows
        if is_open(at, tz, open_24_7=r.open_24_7, weekly=weekly[r.id], exceptions=special[r.id])
    }


def _ranked_ids(stmt: Select, at: datetime, open_now: bool, origin: Point | None) -> list[int]:
    """Program ids by name, kept when open at `at` if asked, then nearest first if asked."""
    ids = list(db.session.scalars(stmt.order_by(Program.name, Program.id)))
    rows = db.session.execute(
        select(
            ProgramSite.id,
            ProgramSite.program_id,
            ProgramSite.open_24_7,
            Site.latitude,
            Site.longitude,
        )
        .join(Site, Site.id == ProgramSite.site_id)
        .where(Site.is_active, ProgramSite.program_id.in_(stmt))
    ).all()
    open_ids = _open_program_sites(stmt, rows, at) if open_now else None
    nearest: dict[int, float] = {}
    for r in rows:
        if open_ids is None or r.id in open_ids:
            km = haversine_km(origin, Point(r.latitude, r.longitude)) if origin else 0.0
            nearest[r.program_id] = min(km, nearest.get(r.program_id, math.inf))
    if open_now:
        ids = [i for i in ids if i in nearest]
    if origin:
        ids.sort(key=lambda i: nearest.get(i, math.inf))  # stable: by name among equals
    return ids


def _page_url(page: int) -> str:
    """This page of results with the same filters (only the filters: url_for reads `_...`)."""
    args = {k: v for k, v in request.args.to_dict(flat=False).items() if k in BROWSE_ARGS}
    return url_for("directory.browse", **args, page=page)


@bp.get("/directory")
@login_required
def browse():
    form = BrowseForm(request.args)
    in_use = db.session.scalars(
        select(Category)
        .join(program_categories)
        .join(Program)
        .where(Program.is_active)
        .distinct()
        .order_by(Category.name)
    ).all()
    form.category.choices = [(c.code, str(CATEGORY_LABELS.get(c.code, c.name))) for c in in_use]
    form.validate()  # wrong filters are shown beside their fields and ignored
    categories = [] if form.category.errors else form.category.data or []
    language = "" if form.language.errors else form.language.data or ""
    place_text = "" if form.near.errors else (form.near.data or "").strip()
    place, place_note = None, None
    if place_text:
        found = get_geo().geocode(place_text)
        place = found[0] if found else None
        if place is None:
            place_note = _(
                "We could not find “%(place)s”. Programs are listed by name instead.",
                place=place_text,
            )
    at, page = now(), max(request.args.get("page", 1, type=int), 1)
    stmt = _directory(categories, language)
    origin = place.point if place else None
    if form.open_now.data or origin:
        ids = _ranked_ids(stmt, at, form.open_now.data, origin)
        total, page_ids = len(ids), ids[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
    else:
        total = db.session.scalar(select(func.count()).select_from(stmt.subquery()))
        page_ids = list(
            db.session.scalars(
                stmt.order_by(Program.name, Program.id)
                .limit(PAGE_SIZE)
                .offset((page - 1) * PAGE_SIZE)
            )
        )
    loaded = (
        {
            p.id: p
            for p in db.session.scalars(
                select(Program)
                .where(Program.id.in_(page_ids))
                .options(*_program_options(_local_day(at)))
            )
        }
        if page_ids
        else {}
    )
    listings = [_listing(loaded[i], at, origin) for i in page_ids]
    return render_template(
        "directory/browse.html",
        form=form,
        listings=listings,
        total=total,
        page=page,
        pages=max(math.ceil(total / PAGE_SIZE), 1),
        place=place,
        place_note=place_note,
        page_url=_page_url,
    ), 422 if form.errors else 200


@bp.get("/directory/programs/<int:program_id>")
@login_required
def program(program_id: int):
    at = now()
    found = db.session.scalar(
        select(Program).where(Program.id == program_id).options(*_program_options(_local_day(at)))
    )
    listed = found is not None and found.is_active and found.organization.is_active
    if found is None or not (listed or policies.can_manage_program(current_user, found)):
        raise NotFound(_("Not found."))
    by_mode = {
        mode: [
            str(LANGUAGE_LABELS.get(pl.language, pl.language))
            for pl in found.languages
            if pl.mode == mode
        ]
        for mode in LanguageMode
    }
    return render_template(
        "directory/program.html",
        program=found,
        listing=_listing(found, at, None),
        eligibility=who_qualifies(found.criteria),
        staff_languages=by_mode[LanguageMode.STAFF],
        interpreter_languages=by_mode[LanguageMode.INTERPRETER],
        today=_local_day(at),
        can_manage=policies.can_manage_program(current_user, found),
    )
