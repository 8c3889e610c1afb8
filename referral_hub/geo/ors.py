"""openrouteservice (ORS v2) travel times: directions and matrix, cached, failing soft.

Service failures (429, 403, 5xx, timeout, unreachable) raise GeoUnavailable with the
reason, so FallbackGeo logs it and answers with the offline estimate and its note. "No
route" (code 2009) and "point not routable" (2010) are answers, not failures: travel()
returns the offline estimate with a note saying why (and which end could not be placed on
a road), matrix() leaves the cell None (unreachable). Either way booking goes on.

Coordinates are (lat, lon) in the app; this module alone turns them into ORS's (lon, lat).
"""

from __future__ import annotations

import dataclasses
import logging
import re
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import openrouteservice
import requests
from flask_babel import gettext as _
from openrouteservice import exceptions as ors_errors

from referral_hub.geo.base import GeoUnavailable, Mode, Place, Point, TravelEstimate
from referral_hub.geo.distance import haversine_km
from referral_hub.geo.geocoders import Geocoder
from referral_hub.geo.offline import estimate as offline_estimate
from referral_hub.geo.routecache import Answer, Leg, NoRoute, RouteCache, Which

log = logging.getLogger(__name__)

PROFILES: dict[Mode, str] = {
    Mode.DRIVE: "driving-car",
    Mode.WALK: "foot-walking",
    Mode.WHEELCHAIR: "wheelchair",
}

# The low-high range around a routed time. ORS drives at free-flow road speeds, so traffic
# and parking stretch a drive more than anything shortens it; a walk varies with the
# walker; wheelchair pace varies most between users (as in the offline model).
BANDS: dict[Mode, tuple[float, float]] = {
    Mode.DRIVE: (0.9, 1.25),
    Mode.WALK: (0.9, 1.15),
    Mode.WHEELCHAIR: (0.85, 1.3),
}

DEFAULT_TIMEOUT = 5.0
# How far from a road or path a point may be and still be routed, per point. A phone's fix
# indoors or between tall buildings is often 100 m or more off, and a person may stand in a
# park or a car park: 350 m is generous for that, and sent explicitly so that it holds
# whatever the server's own default. Operators may widen it (the server may cap it).
DEFAULT_SNAP_RADIUS_M = 350.0
# A self-hosted ORS allows 2,500 matrix cells per request by default (the public API 3,500).
DEFAULT_MATRIX_MAX_CELLS = 2500

NO_ROUTE_CODES = frozenset({2009})  # directions: route could not be found
POINT_CODES = frozenset({2010, 6010})  # directions / matrix: point not found near a road
# "Could not find routable point within a radius of 350.0 meters of specified coordinate
# 1: ..." (ORS 7+) and "Could not find point 1: ... within a radius of ..." (older).
_POINT_INDEX = re.compile(r"(?:coordinate|point)\s+(\d+)\s*:")
_STATUS_REASONS = {
    429: "rate limited",
    401: "refused the API key",
    403: "refused the API key, or its quota is used up",
    404: "not found (check ORS_BASE_URL and that the server offers this profile)",
}
# The ends of a directions request, by their index in its coordinates.
_ENDS: dict[int | None, Which] = {0: "origin", 1: "destination"}


class Unroutable(GeoUnavailable):
    """ORS found no route, or could not place location `index` of the request on a road."""

    def __init__(self, message: str, index: int | None = None) -> None:
        super().__init__(message)
        self.index = index


class _ServiceBusy(Exception):
    """A 503 from ORS, raised before the client's own retry loop can start."""


def _stop_on_503(response: requests.Response, *args: Any, **kwargs: Any) -> None:
    # openrouteservice.Client retries a 503 on its own, sleeping longer each time, for up to
    # retry_timeout; someone is waiting for this answer, so a 503 ends the call at once.
    if response.status_code == 503:
        raise _ServiceBusy(f"HTTP 503: {response.text[:200]}")


# What a request may raise for reasons outside this program; the rest are bugs and surface.
_CLIENT_ERRORS = (
    ors_errors.ApiError,
    ors_errors.HTTPError,
    ors_errors.Timeout,
    _ServiceBusy,
    requests.RequestException,
)


def _lon_lat(point: Point) -> list[float]:
    return [point.lon, point.lat]


def _error_detail(body: Any) -> tuple[int | None, str]:
    """ORS's error code and message from {"error": {"code", "message"}} or {"error": "..."}."""
    error = body.get("error", body) if isinstance(body, Mapping) else body
    if isinstance(error, Mapping):
        code = error.get("code")
        return (code if isinstance(code, int) else None), str(error.get("message") or "")
    return None, str(error or "")


