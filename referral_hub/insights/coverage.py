"""Coverage gaps: demand (screenings and referrals) against supply (program hours and sites).

Demand comes from the anonymous screening records (need, ZIP code, hour of the week) and
from referrals (category, hour of the week they were sent; referrals carry no place of
origin, so demand by ZIP comes from screenings alone). Supply is the directory: the regular
weekly hours of every active program at every active site, per category, and where those
sites are. Dated exceptions (holidays) are left out: the gaps describe the regular week.

Five aggregate queries whatever the number of referrals or screenings: category names,
program hours, screenings by need and hour, screenings by need and ZIP, referrals by
category and hour. What comes back is at most a few thousand small rows; Python only lays
them on the 168 hours of the week and ranks the gaps.
"""

from __future__ import annotations

import enum
import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, time
from typing import Any

from babel.lists import format_list
from flask_babel import get_locale, ngettext
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from markupsafe import Markup, escape
from sqlalchemy import Integer, cast, extract, func, select, true

from referral_hub.core.db import city_tz
from referral_hub.directory.models import Category, Program, ProgramSite, Site, WeeklyHours
from referral_hub.directory.models import program_categories as pc
from referral_hub.extensions import db
from referral_hub.geo import zips
from referral_hub.geo.base import Mode, Point
from referral_hub.geo.offline import estimate, haversine_km
from referral_hub.insights.charts import FONT, INK, MUTED
from referral_hub.insights.localtime import sqlite_local
from referral_hub.insights.metrics import Filters, _dialect
from referral_hub.insights.models import ScreeningRecord
from referral_hub.insights.screenings import (
    HOURS_IN_WEEK,
    NEED_LABELS,
    WEEKDAYS,
    _needs_table,
    hour_label,
)
from referral_hub.referrals.models import Referral, Status

# A need whose nearest site is farther than this by car (offline estimate) is a gap.
TRAVEL_GAP_MINUTES = 30
MINUTES_PER_DAY = 24 * 60
MINUTES_PER_WEEK = 7 * MINUTES_PER_DAY


class GapKind(enum.StrEnum):
    NO_SITE = "no_site"  # no active site offers the category at all
    NO_HOURS = "no_hours"  # sites, but none open at any hour of the regular week
    CLOSED_DAYS = "closed_days"  # whole days with no site open
    CLOSED_HOURS = "closed_hours"  # the same hours closed on several days
    TRAVEL = "travel"  # the nearest site is far from where people were screened

    @property
    def title(self) -> str:
        return str(GAP_KIND_TITLES[self])


GAP_KIND_TITLES = {
    GapKind.NO_SITE: _l("No site"),
    GapKind.NO_HOURS: _l("No opening hours"),
    GapKind.CLOSED_DAYS: _l("Closed days"),
    GapKind.CLOSED_HOURS: _l("Closed hours"),
    GapKind.TRAVEL: _l("Travel time"),
}


@dataclass(frozen=True)
class CoverageFilters:
    """Which screenings and referrals count: days in the city's time zone, both included."""

    start: date
    end: date
    category: str | None = None


@dataclass
class CategoryCoverage:
    """Supply and demand of one category over the 168 hours of the week (0 = Monday 00:00)."""

    code: str
    name: str
    sites: list[Point] = field(default_factory=list)
    open_sites: list[int] = field(default_factory=lambda: [0] * HOURS_IN_WEEK)
    screenings: list[int] = field(default_factory=lambda: [0] * HOURS_IN_WEEK)
    referrals: list[int] = field(default_factory=lambda: [0] * HOURS_IN_WEEK)

    @property
    def demand(self) -> list[int]:
        return [s + r for s, r in zip(self.screenings, self.referrals, strict=True)]

    @property
    def open_hours(self) -> int:
        return sum(1 for n in self.open_sites if n)


