"""City time in SQL: the local date, week or hour of a UTC timestamp column.

PostgreSQL converts with timezone(); SQLite knows no time zones, so the column is shifted by
the UTC offset in force, step by step over the range the query covers.
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import Date, case, cast, func, literal, type_coerce

from referral_hub.core.db import UTCDateTime, city_tz


def offset_steps(tz: ZoneInfo, low: datetime, high: datetime) -> list[tuple[datetime, int]]:
    """The city's UTC offset from `low` to `high` as steps [(from, seconds), ...].

    zoneinfo does not list its transitions: walk the range a day at a time and bisect each
    change to the minute (offsets change on whole minutes).
    """

    def offset(minute: int) -> int:
        moment = datetime.fromtimestamp(minute * 60, UTC)
        return int(moment.astimezone(tz).utcoffset().total_seconds())

    first, last = int(low.timestamp()) // 60, int(high.timestamp()) // 60 + 1
    steps = [(low, offset(first))]
    for day_start in range(first, last, 24 * 60):
        a, b = day_start, min(day_start + 24 * 60, last)
        if offset(a) == offset(b):
            continue
        while b - a > 1:
            middle = (a + b) // 2
            a, b = (middle, b) if offset(middle) == offset(a) else (a, middle)
        steps.append((datetime.fromtimestamp(b * 60, UTC), offset(b)))
    return steps


def sqlite_local(column, low: datetime, high: datetime):
    """SQLite: the column's city wall-clock time, for timestamps between `low` and `high`."""
    steps = offset_steps(city_tz(), low, high)
    if len(steps) == 1:
        shift = literal(f"{steps[0][1]} seconds")
    else:
        shift = case(
            *[
                (column < literal(steps[i + 1][0], UTCDateTime()), f"{steps[i][1]} seconds")
                for i in range(len(steps) - 1)
            ],
            else_=f"{steps[-1][1]} seconds",
        )
    return func.datetime(column, shift)


def local_date(dialect: str, column, low: datetime, high: datetime):
    """The city date of a UTC timestamp column (values between `low` and `high` on SQLite)."""
    if dialect == "postgresql":
        return cast(func.timezone(city_tz().key, column), Date)
    return type_coerce(func.date(sqlite_local(column, low, high)), Date())
