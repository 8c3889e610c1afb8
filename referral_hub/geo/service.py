"""The app's geo backend, chosen by config, with its gazetteer loaded from the database.

Config keys read (all optional):

- ``GEO_BACKEND``: which backend answers; only ``"offline"`` exists so far. Default
  ``"offline"``.
- ``GEO_GAZETTEER_TTL``: seconds the gazetteer (active sites and landmarks) is kept in memory
  before it is read again. Default 300. Within one process ``invalidate_gazetteer()`` drops
  it at once; other processes see a change within this many seconds.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from flask import Flask, current_app
from flask_babel import gettext as _
from sqlalchemy import select

from referral_hub.core.errors import ValidationFailed
from referral_hub.directory.models import Site
from referral_hub.extensions import db
from referral_hub.geo.base import GeoBackend, Place, Point, parse_point
from referral_hub.geo.models import Landmark
from referral_hub.geo.offline import OfflineGeo

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


# Backend name → factory given the app and its cached gazetteer. Remote backends register
# here wrapped in FallbackGeo over OfflineGeo, so a failing service answers offline.
BACKENDS: dict[str, Callable[[Flask, GazetteerCache], GeoBackend]] = {
    "offline": lambda app, gazetteer: OfflineGeo(gazetteer),
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