@dataclass(frozen=True)
class Gap:
    """One gap, with the screenings and referrals that fell in it, ready to say in words."""

    category: str
    category_name: str
    kind: GapKind
    window: str  # "Saturday-Sunday", "Monday-Friday 17:00-24:00" (with en dashes), ...
    hours: tuple[int, ...]
    screenings: int
    referrals: int = 0
    zip: str | None = None
    minutes: float | None = None  # estimated drive to the nearest site (travel gaps)

    @property
    def text(self) -> str:
        """The gap in one or two sentences."""
        name, s, r = self.category_name, self.screenings, self.referrals
        if self.kind is GapKind.TRAVEL:
            return ngettext(
                "%(category)s: the nearest site is about %(minutes)d minutes away by car "
                "(estimated) from ZIP code %(zip)s; %(num)d screening came from there.",
                "%(category)s: the nearest site is about %(minutes)d minutes away by car "
                "(estimated) from ZIP code %(zip)s; %(num)d screenings came from there.",
                s,
                category=name,
                minutes=round(self.minutes or 0),
                zip=self.zip,
            )
        if self.kind is GapKind.NO_SITE:
            return ngettext(
                "%(category)s: no site offers it; %(num)d screening asked for it.",
                "%(category)s: no site offers it; %(num)d screenings asked for it.",
                s,
                category=name,
            )
        if s:
            first = ngettext(
                "%(category)s: no site open %(window)s; %(num)d screening fell in that window.",
                "%(category)s: no site open %(window)s; %(num)d screenings fell in that window.",
                s,
                category=name,
                window=self.window,
            )
        else:
            first = ngettext(
                "%(category)s: no site open %(window)s; %(num)d referral was sent in that window.",
                "%(category)s: no site open %(window)s; %(num)d referrals were sent in that "
                "window.",
                r,
                category=name,
                window=self.window,
            )
        if s and r:
            more = ngettext(
                "%(num)d referral was sent in that window.",
                "%(num)d referrals were sent in that window.",
                r,
            )
            return _("%(first)s %(more)s", first=first, more=more)
        return first


@dataclass(frozen=True)
class TravelLine:
    """Screenings from one ZIP code that asked for one category, and the nearest site."""

    zip: str
    category: str
    category_name: str
    screenings: int
    minutes: float | None  # None: no site, or a ZIP code without a known centre
    minutes_low: float | None = None
    minutes_high: float | None = None
    distance_km: float | None = None


@dataclass(frozen=True)
class HeatCell:
    hour: int  # of the week
    value: int  # what the cell's shade shows
    demand: int
    unserved: int  # demand in this hour when no site of the needed category was open
    closed: bool | None  # for one category: no site open; None over all categories


@dataclass(frozen=True)
class Coverage:
    filters: CoverageFilters
    categories: dict[str, CategoryCoverage]
    gaps: list[Gap]  # largest first
    travel: list[TravelLine]  # farthest first

    def heat(self) -> list[HeatCell]:
        """Per hour of the week: for one category its demand (and whether anything was
        open), over all categories the demand that found no site of its kind open."""
        cells = []
        chosen = self.categories.get(self.filters.category or "")
        for hour in range(HOURS_IN_WEEK):
            if chosen is not None:
                demand = chosen.demand[hour]
                closed = chosen.open_sites[hour] == 0
                cells.append(HeatCell(hour, demand, demand, demand if closed else 0, closed))
                continue
            demand = sum(c.demand[hour] for c in self.categories.values())
            unserved = sum(
                c.demand[hour] for c in self.categories.values() if c.open_sites[hour] == 0
            )
            cells.append(HeatCell(hour, unserved, demand, unserved, None))
        return cells


# --- the analysis ----------------------------------------------------------------------------


def coverage(filters: CoverageFilters, *, limit: int | None = None) -> Coverage:
    """Supply and demand per category, the gaps ranked largest first, travel per ZIP code."""
    categories = _categories(filters.category)
    _add_supply(categories, filters.category)
    _add_screenings(categories, filters)
    _add_referrals(categories, filters)
    travel = _travel(categories, filters)
    gaps: list[Gap] = []
    for cat in categories.values():
        if sum(cat.demand):
            gaps += _time_gaps(cat)
    gaps += [
        Gap(
            line.category,
            line.category_name,
            GapKind.TRAVEL,
            "",
            (),
            line.screenings,
            zip=line.zip,
            minutes=line.minutes,
        )
        for line in travel
        if line.minutes is not None and line.minutes > TRAVEL_GAP_MINUTES
    ]
    gaps.sort(key=lambda g: (-g.screenings - g.referrals, -g.screenings, g.category, g.window))
    # Only categories someone asked for, or the one chosen, or those with a site.
    shown = {
        code: cat
        for code, cat in categories.items()
        if sum(cat.demand) or cat.sites or code == filters.category
    }
    return Coverage(filters, shown, gaps[:limit] if limit else gaps, travel)


def _categories(only: str | None) -> dict[str, CategoryCoverage]:
    stmt = select(Category.code, Category.name).order_by(Category.name)
    if only:
        stmt = stmt.where(Category.code == only)
    found = {code: CategoryCoverage(code, name) for code, name in db.session.execute(stmt)}
    if only and only not in found:
        found[only] = CategoryCoverage(only, _need_name(only))
    return found


def _category(categories: dict[str, CategoryCoverage], code: str) -> CategoryCoverage:
    # A need asked for in screenings may have no category row yet (no program offers it).
    if code not in categories:
        categories[code] = CategoryCoverage(code, _need_name(code))
    return categories[code]