def _failure(error: Exception, timeout: float) -> GeoUnavailable:
    """The GeoUnavailable (or Unroutable) that says what went wrong with an ORS call."""
    if isinstance(error, ors_errors.ApiError):
        code, message = _error_detail(error.message)
        if code in NO_ROUTE_CODES:
            return Unroutable(f"openrouteservice found no route (code {code}): {message}")
        if code in POINT_CODES:
            found = _POINT_INDEX.search(message)
            index = int(found.group(1)) if found else None
            return Unroutable(f"openrouteservice: point not routable: {message}", index)
        status = error.status
        reason = _STATUS_REASONS.get(status) or (
            "server error" if isinstance(status, int) and status >= 500 else "refused the request"
        )
        detail = f"HTTP {status}" + (f", code {code}" if code is not None else "")
        return GeoUnavailable(f"openrouteservice {reason} ({detail}): {message}")
    if isinstance(error, ors_errors.HTTPError):
        return GeoUnavailable(f"openrouteservice answered HTTP {error.status_code}, not JSON")
    if isinstance(error, _ServiceBusy):
        return GeoUnavailable(f"openrouteservice unavailable ({error})")
    if isinstance(error, ors_errors.Timeout | requests.Timeout):
        return GeoUnavailable(f"openrouteservice timed out after {timeout:g} s")
    return GeoUnavailable(f"openrouteservice unreachable: {error}")


def routed(leg: Leg, mode: Mode) -> TravelEstimate:
    """The TravelEstimate for a routed leg, with the mode's band around its time."""
    minutes = leg.seconds / 60.0
    low, high = BANDS[mode]
    return TravelEstimate(
        minutes, minutes * low, minutes * high, leg.meters / 1000.0, mode, "routed"
    )


def no_route_note(point: Which | None, mode: Mode) -> str:
    """Why a trip shows an estimate although routing works, for the responder to read."""
    # Translated when the answer is made, in the language of the request asking.
    if point == "origin":
        return _(
            "The starting point is too far from a road or path to route from; "
            "time estimated from straight-line distance."
        )
    if point == "destination":
        return _(
            "The destination is too far from a road or path to route to; "
            "time estimated from straight-line distance."
        )
    if mode is Mode.WHEELCHAIR:
        return _(
            "No wheelchair-accessible route found between these places; "
            "time estimated from straight-line distance."
        )
    return _("No route found between these places; time estimated from straight-line distance.")


def _cell(durations: Any, distances: Any, row: int, col: int) -> Answer:
    """One matrix cell; null (even a whole null row) is ORS's "no route between these"."""
    seconds = None if durations[row] is None else durations[row][col]
    meters = None if distances[row] is None else distances[row][col]
    if seconds is None or meters is None:
        return NoRoute()
    return Leg(float(seconds), float(meters))


