"""Remote geocoders through geopy: Nominatim (a configured server) and Pelias.

Each turns geopy's answers into Places and geopy's service errors into GeoUnavailable, with
the reason, so that FallbackGeo logs it and answers from the offline gazetteer. Typed
coordinates ("44.97, -93.26") are answered here without a request: the person meant that
exact point, not the nearest object a server would return for it.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from typing import Any, Protocol
from urllib.parse import urlsplit

from geopy.adapters import RequestsAdapter
from geopy.exc import (
    GeocoderAuthenticationFailure,
    GeocoderInsufficientPrivileges,
    GeocoderQuotaExceeded,
    GeocoderRateLimited,
    GeocoderServiceError,
    GeocoderTimedOut,
    GeocoderUnavailable,
)
from geopy.geocoders import Nominatim, Pelias
from geopy.location import Location

from referral_hub.geo.base import GeoUnavailable, Place, PlaceKind, Point, parse_point
from referral_hub.geo.gazetteer import MAX_RESULTS

DEFAULT_TIMEOUT = 5.0
DEFAULT_COUNTRY = "us"

# geopy's requests adapter retries twice by default, so a server that hangs would be
# waited on three times over; one try within the timeout, then the offline answer.
_ADAPTER = functools.partial(RequestsAdapter, max_retries=0)

_US_ZIP = re.compile(r"^(\d{5})(?:-\d{4})?$")


class Geocoder(Protocol):
    """The geocoding half of GeoBackend; OfflineGeo is one too."""

    def geocode(self, text: str) -> list[Place]:
        """Places that `text` may mean, best first."""
        ...

    def reverse(self, point: Point) -> Place | None:
        """The place at or nearest to `point`, or None."""
        ...


def split_url(url: str) -> tuple[str, str]:
    """(scheme, host[:port][/path]) of a service URL, as geopy wants them apart."""
    parts = urlsplit((url or "").strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"not an http(s) URL: {url!r}")
    return parts.scheme, (parts.netloc + parts.path).rstrip("/")


def parse_viewbox(text: str) -> tuple[Point, Point]:
    """Two corners from "lat,lon,lat,lon" (any two opposite corners); ValueError if not."""
    numbers = [float(part) for part in text.split(",")]
    if len(numbers) != 4:
        raise ValueError(f"a viewbox is lat,lon,lat,lon: {text!r}")
    return Point(numbers[0], numbers[1]), Point(numbers[2], numbers[3])


def postal_code(value: Any) -> str | None:
    """A postal code as the directory keeps it: a US ZIP+4 cut to its 5-digit ZIP."""
    if not value:
        return None
    # Nominatim joins the codes of an area that spans several with ";" or ",".
    first = re.split(r"[;,]", str(value))[0].strip()
    match = _US_ZIP.match(first)
    return match.group(1) if match else first or None


def unavailable(service: str, error: GeocoderServiceError, timeout: float) -> GeoUnavailable:
    """GeoUnavailable saying why `service` failed, for the warning FallbackGeo logs."""
    if isinstance(error, GeocoderRateLimited):
        reason = "rate limited"
    elif isinstance(error, GeocoderQuotaExceeded):
        reason = "quota exceeded"
    elif isinstance(error, GeocoderAuthenticationFailure | GeocoderInsufficientPrivileges):
        reason = "refused the key or the user agent"
    elif isinstance(error, GeocoderTimedOut):
        # geopy reports 503 and 504 as timeouts too; its message tells which.
        reason = f"timed out or overloaded (timeout {timeout:g} s)"
    elif isinstance(error, GeocoderUnavailable):
        reason = "unreachable"
    else:
        reason = "failed"
    return GeoUnavailable(f"{service} {reason}: {error}")


def _coordinates(text: str) -> list[Place] | None:
    """The Place for typed coordinates, or None when `text` is not coordinates."""
    point = parse_point(text)
    if point is None:
        return None
    return [Place(f"{point.lat:.5f}, {point.lon:.5f}", point, None, "coordinates", "offline")]


def _inside(point: Point, box: tuple[Point, Point]) -> bool:
    (a, b) = box
    return min(a.lat, b.lat) <= point.lat <= max(a.lat, b.lat) and min(
        a.lon, b.lon
    ) <= point.lon <= max(a.lon, b.lon)


class NominatimGeocoder:
    """Geocoder on a Nominatim server: the configured one, under our own user agent."""

    source = "nominatim"

    def __init__(
        self,
        url: str,
        user_agent: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        country: str | None = DEFAULT_COUNTRY,
        viewbox: tuple[Point, Point] | None = None,
    ) -> None:
        if not (user_agent or "").strip():
            # Nominatim's usage policy asks every application to identify itself.
            raise ValueError("Nominatim needs a user agent naming this deployment")
        scheme, domain = split_url(url)
        self.url, self.timeout, self.country, self.viewbox = url, timeout, country, viewbox
        self._client = Nominatim(
            domain=domain,
            scheme=scheme,
            user_agent=user_agent.strip(),
            timeout=timeout,
            adapter_factory=_ADAPTER,
        )

    def __repr__(self) -> str:
        return f"NominatimGeocoder({self.url!r})"

    def geocode(self, text: str) -> list[Place]:
        """Up to 10 places for `text` in the configured country, those near the city first."""
        text = (text or "").strip()
        if not text:
            return []
        typed = _coordinates(text)
        if typed is not None:
            return typed
        try:
            found = self._client.geocode(
                text,
                exactly_one=False,
                limit=MAX_RESULTS,
                addressdetails=True,
                country_codes=self.country or None,
                # A bias, not a bound: a shelter just outside the city must still be found.
                viewbox=[(p.lat, p.lon) for p in self.viewbox] if self.viewbox else None,
                bounded=False,
            )
        except GeocoderServiceError as error:
            raise unavailable(self.source, error, self.timeout) from error
        return [self._place(location) for location in found or ()]

    def reverse(self, point: Point) -> Place | None:
        """The address Nominatim gives for `point`, or None where it knows none."""
        try:
            found = self._client.reverse((point.lat, point.lon), exactly_one=True)
        except GeocoderServiceError as error:
            raise unavailable(self.source, error, self.timeout) from error
        return self._place(found) if found else None

    def _place(self, location: Location) -> Place:
        raw = location.raw
        address = raw.get("address") or {}
        street = " ".join(p for p in (address.get("house_number"), address.get("road")) if p)
        display = raw.get("display_name") or location.address or ""
        name = raw.get("name") or street or display.split(",")[0].strip() or display
        is_zip = raw.get("type") == "postcode"
        kind: PlaceKind = "zip" if is_zip else "address"
        point = Point(location.latitude, location.longitude)
        return Place(name, point, postal_code(address.get("postcode")), kind, self.source, display)


class PeliasGeocoder:
    """Geocoder on a Pelias server (self-hosted, or a hosted one with an API key)."""

    source = "pelias"

    def __init__(
        self,
        url: str,
        api_key: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        country: str | None = DEFAULT_COUNTRY,
        viewbox: tuple[Point, Point] | None = None,
    ) -> None:
        scheme, domain = split_url(url)
        self.url, self.timeout, self.country, self.viewbox = url, timeout, country, viewbox
        self._client = Pelias(
            domain, api_key or None, scheme=scheme, timeout=timeout, adapter_factory=_ADAPTER
        )

    def __repr__(self) -> str:
        return f"PeliasGeocoder({self.url!r})"

    def geocode(self, text: str) -> list[Place]:
        """Places for `text` in the configured country, those inside the viewbox first."""
        text = (text or "").strip()
        if not text:
            return []
        typed = _coordinates(text)
        if typed is not None:
            return typed
        countries = [self.country] if self.country else None
        try:
            found = self._client.geocode(text, exactly_one=False, countries=countries)
        except GeocoderServiceError as error:
            raise unavailable(self.source, error, self.timeout) from error
        places = [self._place(location) for location in found or ()][:MAX_RESULTS]
        if self.viewbox:
            # geopy offers Pelias only a hard boundary; a stable sort makes it a bias.
            box = self.viewbox
            places.sort(key=lambda place: not _inside(place.point, box))
        return places

    def reverse(self, point: Point) -> Place | None:
        """The nearest address Pelias knows to `point`, or None."""
        try:
            found = self._client.reverse((point.lat, point.lon), exactly_one=True)
        except GeocoderServiceError as error:
            raise unavailable(self.source, error, self.timeout) from error
        return self._place(found) if found else None

    def _place(self, location: Location) -> Place:
        props: Mapping[str, Any] = location.raw.get("properties") or {}
        name = props.get("name") or props.get("label") or location.address or ""
        kind: PlaceKind = "zip" if props.get("layer") == "postalcode" else "address"
        point = Point(location.latitude, location.longitude)
        code = postal_code(props.get("postalcode"))
        return Place(name, point, code, kind, self.source, props.get("label") or None)