def _need_name(code: str) -> str:
    return str(NEED_LABELS.get(code, code))


def _add_supply(categories: dict[str, CategoryCoverage], only: str | None) -> None:
    """Hours open per category from the weekly hours of active programs at active sites."""
    stmt = (
        select(
            Category.code,
            ProgramSite.id,
            ProgramSite.open_24_7,
            Site.latitude,
            Site.longitude,
            WeeklyHours.weekday,
            WeeklyHours.opens_at,
            WeeklyHours.closes_at,
        )
        .select_from(ProgramSite)
        .join(Program, Program.id == ProgramSite.program_id)
        .join(Site, Site.id == ProgramSite.site_id)
        .join(pc, pc.c.program_id == Program.id)
        .join(Category, Category.id == pc.c.category_id)
        .outerjoin(WeeklyHours, WeeklyHours.program_site_id == ProgramSite.id)
        .where(Program.is_active, Site.is_active)
    )
    if only:
        stmt = stmt.where(Category.code == only)
    open_hours: dict[tuple[str, int], set[int]] = defaultdict(set)
    sites: dict[str, set[tuple[float, float]]] = defaultdict(set)
    for code, ps_id, all_hours, lat, lon, weekday, opens, closes in db.session.execute(stmt):
        hours = open_hours[(code, ps_id)]
        sites[code].add((lat, lon))
        if all_hours:
            hours.update(range(HOURS_IN_WEEK))
        elif weekday is not None:
            hours.update(hours_open(weekday, opens, closes))
    for (code, _ps), hours in open_hours.items():
        cat = _category(categories, code)
        for hour in hours:
            cat.open_sites[hour] += 1
    for code, points in sites.items():
        _category(categories, code).sites = [Point(lat, lon) for lat, lon in sorted(points)]


