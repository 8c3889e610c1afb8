"""Unmet need: each screening recorded without anything that identifies the person, and
what people needed and did not find, by category, ZIP code and hour of the week.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import Select, case, exists, func, literal, not_, select, true

from referral_hub.core.db import city_tz
from referral_hub.directory.models import CapacityStatus
from referral_hub.extensions import db
from referral_hub.insights.metrics import start_of_day
from referral_hub.insights.models import ScreeningHourTally, ScreeningRecord
from referral_hub.insights.tallies import needs_rows
from referral_hub.matching.operations import Matches
from referral_hub.matching.questions import CATEGORY_OPTIONS, SCREENER_VERSION

ZIP_RE = re.compile(r"(\d{5})(?:-\d{4})?")
HOURS_IN_WEEK = 7 * 24
COUNTED = ("screenings", "no_eligible", "none_open", "no_capacity")
NEED_LABELS = {option.value: option.label for option in CATEGORY_OPTIONS}

WEEKDAYS = (
    _l("Monday"),
    _l("Tuesday"),
    _l("Wednesday"),
    _l("Thursday"),
    _l("Friday"),
    _l("Saturday"),
    _l("Sunday"),
)


def record_screening(
    answers: Mapping[str, Any],
    result: Matches,
    referring_org_id: int | None,
    now: datetime | None = None,
) -> ScreeningRecord:
    """Add the anonymous record of one screening and its match (flushes, never commits).

    Kept: the needs asked for, the ZIP code of the place searched from, the hour (city time),
    and how far the match got — a program eligible, one of those open at that time, one of
    those open taking referrals. Nothing else from the answers is kept.
    """
    now = now or result.at  # the time the match was made for
    local = now.astimezone(city_tz())
    # Shown results are capped, but eligible ones are ranked open-first, so an eligible
    # program open at that time is always among them when there is one.
    open_now = [m for m in result.eligible if m.site is not None and m.site.open_at_time]
    any_capacity = any(
        m.capacity_status == CapacityStatus.CAPACITY and (m.open_slots is None or m.open_slots > 0)
        for m in open_now
    )
    needs = answers.get("needs") or []
    record = ScreeningRecord(
        created_at=now.replace(minute=0, second=0, microsecond=0),
        hour_of_week=local.weekday() * 24 + local.hour,
        zip=_zip(result.location.postal_code if result.location else None),
        needs=sorted({str(code) for code in ([needs] if isinstance(needs, str) else needs)}),
        any_eligible=bool(result.eligible) or bool(result.counts.get("eligible")),
        any_open=bool(open_now),
        any_capacity=any_capacity,
        referring_org_id=referring_org_id,
        screener_version=SCREENER_VERSION,
    )
    db.session.add(record)
    db.session.flush()
    return record


def _zip(postal_code: str | None) -> str | None:
    """The 5-digit ZIP code, or nothing: never a finer place."""
    found = ZIP_RE.fullmatch((postal_code or "").strip())
    return found.group(1) if found else None


# --- aggregates ----------------------------------------------------------------------------


class NeedDimension(enum.StrEnum):
    CATEGORY = "category"  # a screening counts once for each need asked for
    ZIP = "zip"
    HOUR_OF_WEEK = "hour_of_week"

    @property
    def title(self) -> str:
        return str(NEED_DIMENSION_TITLES[self])


NEED_DIMENSION_TITLES = {
    NeedDimension.CATEGORY: _l("Need"),
    NeedDimension.ZIP: _l("ZIP code"),
    NeedDimension.HOUR_OF_WEEK: _l("Hour of the week"),
}


@dataclass(frozen=True)
class ScreeningFilters:
    """Which screenings count. Dates are days in the city's time zone, both ends included."""

    start: date | None = None
    end: date | None = None
    category: str | None = None  # screenings that asked for this need
    zip: str | None = None
    referring_org_id: int | None = None


@dataclass(frozen=True)
class NeedRow:
    """Screenings in one group and why those that found nothing did not."""

    key: Any  # category code, ZIP code or hour of week (0 = Monday 00:00); None for all
    label: str
    screenings: int = 0
    no_eligible: int = 0  # no program the person qualified for
    none_open: int = 0  # qualified, but nothing open at that hour
    no_capacity: int = 0  # open, but not taking referrals

    @property
    def unmet(self) -> int:
        return self.no_eligible + self.none_open + self.no_capacity

    @property
    def unmet_share(self) -> float | None:
        return self.unmet / self.screenings if self.screenings else None


def _needs_table():
    """The needs of a screening as rows (a table-valued function of its JSON list)."""
    return needs_rows(db.session.get_bind().dialect.name)