class OrsGeo:
    """GeoBackend routing on an openrouteservice server; geocoding is `geocoder`'s job."""

    def __init__(
        self,
        base_url: str,
        *,
        key: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        snap_radius_m: float = DEFAULT_SNAP_RADIUS_M,
        matrix_max_cells: int = DEFAULT_MATRIX_MAX_CELLS,
        cache: RouteCache | None = None,
        geocoder: Geocoder | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.key = key or None
        self.timeout = timeout
        self.snap_radius_m = snap_radius_m
        self.matrix_max_cells = max(1, int(matrix_max_cells))
        self.cache = cache if cache is not None else RouteCache()
        self.geocoder = geocoder
        # One client per thread: the client keeps per-call state on itself and a
        # requests.Session is not documented as thread-safe.
        self._local = threading.local()
        self._client()  # a bad key/URL combination fails now, not at the first trip

    def __repr__(self) -> str:
        return f"OrsGeo({self.base_url!r})"

    def _client(self) -> openrouteservice.Client:
        client = getattr(self._local, "client", None)
        if client is None:
            client = self._local.client = openrouteservice.Client(
                key=self.key,
                base_url=self.base_url,
                timeout=self.timeout,
                retry_timeout=self.timeout,
                retry_over_query_limit=False,
                requests_kwargs={"hooks": {"response": [_stop_on_503]}},
            )
        return client

    def _call(self, request: Callable[[openrouteservice.Client], Any]) -> Mapping[str, Any]:
        """The JSON body of one ORS request; GeoUnavailable (with the reason) on failure."""
        try:
            body = request(self._client())
        except _CLIENT_ERRORS as error:
            raise _failure(error, self.timeout) from error
        if not isinstance(body, Mapping):
            raise GeoUnavailable(f"openrouteservice answered {type(body).__name__}, not an object")
        return body

    def geocode(self, text: str) -> list[Place]:
        """The geocoder's places for `text`; GeoUnavailable without one, so fallback answers."""
        if self.geocoder is None:
            raise GeoUnavailable("no geocoder configured beside openrouteservice")
        return self.geocoder.geocode(text)

    def reverse(self, point: Point) -> Place | None:
        """The geocoder's place at `point`; GeoUnavailable without one."""
        if self.geocoder is None:
            raise GeoUnavailable("no geocoder configured beside openrouteservice")
        return self.geocoder.reverse(point)

    def travel(self, origin: Point, dest: Point, mode: Mode = Mode.DRIVE) -> TravelEstimate:
        """The routed trip, from the cache when asked before; an estimate with a note if none."""
        profile = PROFILES[mode]
        key = self.cache.key(profile, origin, dest, self.cache.hour_of_week())
        answer = self.cache.get(key)
        if answer is None:
            answer = self._directions(profile, origin, dest)
            self.cache.put(key, answer)
        if isinstance(answer, Leg):
            return routed(answer, mode)
        estimate = offline_estimate(haversine_km(origin, dest), mode)
        return dataclasses.replace(estimate, note=no_route_note(answer.point, mode))

    def _directions(self, profile: str, origin: Point, dest: Point) -> Answer:
        radius = self.snap_radius_m
        try:
            body = self._call(
                lambda client: client.directions(
                    [_lon_lat(origin), _lon_lat(dest)],
                    profile=profile,
                    format="json",
                    radiuses=[radius, radius],
                    instructions=False,
                    geometry=False,
                )
            )
        except Unroutable as error:
            log.info("no %s route from %s to %s: %s", profile, origin, dest, error)
            return NoRoute(_ENDS.get(error.index))
        try:
            summary = body["routes"][0]["summary"]
            # ORS leaves both out of the summary of a zero-length route.
            return Leg(float(summary.get("duration", 0.0)), float(summary.get("distance", 0.0)))
        except (KeyError, IndexError, TypeError, ValueError, AttributeError) as error:
            raise GeoUnavailable(
                f"openrouteservice answered no route summary: {error!r}"
            ) from error

    def matrix(
        self, origins: Sequence[Point], dests: Sequence[Point], mode: Mode = Mode.DRIVE
    ) -> list[list[TravelEstimate | None]]:
        """Routed times, None where unreachable; only trips not in the cache are requested."""
        profile = PROFILES[mode]
        hour = self.cache.hour_of_week()
        keys = [[self.cache.key(profile, o, d, hour) for d in dests] for o in origins]
        answers: list[list[Answer | None]] = [[self.cache.get(k) for k in row] for row in keys]
        # Rows that miss the same columns share requests, so every request asks only for
        # trips not yet known: a pickup planner never pays twice for one trip.
        groups: dict[tuple[int, ...], list[int]] = {}
        for i, row in enumerate(answers):
            missing = tuple(j for j, answer in enumerate(row) if answer is None)
            if missing:
                groups.setdefault(missing, []).append(i)
        for cols, rows in groups.items():
            for row_ids, col_ids in self._blocks(rows, list(cols)):
                block = self._matrix_block(profile, origins, dests, row_ids, col_ids)
                for i, got in zip(row_ids, block, strict=True):
                    for j, answer in zip(col_ids, got, strict=True):
                        answers[i][j] = answer
                        self.cache.put(keys[i][j], answer)
        return [[routed(a, mode) if isinstance(a, Leg) else None for a in row] for row in answers]

    def _blocks(self, rows: list[int], cols: list[int]) -> Iterator[tuple[list[int], list[int]]]:
        """rows x cols cut into blocks within the server's matrix size limit."""
        width = min(len(cols), self.matrix_max_cells)
        height = max(1, self.matrix_max_cells // width)
        for c in range(0, len(cols), width):
            for r in range(0, len(rows), height):
                yield rows[r : r + height], cols[c : c + width]

    def _matrix_block(
        self,
        profile: str,
        origins: Sequence[Point],
        dests: Sequence[Point],
        row_ids: list[int],
        col_ids: list[int],
    ) -> list[list[Answer]]:
        """One matrix request for origins[row_ids] x dests[col_ids]."""
        n = len(row_ids)
        locations = [_lon_lat(origins[i]) for i in row_ids] + [_lon_lat(dests[j]) for j in col_ids]
        try:
            body = self._call(
                lambda client: client.distance_matrix(
                    locations,
                    profile=profile,
                    sources=list(range(n)),
                    destinations=list(range(n, len(locations))),
                    metrics=["duration", "distance"],
                    units="m",
                )
            )
        except Unroutable as error:
            # One point the matrix cannot place fails the whole request: fall back, naming it.
            names = [f"origin {i}" for i in row_ids] + [f"destination {j}" for j in col_ids]
            index = error.index
            which = names[index] if index is not None and 0 <= index < len(names) else "a point"
            raise GeoUnavailable(f"openrouteservice cannot place {which}: {error}") from error
        try:
            durations, distances = body["durations"], body["distances"]
            return [
                [_cell(durations, distances, a, b) for b in range(len(col_ids))] for a in range(n)
            ]
        except (KeyError, IndexError, TypeError, ValueError) as error:
            raise GeoUnavailable(
                f"openrouteservice answered a malformed matrix: {error!r}"
            ) from error
