"""Matching: from a screening to the programs a person qualifies for, ranked and explained.

The number of queries is fixed (candidates, hours, exceptions, languages, service areas,
categories), whatever the size of the directory; candidates come from a bounding-box range
scan on the sites' (latitude, longitude) index and the categories asked for.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import bindparam, exists, select

from referral_hub.accounts.models import Organization
from referral_hub.core.db import utcnow
from referral_hub.core.errors import ValidationFailed
from referral_hub.directory.hours import Exception_, Interval, is_open, next_opening
from referral_hub.directory.models import (
    AreaKind,
    CapacityStatus,
    Category,
    HoursException,
    Program,
    ProgramLanguage,
    ProgramSite,
    ServiceArea,
    Site,
    WeeklyHours,
    program_categories,
)
from referral_hub.extensions import db
from referral_hub.geo.base import Mode, Place, Point, TravelEstimate
from referral_hub.geo.distance import bounding_box, haversine_km
from referral_hub.geo.service import get_geo
from referral_hub.matching.questions import BY_CODE, QType
from referral_hub.matching.rules import (
    ELIGIBLE,
    INELIGIBLE,
    UNKNOWN,
    CompiledRule,
    Context,
    Outcome,
    cached_rule,
    remember_rule,
)

CAPACITY_RANK = {
    CapacityStatus.CAPACITY: 0,
    CapacityStatus.WAITLIST: 1,
    CapacityStatus.ASSESSMENT: 2,
    CapacityStatus.NO_CAPACITY: 3,
}


# --- answers -------------------------------------------------------------------------------


def clean_answers(raw: Mapping[str, Any]) -> dict[str, Any]:
    """Check answers against the screener; blanks are dropped (every question is skippable)."""
    errors: dict[str, list[str]] = {}
    answers: dict[str, Any] = {}
    for code, value in raw.items():
        question = BY_CODE.get(code)
        if question is None:
            errors[code] = [_("Unknown question.")]
            continue
        if value is None or value == "" or value == []:
            continue
        kind = question.type
        if kind == QType.INTEGER:
            try:
                number = int(value)
            except (TypeError, ValueError):
                errors[code] = [_("Enter a whole number.")]
                continue
            if isinstance(value, bool) or not (question.minimum or 0) <= number <= (
                question.maximum if question.maximum is not None else 10**6
            ):
                errors[code] = [
                    _(
                        "Enter a number between %(lo)d and %(hi)d.",
                        lo=question.minimum or 0,
                        hi=question.maximum or 10**6,
                    )
                ]
                continue
            answers[code] = number
        elif kind == QType.YES_NO:
            if isinstance(value, bool):
                answers[code] = value
            elif str(value).lower() in {"yes", "true", "1"}:
                answers[code] = True
            elif str(value).lower() in {"no", "false", "0"}:
                answers[code] = False
            else:
                errors[code] = [_("Answer yes or no.")]
        elif kind == QType.ONE_OF:
            if value not in question.values:
                errors[code] = [_("Choose one of the options.")]
            else:
                answers[code] = value
        elif kind == QType.MANY_OF:
            values = [value] if isinstance(value, str) else list(value)
            if not all(v in question.values for v in values):
                errors[code] = [_("Choose among the options.")]
            else:
                answers[code] = sorted(set(values))
        elif kind == QType.LOCATION:
            errors[code] = [_("Send the location separately, as coordinates or a place.")]
    if errors:
        raise ValidationFailed(_("Some answers are not valid."), fields=errors)
    return answers


# --- results -------------------------------------------------------------------------------


@dataclass
class SiteOption:
    program_site_id: int
    site_id: int
    name: str
    address: str
    postal_code: str
    latitude: float
    longitude: float
    phone: str | None
    open_at_time: bool
    opens_next: datetime | None
    travel: TravelEstimate | None
    open_24_7: bool = False


@dataclass
class MatchResult:
    program_id: int
    program_uuid: str
    name: str
    organization: str
    categories: list[str]
    outcome: Outcome
    site: SiteOption | None
    capacity_status: CapacityStatus
    open_slots: int | None
    language_mode: str | None  # "staff" | "interpreter" | None when not served / not asked
    sensitive: bool
    reason: str = ""


@dataclass
class Matches:
    at: datetime
    location: Place | None
    eligible: list[MatchResult] = field(default_factory=list)
    unknown: list[MatchResult] = field(default_factory=list)
    ineligible: list[MatchResult] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    ask_next: list[str] = field(default_factory=list)
    location_note: str | None = None


def resolve_location(point: Point | None, place: str | None) -> tuple[Place | None, str | None]:
    """Turn coordinates or a typed place into a Place, or explain why it could not."""
    geo = get_geo()
    if point is not None:
        found = geo.reverse(point)
        postal = found.postal_code if found else None
        return Place(
            name=found.name if found else f"{point.lat:.5f}, {point.lon:.5f}",
            point=point,
            postal_code=postal,
            kind="coordinates",
            source="offline",
        ), None
    if place:
        candidates = geo.geocode(place)
        if candidates:
            return candidates[0], None
        return None, _(
            "We could not find “%(place)s”. Try an address, a place name, a ZIP "
            "code, or coordinates. Results below ignore travel.",
            place=place,
        )
    return None, None


def match(
    answers: Mapping[str, Any],
    *,
    point: Point | None = None,
    place: str | None = None,
    at: datetime | None = None,
    limit: int = 25,
    mode: Mode = Mode.DRIVE,
) -> Matches:
    """Programs for these answers near this place at this time, grouped and ranked."""
    at = at or utcnow()
    tz = ZoneInfo(current_app.config["TIMEZONE"])
    location, note = resolve_location(point, place)
    answers = dict(answers)
    if location is not None:
        answers["location"] = {
            "lat": location.point.lat,
            "lon": location.point.lon,
            "postal_code": location.postal_code,
        }
    result = Matches(at=at, location=location, location_note=note)

    rows = _candidates(answers.get("needs"), location.point if location else None)
    if not rows:
        result.counts = {ELIGIBLE: 0, UNKNOWN: 0, INELIGIBLE: 0}
        return result
    program_site_ids = sorted({r.program_site_id for r in rows})
    program_ids = sorted({r.program_id for r in rows})
    rules = _rules(rows)
    local_day = at.astimezone(tz).date()
    # Only two days decide "open at that time" (yesterday's interval may run past midnight).
    hours, exceptions = _hours(program_site_ids, local_day - timedelta(days=1), local_day)
    languages = _languages(program_ids, answers.get("language"))
    areas = _areas(program_ids)
    travel = _travel(location.point if location else None, rows, mode)

    by_program: dict[int, list[Any]] = defaultdict(list)
    for row in rows:
        by_program[row.program_id].append(row)

    asked_language = answers.get("language")
    # Rank on plain tuples; result objects are built only for what will be shown.
    ranked: dict[str, list[tuple]] = {ELIGIBLE: [], UNKNOWN: [], INELIGIBLE: []}
    for program_id, program_rows in by_program.items():
        head = program_rows[0]
        areas_of = areas.get(program_id)
        context = Context(in_service_area=_area_test(areas_of)) if areas_of else NO_AREAS
        outcome = rules[program_id].evaluate(answers, context)
        # The program's best site: open at that time first, then the nearest.
        best, best_key = head, (True, math.inf, "")
        for row in program_rows:
            open_now = is_open(
                at,
                tz,
                open_24_7=row.open_24_7,
                weekly=hours.get(row.program_site_id, ()),
                exceptions=exceptions.get(row.program_site_id),
            )
            key = (not open_now, _minutes(travel.get(row.site_id)), row.site_name)
            if key < best_key:
                best, best_key = row, key
        if outcome.status == INELIGIBLE:
            rank = (best_key[1], head.program_name)
        else:
            language_mode = languages.get(program_id)
            language_rank = (
                0
                if not asked_language
                else {"staff": 0, "interpreter": 1}.get(language_mode or "", 2)
            )
            rank = (
                best_key[0],
                best_key[1],
                CAPACITY_RANK[head.capacity_status],
                language_rank,
                head.program_name,
            )
        ranked[outcome.status].append((rank, program_id, outcome, best, not best_key[0]))

    result.counts = {status: len(items) for status, items in ranked.items()}
    shown: dict[str, list[MatchResult]] = {}
    for status, items in ranked.items():
        items.sort(key=lambda item: item[:2])
        shown[status] = [
            _result(
                by_program[program_id][0],
                outcome,
                _site_option(best, open_now, travel.get(best.site_id)),
                languages.get(program_id),
            )
            for _rank, program_id, outcome, best, open_now in items[:limit]
        ]
    result.eligible, result.unknown, result.ineligible = (
        shown[ELIGIBLE],
        shown[UNKNOWN],
        shown[INELIGIBLE],
    )
    _finish([*result.eligible, *result.unknown, *result.ineligible], at, tz, asked_language)
    result.ask_next = _ask_next([item[2] for item in ranked[UNKNOWN]])
    return result


def _result(head, outcome: Outcome, site: SiteOption, language_mode: str | None) -> MatchResult:
    return MatchResult(
        program_id=head.program_id,
        program_uuid=head.program_uuid,
        name=head.program_name,
        organization=head.organization_name,
        categories=[],
        outcome=outcome,
        site=site,
        capacity_status=head.capacity_status,
        open_slots=head.open_slots,
        language_mode=language_mode,
        sensitive=head.sensitive,
    )


def _finish(shown: list[MatchResult], at: datetime, tz: ZoneInfo, language: str | None) -> None:
    """Details only the shown results need: categories, next opening, the reason line."""
    categories = _categories(sorted({m.program_id for m in shown}))
    closed = {m.site.program_site_id: m.site for m in shown if m.site and not m.site.open_at_time}
    if closed:
        local_day = at.astimezone(tz).date()
        weekly, exceptions = _hours(
            sorted(closed), local_day - timedelta(days=1), local_day + timedelta(days=14)
        )
        for program_site_id, site in closed.items():
            site.opens_next = next_opening(
                at,
                tz,
                open_24_7=site.open_24_7,
                weekly=weekly.get(program_site_id, ()),
                exceptions=exceptions.get(program_site_id),
            )
    for item in shown:
        item.categories = categories.get(item.program_id, [])
        item.reason = explain(item, language)


def _minutes(travel: TravelEstimate | None) -> float:
    return travel.minutes if travel is not None else math.inf


def _ask_next(unknown: list[Outcome]) -> list[str]:
    """Questions that would settle the most undecided programs, most useful first."""
    tally: dict[str, int] = defaultdict(int)
    for outcome in unknown:
        for code in outcome.missing:
            tally[code] += 1
    return sorted(tally, key=lambda code: (-tally[code], list(BY_CODE).index(code)))[:3]


# --- queries (a fixed number, whatever the directory size) ----------------------------------


def _candidates(needs: list[str] | None, point: Point | None) -> list[Any]:
    radius = current_app.config["MATCH_RADIUS_KM"]
    stmt = (
        select(
            Program.id.label("program_id"),
            Program.uuid.label("program_uuid"),
            Program.name.label("program_name"),
            Program.criteria_version,
            Program.capacity_status,
            Program.open_slots,
            Program.sensitive,
            Organization.name.label("organization_name"),
            ProgramSite.id.label("program_site_id"),
            ProgramSite.open_24_7,
            Site.id.label("site_id"),
            Site.name.label("site_name"),
            Site.address_1,
            Site.postal_code,
            Site.latitude,
            Site.longitude,
            Site.phone,
        )
        .join(ProgramSite, ProgramSite.program_id == Program.id)
        .join(Site, Site.id == ProgramSite.site_id)
        .join(Organization, Organization.id == Program.organization_id)
        .where(
            Program.is_active,
            Program.accepts_responder_referrals,
            Site.is_active,
            Organization.is_active,
        )
    )
    if needs:
        stmt = stmt.where(
            exists().where(
                program_categories.c.program_id == Program.id,
                program_categories.c.category_id == Category.id,
                Category.code.in_(needs),
            )
        )
    if point is not None:
        # Two steps, both on the sites' (latitude, longitude) index: the nearest sites in the
        # bounding box by an equirectangular distance the database computes, then the
        # programs offered there. A dense directory is cut to its MATCH_MAX_SITES nearest.
        min_lat, min_lon, max_lat, max_lon = bounding_box(point, radius)
        scale = math.cos(math.radians(point.lat))

        def distance(table):
            d_lat = table.c.latitude - point.lat
            d_lon = (table.c.longitude - point.lon) * scale
            return d_lat * d_lat + d_lon * d_lon

        near = Site.__table__.alias("near")
        nearest = (
            select(near.c.id)
            .where(
                near.c.latitude.between(min_lat, max_lat),
                near.c.longitude.between(min_lon, max_lon),
            )
            .order_by(distance(near))
            .limit(current_app.config["MATCH_MAX_SITES" if needs else "MATCH_MAX_SITES_ANY_NEED"])
        )
        stmt = stmt.where(Site.id.in_(nearest)).order_by(distance(Site.__table__), ProgramSite.id)
    else:
        stmt = stmt.order_by(Program.name, ProgramSite.id)
    # Nearest offers first; a search without needs (every category) stops at this many.
    stmt = stmt.limit(current_app.config["MATCH_MAX_OFFERS"])
    return list(db.session.execute(stmt))


def _rules(rows: list[Any]) -> dict[int, CompiledRule]:
    """Compiled criteria per program; stored rules are read only for programs not cached."""
    rules: dict[int, CompiledRule] = {}
    missing: dict[int, Any] = {}
    for row in rows:
        if row.program_id in rules or row.program_id in missing:
            continue
        found = cached_rule(row.program_uuid, row.criteria_version)
        if found is None:
            missing[row.program_id] = row
        else:
            rules[row.program_id] = found
    if missing:
        for program_id, criteria in db.session.execute(
            select(Program.id, Program.criteria).where(_in(Program.id, sorted(missing)))
        ):
            row = missing[program_id]
            rules[program_id] = remember_rule(row.program_uuid, row.criteria_version, criteria)
    return rules


def _in(column, values):
    return column.in_(bindparam(f"{column.key}_values", values, expanding=True))


def _hours(program_site_ids: list[int], first_day: date, last_day: date):
    """Weekly intervals of the weekdays in [first_day, last_day] and exceptions in it."""
    weekdays = sorted(
        {
            (first_day + timedelta(days=n)).weekday()
            for n in range(min(7, (last_day - first_day).days + 1))
        }
    )
    weekly: dict[int, list[Interval]] = defaultdict(list)
    connection = db.session.connection()  # plain Core rows: no ORM bookkeeping per row
    for program_site_id, weekday, opens, closes in connection.execute(
        select(
            WeeklyHours.program_site_id,
            WeeklyHours.weekday,
            WeeklyHours.opens_at,
            WeeklyHours.closes_at,
        ).where(
            _in(WeeklyHours.program_site_id, program_site_ids), WeeklyHours.weekday.in_(weekdays)
        )
    ):
        weekly[program_site_id].append(Interval(weekday, opens, closes))
    exceptions: dict[int, dict[date, Exception_]] = defaultdict(dict)
    for row in connection.execute(
        select(
            HoursException.program_site_id,
            HoursException.on_date,
            HoursException.closed,
            HoursException.opens_at,
            HoursException.closes_at,
        ).where(
            _in(HoursException.program_site_id, program_site_ids),
            HoursException.on_date.between(first_day, last_day),
        )
    ):
        exceptions[row.program_site_id][row.on_date] = Exception_(
            row.closed, row.opens_at, row.closes_at
        )
    return weekly, exceptions


def _languages(program_ids: list[int], language: str | None) -> dict[int, str]:
    if not language:
        return {}
    rows = db.session.execute(
        select(ProgramLanguage.program_id, ProgramLanguage.mode).where(
            _in(ProgramLanguage.program_id, program_ids), ProgramLanguage.language == language
        )
    )
    return {row.program_id: row.mode.value for row in rows}


def _areas(program_ids: list[int]) -> dict[int, list[ServiceArea]]:
    found: dict[int, list[ServiceArea]] = defaultdict(list)
    for area in db.session.scalars(
        select(ServiceArea).where(_in(ServiceArea.program_id, program_ids))
    ):
        found[area.program_id].append(area)
    return found


def _categories(program_ids: list[int]) -> dict[int, list[str]]:
    found: dict[int, list[str]] = defaultdict(list)
    rows = db.session.execute(
        select(program_categories.c.program_id, Category.code)
        .join(Category, Category.id == program_categories.c.category_id)
        .where(_in(program_categories.c.program_id, program_ids))
        .order_by(Category.code)
    )
    for row in rows:
        found[row.program_id].append(row.code)
    return found


def _travel(origin: Point | None, rows: list[Any], mode: Mode) -> dict[int, TravelEstimate]:
    """One many-to-one travel estimate per distinct site (one matrix call)."""
    if origin is None:
        return {}
    sites: dict[int, Point] = {}
    for row in rows:
        sites.setdefault(row.site_id, Point(row.latitude, row.longitude))
    ids = list(sites)
    estimates = get_geo().matrix([origin], [sites[i] for i in ids], mode)[0]
    return {site_id: est for site_id, est in zip(ids, estimates, strict=True) if est}


def _site_option(row, open_now: bool, travel: TravelEstimate | None) -> SiteOption:
    return SiteOption(
        program_site_id=row.program_site_id,
        site_id=row.site_id,
        name=row.site_name,
        address=row.address_1,
        postal_code=row.postal_code,
        latitude=row.latitude,
        longitude=row.longitude,
        phone=row.phone,
        open_at_time=open_now,
        opens_next=None,
        travel=travel,
        open_24_7=row.open_24_7,
    )


NO_AREAS = Context()  # a program without service areas: in_service_area is always true


def _area_test(areas: list[ServiceArea]):
    """The in_service_area test for one program: True, False, or None when undecidable."""

    def inside(location: Mapping[str, Any]) -> bool | None:
        if not areas:
            return True
        undecided = False
        for area in areas:
            if area.kind == AreaKind.POSTAL_CODES:
                if not location.get("postal_code"):
                    undecided = True
                elif location["postal_code"] in (area.postal_codes or []):
                    return True
            elif area.kind == AreaKind.RADIUS:
                here = Point(location["lat"], location["lon"])
                centre = Point(area.center_latitude, area.center_longitude)
                if haversine_km(here, centre) <= (area.radius_km or 0):
                    return True
            elif area.geometry and _in_polygon(location["lon"], location["lat"], area.geometry):
                return True
        return None if undecided else False

    return inside


def _in_polygon(x: float, y: float, geometry: Mapping[str, Any]) -> bool:
    """Point in a GeoJSON Polygon or MultiPolygon ([lon, lat] pairs), holes respected."""
    polygons = (
        [geometry["coordinates"]] if geometry["type"] == "Polygon" else geometry["coordinates"]
    )
    for rings in polygons:
        if _in_ring(x, y, rings[0]) and not any(_in_ring(x, y, hole) for hole in rings[1:]):
            return True
    return False


def _in_ring(x: float, y: float, ring: list[list[float]]) -> bool:
    inside = False
    for (x1, y1), (x2, y2) in zip(ring, ring[1:] + ring[:1], strict=True):
        if (y1 > y) != (y2 > y) and x < (x2 - x1) * (y - y1) / (y2 - y1) + x1:
            inside = not inside
    return inside


# --- words ---------------------------------------------------------------------------------


def explain(item: MatchResult, asked_language: str | None = None) -> str:
    """One line that says why a result is where it is."""
    outcome = item.outcome
    if outcome.status == INELIGIBLE:
        return "; ".join(outcome.reasons)
    parts: list[str] = []
    if outcome.status == UNKNOWN:
        labels = [str(BY_CODE[c].label).strip("¿?") for c in outcome.missing]
        parts.append(_("Ask: %(questions)s", questions=", ".join(labels)))
    site = item.site
    if site and site.travel:
        t = site.travel
        span = f"{round(t.minutes_low)}\u2013{round(t.minutes_high)}"  # an en dash: a range
        if t.estimated:
            parts.append(_("%(span)s min %(mode)s (estimated)", span=span, mode=t.mode.title))
        else:
            parts.append(_("%(span)s min %(mode)s", span=span, mode=t.mode.title))
    if site:
        parts.append(_("open at that time") if site.open_at_time else _("closed at that time"))
    capacity = item.capacity_status.title
    if item.open_slots is not None and item.capacity_status == CapacityStatus.CAPACITY:
        capacity = _("%(status)s, %(n)d open", status=capacity, n=item.open_slots)
    parts.append(capacity)
    if asked_language and asked_language != "en":
        if item.language_mode == "staff":
            parts.append(_("staff speak the language"))
        elif item.language_mode == "interpreter":
            parts.append(_("with an interpreter"))
        else:
            parts.append(_("language not listed"))
    return " · ".join(parts)


__all__ = ["MatchResult", "Matches", "clean_answers", "explain", "match"]
