"""Opening hours: weekly intervals, after-midnight closes, exceptions, 24/7, time zones."""

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

import pytest

from referral_hub.directory.hours import Exception_, Interval, is_open, next_opening

CHI = ZoneInfo("America/Chicago")
WEEKDAYS_9_TO_5 = [Interval(d, time(9), time(17)) for d in range(5)]
NIGHT_SHELTER = [Interval(d, time(19), time(7)) for d in range(7)]


def local(*args):
    return datetime(*args, tzinfo=CHI)


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (local(2026, 11, 23, 9, 0), True),  # Monday at opening
        (local(2026, 11, 23, 16, 59), True),
        (local(2026, 11, 23, 17, 0), False),  # closing time is exclusive
        (local(2026, 11, 28, 12, 0), False),  # Saturday
    ],
)
def test_weekday_hours(moment, expected):
    assert is_open(moment, CHI, open_24_7=False, weekly=WEEKDAYS_9_TO_5) is expected


def test_after_midnight_close_counts_on_the_next_day():
    assert is_open(local(2026, 11, 24, 3, 0), CHI, open_24_7=False, weekly=NIGHT_SHELTER)
    assert not is_open(local(2026, 11, 24, 12, 0), CHI, open_24_7=False, weekly=NIGHT_SHELTER)


def test_utc_input_is_judged_in_city_time():
    # 15:30 UTC on a Monday in November is 09:30 in Minneapolis.
    assert is_open(
        datetime(2026, 11, 23, 15, 30, tzinfo=UTC), CHI, open_24_7=False, weekly=WEEKDAYS_9_TO_5
    )
    assert not is_open(
        datetime(2026, 11, 23, 14, 30, tzinfo=UTC), CHI, open_24_7=False, weekly=WEEKDAYS_9_TO_5
    )


def test_exceptions_close_or_change_a_day():
    thanksgiving = {date(2026, 11, 26): Exception_(closed=True)}
    assert not is_open(
        local(2026, 11, 26, 10, 0),
        CHI,
        open_24_7=False,
        weekly=WEEKDAYS_9_TO_5,
        exceptions=thanksgiving,
    )
    short = {date(2026, 11, 27): Exception_(closed=False, opens=time(9), closes=time(12))}
    assert not is_open(
        local(2026, 11, 27, 13, 0), CHI, open_24_7=False, weekly=WEEKDAYS_9_TO_5, exceptions=short
    )


def test_24_7():
    assert is_open(local(2026, 11, 29, 4, 0), CHI, open_24_7=True, weekly=[])


def test_next_opening():
    friday_evening = local(2026, 11, 27, 18, 0)
    assert next_opening(friday_evening, CHI, open_24_7=False, weekly=WEEKDAYS_9_TO_5) == local(
        2026, 11, 30, 9, 0
    )
    monday_noon = local(2026, 11, 30, 12, 0)
    assert next_opening(monday_noon, CHI, open_24_7=False, weekly=WEEKDAYS_9_TO_5) == monday_noon
    assert next_opening(monday_noon, CHI, open_24_7=False, weekly=[]) is None
