"""The offline backend: gazetteer, ZIP centroids, "lat,lon" input and a travel estimator.

Needs no network and no API key, so it is the default and the fallback of every remote
backend. Its travel times are straight-line distance * circuity at urban speeds, always
labelled estimates (source "estimate").
"""

from __future__ import annotations

import math
import re
from bisect import bisect_left
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from referral_hub.geo import zips
from referral_hub.geo.base import Mode, Place, Point, TravelEstimate, parse_point
from referral_hub.geo.distance import bounding_box, haversine_km, haversine_rad
from referral_hub.geo.gazetteer import FUZZY, MAX_RESULTS, GazetteerIndex, normalize

__all__ = ["OfflineGeo", "bounding_box", "estimate", "haversine_km"]

SOURCE = "offline"

# Street routes are longer than the straight line, less so the longer the trip: short ones
# wind round blocks and one-ways, long ones follow arterials and freeways. US cities measure
# about 1.2-1.4 overall. The factors apply in marginal bands, like tax brackets (the first
# km x1.5, km 1-5 x1.35, ...), so route length rises smoothly with distance and a farther
# place never comes out quicker than a nearer one.
CIRCUITY_BANDS: tuple[tuple[float, float], ...] = (
    (1.0, 1.5),
    (5.0, 1.35),
    (20.0, 1.25),
    (math.inf, 1.2),
)


@dataclass(frozen=True, slots=True)
class ModeModel:
    """How one mode turns route km into minutes, and how far the truth may stray."""

    speeds: tuple[tuple[float, float], ...]  # (route km up to, km/h), marginal like circuity
    overhead_min: float  # fixed minutes whatever the distance
    low: float  # minutes * low .. minutes * high is the range shown
    high: float


MODE_MODELS: dict[Mode, ModeModel] = {
    # ~25 km/h is a city average with lights and turns; past the first 10 km a trip is mostly
    # arterials and freeway at ~45. 3 min to get in, park and walk to the door. Traffic
    # delays a trip far more than it ever speeds one, hence the range skewed upward.
    Mode.DRIVE: ModeModel(((10.0, 25.0), (math.inf, 45.0)), 3.0, 0.8, 1.4),
    # 4.8 km/h (3 mph) is the customary planning pace for pedestrians.
    Mode.WALK: ModeModel(((math.inf, 4.8),), 0.0, 0.9, 1.2),
    # Manual wheelchair users average ~3.6 km/h; missing curb cuts, ramps and detours to
    # reach them make the time less certain than walking.
    Mode.WHEELCHAIR: ModeModel(((math.inf, 3.6),), 0.0, 0.85, 1.3),
}


@dataclass(frozen=True, slots=True)
class Piecewise:
    """An increasing piecewise-linear function from marginal rates per band, as lookup tables.

    f(x) = base[i] + (x - start[i]) * rate[i] for the band i that holds x; bisect on the
    band ends finds i in C, which keeps a 10,000-cell matrix free of Python-level loops.
    """

    ends: tuple[float, ...]
    starts: tuple[float, ...]
    bases: tuple[float, ...]
    rates: tuple[float, ...]

    @classmethod
    def of(cls, bands: Sequence[tuple[float, float]]) -> Piecewise:
        """From (band end, rate) pairs in order; the last end should be math.inf."""
        ends = tuple(end for end, _ in bands)
        starts = (0.0, *ends[:-1])
        rates = tuple(rate for _, rate in bands)
        bases = [0.0]
        for start, end, rate in zip(starts[:-1], ends[:-1], rates[:-1], strict=True):
            bases.append(bases[-1] + (end - start) * rate)
        return cls(ends, starts, tuple(bases), rates)


ROUTE_KM = Piecewise.of(CIRCUITY_BANDS)  # straight-line km → estimated street km


def estimator(mode: Mode) -> Callable[[float], TravelEstimate]:
    """A function from straight-line km to this mode's estimate, with its tables bound."""
    model = MODE_MODELS[mode]
    # Minutes per km of route, band by band.
    pace = Piecewise.of([(end, 60.0 / kmh) for end, kmh in model.speeds])
    overhead, low, high = model.overhead_min, model.low, model.high
    route = ROUTE_KM
    r_ends, r_starts, r_bases, r_rates = route.ends, route.starts, route.bases, route.rates
    p_ends, p_starts, p_bases, p_rates = pace.ends, pace.starts, pace.bases, pace.rates

    def from_km(straight_km: float) -> TravelEstimate:
        # The Piecewise formula twice, inlined with its tables in locals: this runs once per
        # matrix cell, and a 50 x 200 matrix is 10,000 of them.
        i = bisect_left(r_ends, straight_km)
        km = r_bases[i] + (straight_km - r_starts[i]) * r_rates[i]
        j = bisect_left(p_ends, km)
        minutes = overhead + p_bases[j] + (km - p_starts[j]) * p_rates[j]
        return TravelEstimate(minutes, minutes * low, minutes * high, km, mode, "estimate")

    return from_km