def hours_open(weekday: int, opens: time, closes: time) -> set[int]:
    """Hours of the week that an opening interval covers, in full or in part.

    Closing at or before the opening time means after midnight, as in WeeklyHours.
    """
    start = weekday * MINUTES_PER_DAY + opens.hour * 60 + opens.minute
    end = weekday * MINUTES_PER_DAY + closes.hour * 60 + closes.minute
    if end <= start:
        end += MINUTES_PER_DAY
    return {h % HOURS_IN_WEEK for h in range(start // 60, math.ceil(end / 60))}


def _screening_range(stmt, filters: CoverageFilters):
    low, high = Filters(start=filters.start, end=filters.end).bounds(city_tz())
    return stmt.where(ScreeningRecord.created_at >= low, ScreeningRecord.created_at < high)


def _add_screenings(categories: dict[str, CategoryCoverage], filters: CoverageFilters) -> None:
    need = _needs_table().alias("need")
    stmt = (
        select(need.c.value, ScreeningRecord.hour_of_week, func.count())
        .select_from(ScreeningRecord)
        .join(need, true())
        .group_by(need.c.value, ScreeningRecord.hour_of_week)
    )
    if filters.category:
        stmt = stmt.where(need.c.value == filters.category)
    for code, hour, count in db.session.execute(_screening_range(stmt, filters)):
        if code is not None:
            _category(categories, code).screenings[hour] += count


def _add_referrals(categories: dict[str, CategoryCoverage], filters: CoverageFilters) -> None:
    low, high = Filters(start=filters.start, end=filters.end).bounds(city_tz())
    hour = local_hour_of_week(Referral.sent_at, low, high).label("hour")
    stmt = (
        select(Category.code, hour, func.count())
        .select_from(Referral)
        .join(pc, pc.c.program_id == Referral.program_id)
        .join(Category, Category.id == pc.c.category_id)
        .where(
            Referral.sent_at >= low,
            Referral.sent_at < high,
            Referral.status != Status.ENTERED_IN_ERROR,
        )
        .group_by(Category.code, hour)
    )
    if filters.category:
        stmt = stmt.where(Category.code == filters.category)
    for code, hour_of_week, count in db.session.execute(stmt):
        _category(categories, code).referrals[int(hour_of_week)] += count


def local_hour_of_week(column, low, high):
    """Hour of the week (0 = Monday 00:00, city time) of a UTC timestamp column, in SQL."""
    tz = city_tz()
    if _dialect() == "postgresql":
        local = func.timezone(tz.key, column)
        return cast((extract("isodow", local) - 1) * 24 + extract("hour", local), Integer)
    local = sqlite_local(column, low, high)
    weekday = (cast(func.strftime("%w", local), Integer) + 6) % 7  # %w: 0 = Sunday
    return weekday * 24 + cast(func.strftime("%H", local), Integer)


def _travel(categories: dict[str, CategoryCoverage], filters: CoverageFilters) -> list[TravelLine]:
    """Estimated drive from each screened ZIP code's centre to the nearest site of the need."""
    need = _needs_table().alias("need")
    stmt = (
        select(ScreeningRecord.zip, need.c.value, func.count())
        .select_from(ScreeningRecord)
        .join(need, true())
        .where(ScreeningRecord.zip.is_not(None))
        .group_by(ScreeningRecord.zip, need.c.value)
    )
    if filters.category:
        stmt = stmt.where(need.c.value == filters.category)
    lines = []
    for code, need_code, count in db.session.execute(_screening_range(stmt, filters)):
        if need_code is None:
            continue
        cat = _category(categories, need_code)
        centre = zips.lookup(code)
        if centre is None or not cat.sites:
            lines.append(TravelLine(code, cat.code, cat.name, count, None))
            continue
        km = min(haversine_km(centre.point, site) for site in cat.sites)
        trip = estimate(km, Mode.DRIVE)
        lines.append(
            TravelLine(
                code,
                cat.code,
                cat.name,
                count,
                trip.minutes,
                trip.minutes_low,
                trip.minutes_high,
                km,
            )
        )
    far_first = -math.inf
    return sorted(
        lines,
        key=lambda t: (
            -(t.minutes if t.minutes is not None else far_first),
            -t.screenings,
            t.zip,
            t.category,
        ),
    )


# --- gaps in the week ------------------------------------------------------------------------


def _time_gaps(cat: CategoryCoverage) -> list[Gap]:
    """Whole closed days (grouped when consecutive), then hours closed on open days
    (grouped when the same hours close on several days)."""
    everything = tuple(range(HOURS_IN_WEEK))
    if not cat.sites:
        return [_gap(cat, GapKind.NO_SITE, "", everything)]
    if not cat.open_hours:
        return [_gap(cat, GapKind.NO_HOURS, _("at any hour of the week"), everything)]
    closed_day = [not any(cat.open_sites[d * 24 : d * 24 + 24]) for d in range(7)]
    gaps = []
    for days in _circular_runs(closed_day):
        hours = tuple(d * 24 + h for d in days for h in range(24))
        gaps.append(_gap(cat, GapKind.CLOSED_DAYS, days_text(days), hours))
    by_clock: dict[tuple[int, int], list[int]] = defaultdict(list)
    for day in range(7):
        if closed_day[day]:
            continue
        day_open = [bool(n) for n in cat.open_sites[day * 24 : day * 24 + 24]]
        for start, end in _runs([not is_open for is_open in day_open]):
            by_clock[(start, end)].append(day)
    for (start, end), days in sorted(by_clock.items()):
        hours = tuple(d * 24 + h for d in days for h in range(start, end))
        window = _(
            "%(days)s %(start)s\u2013%(end)s",
            days=days_text(days),
            start=_clock(start),
            end=_clock(end),
        )
        gaps.append(_gap(cat, GapKind.CLOSED_HOURS, window, hours))
    return [g for g in gaps if g.screenings or g.referrals]


def _gap(cat: CategoryCoverage, kind: GapKind, window: str, hours: tuple[int, ...]) -> Gap:
    return Gap(
        cat.code,
        cat.name,
        kind,
        window,
        hours,
        sum(cat.screenings[h] for h in hours),
        sum(cat.referrals[h] for h in hours),
    )


def _runs(flags: Sequence[bool]) -> list[tuple[int, int]]:
    """[start, end) of each run of True values."""
    runs, start = [], None
    for n, flag in enumerate([*flags, False]):
        if flag and start is None:
            start = n
        elif not flag and start is not None:
            runs.append((start, n))
            start = None
    return runs


def _circular_runs(flags: Sequence[bool]) -> list[list[int]]:
    """Runs of True around a circle (the week): Saturday, Sunday, Monday is one run."""
    n = len(flags)
    if all(flags):
        return [list(range(n))]
    first_false = flags.index(False)
    runs: list[list[int]] = []
    current: list[int] = []
    for step in range(1, n + 1):
        i = (first_false + step) % n
        if flags[i]:
            current.append(i)
        elif current:
            runs.append(current)
            current = []
    return runs


def days_text(days: Iterable[int]) -> str:
    """ "Saturday", "Saturday-Sunday" (en dash), "Monday, Wednesday and Friday", "every day"."""
    chosen = sorted(set(days))
    if len(chosen) == 7:
        return _("every day")
    names = [str(WEEKDAYS[d]) for d in chosen]
    if len(chosen) == 1:
        return names[0]
    runs = _circular_runs([d in chosen for d in range(7)])
    if len(runs) == 1:
        run = runs[0]
        return _("%(first)s\u2013%(last)s", first=WEEKDAYS[run[0]], last=WEEKDAYS[run[-1]])
    return format_list(names, locale=get_locale())


def _clock(hour: int) -> str:
    return f"{hour:02d}:00"


# --- the heat map ----------------------------------------------------------------------------

# Five shades from pale to the brand green; the darker two take white text. Cells are also
# labelled by their tooltip and the table beside, so the shade is never the only cue.
SHADES = ("#f3f5f6", "#cde6dc", "#8fc5ae", "#3f8f73", "#0b5d4b")
CELL = 22
LEFT = 96
TOP = 22


def shade_index(value: int, high: int) -> int:
    """0 for nothing, then 1-4 by quarters of the highest value."""
    if value <= 0 or high <= 0:
        return 0
    return min(4, 1 + int(3.999 * value / high))


def heat_map(
    chart_id: str,
    title: str,
    description: str,
    values: Sequence[int],
    closed: Sequence[bool | None] | None = None,
    cell_label: Any = None,
) -> Markup:
    """A 7 x 24 grid (days down, hours across) shaded by value; crossed cells are closed.

    `cell_label(hour, value, closed)` gives each cell's tooltip (default "Monday 14:00: 3").
    """
    if len(values) != HOURS_IN_WEEK:
        raise ValueError("one value per hour of the week")
    closed = closed or [None] * HOURS_IN_WEEK
    width, height = LEFT + 24 * CELL + 8, TOP + 7 * CELL + 36
    high = max(values, default=0)
    ident = "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in chart_id) or "heat"
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart heat-map" role="img" '
        f'viewBox="0 0 {width} {height}" width="100%" preserveAspectRatio="xMinYMin meet" '
        f'font-family="{escape(FONT)}" font-size="11" '
        f'aria-labelledby="{ident}-title {ident}-desc">'
        f'<title id="{ident}-title">{escape(title)}</title>'
        f'<desc id="{ident}-desc">{escape(description)}</desc>'
    ]
    for hour in range(0, 24, 3):
        x = LEFT + hour * CELL + CELL / 2
        parts.append(_svg_text(x, TOP - 6, _clock(hour), anchor="middle", fill=MUTED))
    for day in range(7):
        y = TOP + day * CELL
        parts.append(_svg_text(LEFT - 6, y + CELL / 2 + 4, str(WEEKDAYS[day]), anchor="end"))
        for h in range(24):
            hour = day * 24 + h
            value, is_closed = values[hour], closed[hour]
            x = LEFT + h * CELL
            label = (
                cell_label(hour, value, is_closed)
                if cell_label
                else _("%(hour)s: %(value)s", hour=hour_label(hour), value=value)
            )
            fill = SHADES[shade_index(value, high)]
            parts.append(
                f"<g><title>{escape(label)}</title>"
                f'<rect x="{x}" y="{y}" width="{CELL - 2}" height="{CELL - 2}" fill="{fill}" '
                f'stroke="#c9d1d6" stroke-width="0.5"/>'
            )
            if is_closed:
                # A thin cross: visible on every shade, lighter than the shade itself.
                ink = "#ffffff" if shade_index(value, high) >= 3 else MUTED
                m = 7
                parts.append(
                    f'<path d="M{x + m} {y + m}L{x + CELL - 2 - m} {y + CELL - 2 - m}'
                    f'M{x + CELL - 2 - m} {y + m}L{x + m} {y + CELL - 2 - m}" '
                    f'stroke="{ink}" stroke-width="1"/>'
                )
            parts.append("</g>")
    legend_y = TOP + 7 * CELL + 14
    parts.append(_svg_text(LEFT, legend_y + 10, _("Fewer"), anchor="end", fill=MUTED))
    for n, shade in enumerate(SHADES):
        parts.append(
            f'<rect x="{LEFT + 6 + n * (CELL + 2)}" y="{legend_y}" width="{CELL}" height="12" '
            f'fill="{shade}" stroke="#c9d1d6" stroke-width="0.5"/>'
        )
    parts.append(_svg_text(LEFT + 12 + 5 * (CELL + 2), legend_y + 10, _("More"), fill=MUTED))
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704  (every piece of text above is escaped)


def _svg_text(x: float, y: float, text: str, *, anchor: str = "start", fill: str = INK) -> str:
    return f'<text x="{x:g}" y="{y:g}" text-anchor="{anchor}" fill="{fill}">{escape(text)}</text>'
