"""An in-process LRU + TTL cache of routed answers, so the same trip is not asked twice.

Keys are (profile, origin, destination, hour of week): coordinates rounded to 4 decimals
(about 11 m, well inside a phone's GPS error, so fixes taken at the same door share an
answer) and the hour of the week in the city's time zone, so that a server routing with
time-dependent speeds is asked again when the hour changes, but not within it.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Literal
from zoneinfo import ZoneInfo

from referral_hub.geo.base import Point

DEFAULT_MAX_ENTRIES = 10_000
DEFAULT_TTL_SECONDS = 24 * 3600.0
DECIMALS = 4

Which = Literal["origin", "destination"]
Key = tuple[str, float, float, float, float, int]


@dataclass(frozen=True, slots=True)
class Leg:
    """A routed trip: the service's duration and distance."""

    seconds: float
    meters: float


@dataclass(frozen=True, slots=True)
class NoRoute:
    """The service answered that there is no route; `point` is the end it could not reach."""

    point: Which | None = None


Answer = Leg | NoRoute


class RouteCache:
    """Routed answers by rounded trip and hour of week; thread-safe, bounded, expiring."""

    def __init__(
        self,
        tz: tzinfo | str = "UTC",
        *,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        ttl: float = DEFAULT_TTL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[tzinfo], datetime] = datetime.now,
    ) -> None:
        self.tz = ZoneInfo(tz) if isinstance(tz, str) else tz
        self.max_entries = max_entries
        self.ttl = ttl
        self._clock = clock
        self._now = now
        self._lock = threading.Lock()
        self._entries: OrderedDict[Key, tuple[float, Answer]] = OrderedDict()

    def hour_of_week(self) -> int:
        """0 (Monday 00:00-00:59) to 167 (Sunday 23:00-23:59), in the city's time zone."""
        local = self._now(self.tz)
        return local.weekday() * 24 + local.hour

    @staticmethod
    def key(profile: str, origin: Point, dest: Point, hour: int) -> Key:
        """The cache key of one trip; take `hour` once per request so its cells agree."""
        return (
            profile,
            round(origin.lat, DECIMALS),
            round(origin.lon, DECIMALS),
            round(dest.lat, DECIMALS),
            round(dest.lon, DECIMALS),
            hour,
        )

    def get(self, key: Key) -> Answer | None:
        """The answer kept for `key`, or None when there is none or it has expired."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            expires, answer = entry
            if self._clock() >= expires:
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
            return answer

    def put(self, key: Key, answer: Answer) -> None:
        """Keep `answer` for the TTL, dropping the least recently used beyond the bound."""
        with self._lock:
            self._entries[key] = (self._clock() + self.ttl, answer)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        """Forget every answer."""
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)