ESTIMATORS: dict[Mode, Callable[[float], TravelEstimate]] = {m: estimator(m) for m in Mode}


def estimate(straight_km: float, mode: Mode = Mode.DRIVE) -> TravelEstimate:
    """The offline travel estimate for a straight-line distance."""
    return ESTIMATORS[mode](straight_km)


# A point this close to a known place is at that place (a building's frontage and car park).
NEAR_PLACE_KM = 0.3
# Rural ZIPs span tens of km; a point farther than this from every residential ZIP centroid
# is not in a populated US area, and naming a ZIP for it would mislead.
ZIP_REVERSE_MAX_KM = 40.0

# A ZIP (or ZIP+4, its hyphen already a space) at the end of normalized text: "55411",
# "zip 55411", "minneapolis mn 55411". Only at the end, so "12345 main st" stays an address.
_ZIP_AT_END = re.compile(r"(?:^|\s)(\d{5})(?:\s\d{4})?$")
_ZIP_WORDS = frozenset({"zip", "zipcode", "code", "postal", "us", "usa"})


def _names_only_the_zip(rest: str, centroid: zips.ZipCentroid) -> bool:
    """True when the words beside a ZIP only name it ("zip", its city, its state)."""
    for city in centroid.cities:
        rest = f" {rest} ".replace(f" {normalize(city)} ", " ")
    allowed = _ZIP_WORDS | {centroid.state.lower()}
    return all(word in allowed for word in rest.split())


class OfflineGeo:
    """GeoBackend without network: gazetteer places, ZIP centroids, lat,lon and estimates."""

    def __init__(self, gazetteer: Callable[[], Sequence[Place]]) -> None:
        self._gazetteer = gazetteer
        self._index = GazetteerIndex(())

    def _current_index(self) -> GazetteerIndex:
        """The index of the gazetteer's current places, rebuilt only when they change."""
        places = self._gazetteer()
        index = self._index
        # A caching loader hands back the same sequence until it reloads: compare identity.
        if index.places is not places:
            index = self._index = GazetteerIndex(places)
        return index

    def geocode(self, text: str) -> list[Place]:
        """Places `text` may mean: coordinates, a ZIP, or gazetteer names and addresses."""
        text = (text or "").strip()
        if not text:
            return []
        point = parse_point(text)
        if point:
            name = f"{point.lat:.5f}, {point.lon:.5f}"
            return [Place(name, point, None, "coordinates", SOURCE)]
        query = normalize(text)
        found = _ZIP_AT_END.search(query)
        centroid = zips.lookup(found.group(1)) if found else None
        if found is None or centroid is None:
            return [m.place for m in self._current_index().search(query)]
        rest = query[: found.start()].strip()
        if _names_only_the_zip(rest, centroid):
            return [centroid.to_place()]
        # An address with its ZIP: the gazetteer's close matches first, then the ZIP area,
        # then typo-level guesses, which are worth less than a ZIP the person typed.
        matches = self._current_index().search(query, rest)
        strong = [m.place for m in matches if m.tier > FUZZY]
        weak = [m.place for m in matches if m.tier == FUZZY]
        return [*strong, centroid.to_place(), *weak][:MAX_RESULTS]

    def reverse(self, point: Point) -> Place | None:
        """The gazetteer place within 300 m, else the nearest ZIP area, else None."""
        min_lat, min_lon, max_lat, max_lon = bounding_box(point, NEAR_PLACE_KM)
        best: Place | None = None
        best_km = NEAR_PLACE_KM
        for place in self._current_index().near(min_lat, min_lon, max_lat, max_lon):
            km = haversine_km(point, place.point)
            if km <= best_km:
                best, best_km = place, km
        if best:
            return best
        centroid = zips.nearest(point, ZIP_REVERSE_MAX_KM)
        return centroid.to_place() if centroid else None

    def travel(self, origin: Point, dest: Point, mode: Mode = Mode.DRIVE) -> TravelEstimate:
        """Estimated travel from straight-line distance; never routed, never None."""
        return estimate(haversine_km(origin, dest), mode)

    def matrix(
        self, origins: Sequence[Point], dests: Sequence[Point], mode: Mode = Mode.DRIVE
    ) -> list[list[TravelEstimate | None]]:
        """travel() for every pair; every cell filled, since nothing is unreachable here."""
        radians, cos, estimate_km = math.radians, math.cos, ESTIMATORS[mode]
        cols = [(radians(d.lat), radians(d.lon), cos(radians(d.lat))) for d in dests]
        rows: list[list[TravelEstimate | None]] = []
        for o in origins:
            lat1, lon1 = radians(o.lat), radians(o.lon)
            cos1 = cos(lat1)
            rows.append(
                [
                    estimate_km(haversine_rad(lat1, lon1, cos1, lat2, lon2, cos2))
                    for lat2, lon2, cos2 in cols
                ]
            )
        return rows
