"""Opening hours in the city's time zone: open at a moment, and when next open.

Weekly hours are (weekday, opens, closes) with Monday = 0; a close at or before the
opening time means the interval runs past midnight into the next day. A dated exception
replaces the regular hours of intervals that start on that date.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo


@dataclass(frozen=True)
class Interval:
    weekday: int
    opens: time
    closes: time


@dataclass(frozen=True)
class Exception_:
    closed: bool
    opens: time | None = None
    closes: time | None = None


def _intervals_on(
    day: date, weekly: Iterable[Interval], exceptions: Mapping[date, Exception_]
) -> list[tuple[datetime, datetime]]:
    """Naive local (start, end) intervals that start on `day`."""
    special = exceptions.get(day)
    if special is not None:
        if special.closed or special.opens is None or special.closes is None:
            return []
        spans = [(special.opens, special.closes)]
    else:
        spans = [(i.opens, i.closes) for i in weekly if i.weekday == day.weekday()]
    result = []
    for opens, closes in spans:
        start = datetime.combine(day, opens)
        end = datetime.combine(day, closes)
        if end <= start:
            end += timedelta(days=1)
        result.append((start, end))
    return result


def is_open(
    at: datetime,
    tz: ZoneInfo,
    *,
    open_24_7: bool,
    weekly: Iterable[Interval],
    exceptions: Mapping[date, Exception_] | None = None,
) -> bool:
    """Whether a program site is open at an aware moment."""
    if open_24_7:
        return True
    local = at.astimezone(tz).replace(tzinfo=None)
    weekly = list(weekly)
    exceptions = exceptions or {}
    for day in (local.date() - timedelta(days=1), local.date()):
        for start, end in _intervals_on(day, weekly, exceptions):
            if start <= local < end:
                return True
    return False


def next_opening(
    at: datetime,
    tz: ZoneInfo,
    *,
    open_24_7: bool,
    weekly: Iterable[Interval],
    exceptions: Mapping[date, Exception_] | None = None,
    horizon_days: int = 14,
) -> datetime | None:
    """The next aware moment the site opens (now if open), within a horizon, else None."""
    if open_24_7:
        return at
    weekly = list(weekly)
    exceptions = exceptions or {}
    local = at.astimezone(tz).replace(tzinfo=None)
    for offset in range(-1, horizon_days + 1):
        day = local.date() + timedelta(days=offset)
        for start, end in sorted(_intervals_on(day, weekly, exceptions)):
            if start <= local < end:
                return at
            if start > local:
                return start.replace(tzinfo=tz)
    return None
