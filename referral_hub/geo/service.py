"""The app's geo backend, chosen by config, with its gazetteer loaded from the database.

Config keys read:

- ``GEO_BACKEND``: which backend answers: ``"offline"`` (default; no network) or
  ``"openrouteservice"`` (routed travel times, geocoding by ``GEOCODER``; every failure
  answers offline and says so).
- ``GEO_GAZETTEER_TTL``: seconds the gazetteer (active sites and landmarks) is kept in memory
  before it is read again. Default 300. Within one process ``invalidate_gazetteer()`` drops
  it at once; other processes see a change within this many seconds.
- ``TIMEZONE``: the city's time zone; routed answers are cached per hour of its week.

With ``GEO_BACKEND="openrouteservice"`` (checked at first use; a missing or malformed
setting raises RuntimeError naming it):

- ``ORS_BASE_URL`` (required; no host is built in, so a self-hosted server works): e.g.
  ``http://ors.internal:8080/ors``, or the public API's current address.
- ``ORS_API_KEY``: sent as the Authorization header; optional for a self-hosted server.
- ``ORS_TIMEOUT``: seconds per request. Default 5.
- ``ORS_SNAP_RADIUS_M``: how far from a road a point may be and still be routed, per
  point, in metres. Default 350.
- ``ORS_MATRIX_MAX_CELLS``: the server's matrix size limit; bigger matrices are split.
  Default 2500 (a self-hosted server's default; the public API allows 3500).
- ``GEOCODER``: ``"offline"`` (default; the gazetteer and ZIP centroids), ``"nominatim"``
  or ``"pelias"``.
- ``NOMINATIM_URL`` and ``NOMINATIM_USER_AGENT``: both required with ``"nominatim"``; the
  user agent names this deployment, as Nominatim's usage policy asks.
- ``PELIAS_URL`` (required with ``"pelias"``) and ``PELIAS_API_KEY`` (optional).
- ``GEOCODER_TIMEOUT``: seconds per geocoder request. Default 5.
- ``GEOCODER_COUNTRY``: ISO 3166-1 alpha-2 code results are restricted to. Default ``"us"``;
  empty for no restriction.
- ``GEOCODER_VIEWBOX``: ``"lat,lon,lat,lon"``, two opposite corners around the city;
  results inside come first. Optional.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from flask import Flask, current_app
from flask_babel import gettext as _
from sqlalchemy import select

from referral_hub.core.errors import ValidationFailed
from referral_hub.directory.models import Site
from referral_hub.extensions import db
from referral_hub.geo import geocoders, ors
from referral_hub.geo.base import GeoBackend, Place, Point, parse_point
from referral_hub.geo.fallback import FallbackGeo
from referral_hub.geo.models import Landmark
from referral_hub.geo.offline import OfflineGeo
from referral_hub.geo.routecache import RouteCache

__all__ = ["GazetteerCache", "get_geo", "invalidate_gazetteer", "locate", "parse_point"]

EXTENSION_KEY = "referral_hub.geo"
DEFAULT_GAZETTEER_TTL = 300.0


def load_gazetteer() -> list[Place]:
    """Active sites and all landmarks as Places, read as plain rows (no ORM objects)."""
    sites = db.session.execute(
        select(
            Site.name,
            Site.address_1,
            Site.city,
            Site.state,
            Site.postal_code,
            Site.latitude,
            Site.longitude,
        ).where(Site.is_active.is_(True))
    )
    places = [
        Place(
            name=row.name,
            point=Point(row.latitude, row.longitude),
            postal_code=row.postal_code,
            kind="site",
            source="offline",
            address=f"{row.address_1}, {row.city}, {row.state} {row.postal_code}",
        )
        for row in sites
    ]
    landmarks = db.session.execute(
        select(Landmark.name, Landmark.latitude, Landmark.longitude, Landmark.postal_code)
    )
    places.extend(
        Place(
            name=row.name,
            point=Point(row.latitude, row.longitude),
            postal_code=row.postal_code,
            kind="landmark",
            source="offline",
        )
        for row in landmarks
    )
    return places


class GazetteerCache:
    """A gazetteer loader whose result is kept for `ttl` seconds; callable like the loader."""

    def __init__(
        self,
        load: Callable[[], Sequence[Place]],
        ttl: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._load = load
        self._ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._places: tuple[Place, ...] | None = None
        self._expires = 0.0

    def __call__(self) -> tuple[Place, ...]:
        """The cached places, reloaded when the TTL has passed or after invalidate()."""
        places = self._places
        if places is not None and self._clock() < self._expires:
            return places
        # One thread reloads; the others wait for its result rather than query too.
        with self._lock:
            if self._places is None or self._clock() >= self._expires:
                self._places = tuple(self._load())
                self._expires = self._clock() + self._ttl
            return self._places

    def invalidate(self) -> None:
        """Forget the places so the next call reads them again."""
        with self._lock:
            self._places = None


@dataclass(frozen=True, slots=True)
class _GeoState:
    """What one app keeps in `app.extensions`: its backend and its gazetteer cache."""

    backend: GeoBackend
    gazetteer: GazetteerCache


def _text(config: Mapping[str, Any], key: str, *, required_by: str | None = None) -> str:
    """A string setting, stripped; RuntimeError if `required_by` needs it and it is empty."""
    value = str(config.get(key) or "").strip()
    if not value and required_by:
        raise RuntimeError(f"{required_by} needs {key}; it is not set")
    return value


def _positive(config: Mapping[str, Any], key: str, default: float) -> float:
    """A positive number setting; RuntimeError naming the key if it is not one."""
    value = config.get(key, default)
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = -1.0
    if not number > 0:
        raise RuntimeError(f"{key} must be a positive number, not {value!r}")
    return number


def _geocoder(config: Mapping[str, Any], offline: OfflineGeo) -> geocoders.Geocoder:
    """The geocoder GEOCODER names, configured; the offline backend for "offline"."""
    name = _text(config, "GEOCODER") or "offline"
    if name == "offline":
        # Not None: OrsGeo would then fail every geocode and log a warning each time.
        return offline
    country = str(config.get("GEOCODER_COUNTRY", geocoders.DEFAULT_COUNTRY) or "").strip()
    viewbox_text = _text(config, "GEOCODER_VIEWBOX")
    try:
        viewbox = geocoders.parse_viewbox(viewbox_text) if viewbox_text else None
    except ValueError as error:
        raise RuntimeError(f"GEOCODER_VIEWBOX is not lat,lon,lat,lon: {error}") from error
    options = {
        "timeout": _positive(config, "GEOCODER_TIMEOUT", geocoders.DEFAULT_TIMEOUT),
        "country": country.lower() or None,
        "viewbox": viewbox,
    }
    if name == "nominatim":
        needs = 'GEOCODER "nominatim"'
        url = _text(config, "NOMINATIM_URL", required_by=needs)
        agent = _text(config, "NOMINATIM_USER_AGENT", required_by=needs)
        return geocoders.NominatimGeocoder(url, agent, **options)
    if name == "pelias":
        url = _text(config, "PELIAS_URL", required_by='GEOCODER "pelias"')
        key = _text(config, "PELIAS_API_KEY") or None
        return geocoders.PeliasGeocoder(url, key, **options)
    raise RuntimeError(f"GEOCODER {name!r} is not one of ['nominatim', 'offline', 'pelias']")


def _openrouteservice(app: Flask, gazetteer: GazetteerCache) -> GeoBackend:
    """ORS for travel, GEOCODER for places, the offline backend behind both."""
    config = app.config
    offline = OfflineGeo(gazetteer)
    base_url = _text(config, "ORS_BASE_URL", required_by='GEO_BACKEND "openrouteservice"')
    try:
        geocoders.split_url(base_url)  # an http(s) URL, or refused now rather than per trip
        routing = ors.OrsGeo(
            base_url,
            key=_text(config, "ORS_API_KEY") or None,
            timeout=_positive(config, "ORS_TIMEOUT", ors.DEFAULT_TIMEOUT),
            snap_radius_m=_positive(config, "ORS_SNAP_RADIUS_M", ors.DEFAULT_SNAP_RADIUS_M),
            matrix_max_cells=int(
                _positive(config, "ORS_MATRIX_MAX_CELLS", ors.DEFAULT_MATRIX_MAX_CELLS)
            ),
            cache=RouteCache(_text(config, "TIMEZONE") or "UTC"),
            geocoder=_geocoder(config, offline),
        )
    except (ValueError, LookupError) as error:
        # A malformed URL, an unknown time zone, the client refusing its settings.
        raise RuntimeError(f'GEO_BACKEND "openrouteservice" is misconfigured: {error}') from error
    return FallbackGeo(routing, offline)


# Backend name → factory given the app and its cached gazetteer. Remote backends register
# here wrapped in FallbackGeo over OfflineGeo, so a failing service answers offline.
BACKENDS: dict[str, Callable[[Flask, GazetteerCache], GeoBackend]] = {
    "offline": lambda app, gazetteer: OfflineGeo(gazetteer),
    "openrouteservice": _openrouteservice,
}


def _state() -> _GeoState:
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    state = app.extensions.get(EXTENSION_KEY)
    if state is None:
        name = app.config.get("GEO_BACKEND", "offline")
        factory = BACKENDS.get(name)
        if factory is None:
            # Failing loudly: quietly answering offline would leave an operator who set up
            # routing believing times are routed when they are estimates.
            raise RuntimeError(f"GEO_BACKEND {name!r} is not one of {sorted(BACKENDS)}")
        ttl = float(app.config.get("GEO_GAZETTEER_TTL", DEFAULT_GAZETTEER_TTL))
        gazetteer = GazetteerCache(load_gazetteer, ttl)
        # setdefault: two first requests racing keep one state between them.
        state = app.extensions.setdefault(
            EXTENSION_KEY, _GeoState(factory(app, gazetteer), gazetteer)
        )
    return state


def get_geo() -> GeoBackend:
    """The current app's configured geo backend (created once per app)."""
    return _state().backend


def invalidate_gazetteer() -> None:
    """Drop the current app's cached gazetteer; call after sites or landmarks change."""
    _state().gazetteer.invalidate()


def locate(text: str, *, field: str = "location") -> Place:
    """The best place for `text`; raises ValidationFailed on `field` when none fits."""
    candidates = get_geo().geocode(text)
    if not candidates:
        message = _("We could not find that place. Try an address, a ZIP code or lat,lon.")
        raise ValidationFailed(message, fields={field: [message]})
    return candidates[0]
