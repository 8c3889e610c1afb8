"""The geo interface: points, places, travel estimates and the protocol every backend follows.

Coordinates are (lat, lon) everywhere inside the app; only an adapter that talks to a
(lon, lat) service (openrouteservice, GeoJSON) swaps them, at its edge.
"""

from __future__ import annotations

import enum
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

from flask_babel import lazy_gettext as _l

PlaceKind = Literal["coordinates", "zip", "site", "landmark", "address"]
TravelSource = Literal["estimate", "routed"]


@dataclass(frozen=True, slots=True)
class Point:
    """A WGS 84 position in decimal degrees; raises ValueError when out of range."""

    lat: float
    lon: float

    def __post_init__(self) -> None:
        # math.isfinite first: NaN compares false with everything and would slip through.
        if not (math.isfinite(self.lat) and -90.0 <= self.lat <= 90.0):
            raise ValueError(f"latitude out of range: {self.lat!r}")
        if not (math.isfinite(self.lon) and -180.0 <= self.lon <= 180.0):
            raise ValueError(f"longitude out of range: {self.lon!r}")


@dataclass(frozen=True, slots=True)
class Place:
    """A named position a backend found or knows; `address` is the postal address if any."""

    name: str
    point: Point
    postal_code: str | None
    kind: PlaceKind
    source: str  # which backend answered: "offline", later "nominatim", "pelias", ...
    address: str | None = None


class Mode(enum.StrEnum):
    """How the person travels; each backend maps it to its own profile."""

    DRIVE = "drive"
    WALK = "walk"
    WHEELCHAIR = "wheelchair"

    @property
    def title(self) -> str:
        return str(MODE_TITLES[self])


MODE_TITLES = {
    Mode.DRIVE: _l("Drive"),
    Mode.WALK: _l("Walk"),
    Mode.WHEELCHAIR: _l("Wheelchair"),
}


@dataclass(frozen=True, slots=True)
class TravelEstimate:
    """Door-to-door travel time with a low-high range; `source` says whether it was routed."""

    minutes: float
    minutes_low: float
    minutes_high: float
    distance_km: float
    mode: Mode
    source: TravelSource
    note: str | None = None  # translated, shown beside the time (e.g. why it is estimated)

    @property
    def estimated(self) -> bool:
        """True unless a routing service computed this over the street network."""
        return self.source == "estimate"


class GeoUnavailable(Exception):
    """A remote backend could not answer (timeout, quota, HTTP error); the caller falls back.

    Adapters translate their client's own exceptions into this one, so that a fallback
    catches service failures and nothing else: a programming error still surfaces.
    """


@runtime_checkable
class GeoBackend(Protocol):
    """Where is this, how long from A to B, how long from many to many."""

    def geocode(self, text: str) -> list[Place]:
        """Places that `text` may mean, best first; empty when nothing fits."""
        ...

    def reverse(self, point: Point) -> Place | None:
        """The known place at or nearest to `point`, or None."""
        ...

    def travel(self, origin: Point, dest: Point, mode: Mode = Mode.DRIVE) -> TravelEstimate:
        """Travel time and distance from `origin` to `dest`."""
        ...

    def matrix(
        self, origins: Sequence[Point], dests: Sequence[Point], mode: Mode = Mode.DRIVE
    ) -> list[list[TravelEstimate | None]]:
        """One row per origin, one column per destination; None where unreachable."""
        ...


# Two decimal numbers separated by a comma, a semicolon or whitespace, optionally bracketed:
# what people paste from a map app ("44.97, -93.26", "(44.97 -93.26)").
_LAT_LON_RE = re.compile(
    r"""^\s*[(\[]?\s*
        (?P<lat>[+-]?\d{1,2}(?:\.\d+)?)
        \s*(?:[,;]\s*|\s+)
        (?P<lon>[+-]?\d{1,3}(?:\.\d+)?)
        \s*[)\]]?\s*$""",
    re.VERBOSE,
)


def parse_point(text: str) -> Point | None:
    """The Point written as "lat,lon" (or "lat lon") in `text`; None if it is not one."""
    match = _LAT_LON_RE.match(text or "")
    if not match:
        return None
    try:
        return Point(float(match["lat"]), float(match["lon"]))
    except ValueError:
        return None
