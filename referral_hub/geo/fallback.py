"""A remote backend with the offline one behind it, for when the service cannot answer."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence

from flask_babel import gettext as _

from referral_hub.geo.base import GeoBackend, GeoUnavailable, Mode, Place, Point, TravelEstimate

log = logging.getLogger(__name__)


class FallbackGeo:
    """Ask `primary`; when it raises GeoUnavailable, answer from `fallback` and say so.

    Places found by the fallback carry its `source` ("offline"); travel estimates carry a
    translated `note`, and their source is "estimate" as every offline estimate's is.
    Only failures fall back: an empty geocode from a working service stands.
    """

    def __init__(self, primary: GeoBackend, fallback: GeoBackend) -> None:
        self.primary = primary
        self.fallback = fallback

    def _failed(self, call: str, error: GeoUnavailable) -> None:
        # Logged, not raised: the person in the field still gets an answer.
        log.warning("geo %s failed on %s, answering offline: %s", call, self.primary, error)

    @staticmethod
    def _note() -> str:
        # Translated when the answer is made, in the language of the request asking.
        return _("Routing service unavailable: estimated from straight-line distance.")

    def geocode(self, text: str) -> list[Place]:
        """The primary's places for `text`, or the fallback's if the primary failed."""
        try:
            return self.primary.geocode(text)
        except GeoUnavailable as error:
            self._failed("geocode", error)
            return self.fallback.geocode(text)

    def reverse(self, point: Point) -> Place | None:
        """The primary's place at `point`, or the fallback's if the primary failed."""
        try:
            return self.primary.reverse(point)
        except GeoUnavailable as error:
            self._failed("reverse", error)
            return self.fallback.reverse(point)

    def travel(self, origin: Point, dest: Point, mode: Mode = Mode.DRIVE) -> TravelEstimate:
        """The primary's route, or the fallback's estimate with a note if the primary failed."""
        try:
            return self.primary.travel(origin, dest, mode)
        except GeoUnavailable as error:
            self._failed("travel", error)
            return dataclasses.replace(self.fallback.travel(origin, dest, mode), note=self._note())

    def matrix(
        self, origins: Sequence[Point], dests: Sequence[Point], mode: Mode = Mode.DRIVE
    ) -> list[list[TravelEstimate | None]]:
        """The primary's matrix, or the fallback's with a note on every cell."""
        try:
            return self.primary.matrix(origins, dests, mode)
        except GeoUnavailable as error:
            self._failed("matrix", error)
            note = self._note()
            rows = self.fallback.matrix(origins, dests, mode)
            return [[dataclasses.replace(e, note=note) if e else None for e in row] for row in rows]