def unmet_need(
    filters: ScreeningFilters | None = None, by: NeedDimension | None = None
) -> list[NeedRow]:
    """Screenings and unmet need per group; by hour of week, all 168 hours come back."""
    filters = filters or ScreeningFilters()
    stmt = _from_tallies(filters, by) if _tallied(filters, by) else _from_records(filters, by)
    rows = {
        row.key: NeedRow(
            key=None if by is None else row.key,
            label=_need_label(by, row.key),
            screenings=int(row.screenings),
            no_eligible=int(row.no_eligible),
            none_open=int(row.none_open),
            no_capacity=int(row.no_capacity),
        )
        for row in db.session.execute(stmt)
    }
    if by is None:
        return list(rows.values()) or [NeedRow(key=None, label=_("All screenings"))]
    if by is NeedDimension.HOUR_OF_WEEK:
        return [
            rows.get(hour) or NeedRow(key=hour, label=hour_label(hour))
            for hour in range(HOURS_IN_WEEK)
        ]
    return sorted(rows.values(), key=lambda r: (r.key is None, -r.unmet, r.label.casefold()))


def _tallied(filters: ScreeningFilters, by: NeedDimension | None) -> bool:
    """The hourly tallies hold no ZIP code, nor which needs a screening asked for together."""
    if filters.zip is not None or by is NeedDimension.ZIP:
        return False
    return not (by is NeedDimension.CATEGORY and filters.category is not None)


def _from_tallies(filters: ScreeningFilters, by: NeedDimension | None) -> Select:
    """The counts from the hourly tallies (insights.tallies), for what they can answer."""
    t = ScreeningHourTally
    if by is NeedDimension.CATEGORY:
        key = func.nullif(t.need, "")  # "" counts the screenings that named no need
        need = t.need.is_not(None)
    else:
        key = literal("all") if by is None else t.hour_of_week
        # Once each, or once for the need asked about.
        need = t.need.is_(None) if filters.category is None else t.need == filters.category
    stmt = select(
        key.label("key"),
        *[func.sum(getattr(t, name)).label(name) for name in COUNTED],
    ).where(need)
    if filters.start is not None:
        stmt = stmt.where(t.day >= filters.start)
    if filters.end is not None:
        stmt = stmt.where(t.day <= filters.end)
    if filters.referring_org_id is not None:
        stmt = stmt.where(t.referring_org_id == filters.referring_org_id)
    return stmt.group_by(key)


def _from_records(filters: ScreeningFilters, by: NeedDimension | None) -> Select:
    """The counts from the screening records themselves."""
    record = ScreeningRecord
    if by is None:
        key = literal("all")
    elif by is NeedDimension.CATEGORY:
        needs = _needs_table().alias("need")
        key = needs.c.value
    elif by is NeedDimension.ZIP:
        key = record.zip
    else:
        key = record.hour_of_week
    stmt = select(
        key.label("key"),
        func.count().label("screenings"),
        func.count(case((not_(record.any_eligible), 1))).label("no_eligible"),
        func.count(case((record.any_eligible & not_(record.any_open), 1))).label("none_open"),
        func.count(case((record.any_open & not_(record.any_capacity), 1))).label("no_capacity"),
    ).select_from(record)
    if by is NeedDimension.CATEGORY:
        # LEFT: a screening that named no need still counts, under "no need stated".
        stmt = stmt.outerjoin(needs, true())

    tz = city_tz()
    if filters.start is not None:
        stmt = stmt.where(record.created_at >= start_of_day(filters.start, tz))
    if filters.end is not None:
        stmt = stmt.where(record.created_at < start_of_day(filters.end + timedelta(days=1), tz))
    if filters.zip is not None:
        stmt = stmt.where(record.zip == filters.zip)
    if filters.referring_org_id is not None:
        stmt = stmt.where(record.referring_org_id == filters.referring_org_id)
    if filters.category is not None:
        asked = _needs_table().alias("asked")
        stmt = stmt.where(
            exists(select(1).select_from(asked).where(asked.c.value == filters.category))
        )
    return stmt.group_by(key)


def hour_label(hour_of_week: int) -> str:
    """ "Monday 14:00" for hour 14 of the week."""
    day, hour = divmod(hour_of_week, 24)
    return _("%(day)s %(hour)02d:00", day=WEEKDAYS[day], hour=hour)


def _need_label(by: NeedDimension | None, key: Any) -> str:
    if by is None:
        return _("All screenings")
    if by is NeedDimension.CATEGORY:
        # Needs are the screener's options (validated), so their labels name them.
        return str(NEED_LABELS.get(key, key)) if key is not None else _("No need stated")
    if by is NeedDimension.ZIP:
        return key or _("Place not given")
    return hour_label(key)
