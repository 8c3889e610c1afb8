"""HSDS value encodings shared by export and import: stable ids, opening hours as
schedules, service areas, age bounds and attribute texts (both directions).

Conventions beyond the specification (documented for data users in hsds.py): schedule times
are wall-clock times in the city's time zone; a weekly schedule whose `closes_at` is at or
before `opens_at` closes after midnight; 24/7 is one schedule MO-SU 00:00-23:59; a schedule
with `valid_from == valid_to` is a dated exception (no times: closed; `notes`: the reason).
"""

from __future__ import annotations

import json
import math
import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, time
from typing import Any

from flask import current_app

from referral_hub.directory.models import AreaKind, ProgramSite, ServiceArea

NAMESPACE = uuid.UUID("092021c1-0426-4437-b221-40e0333ad572")
DAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


class HsdsValueError(ValueError):
    """An HSDS value we cannot read; the record carrying it is skipped."""


def hsds_id(*parts: object) -> str:
    """A stable HSDS id for something without a uuid column."""
    return str(uuid.uuid5(NAMESPACE, ":".join(str(part) for part in parts)))


def clean(values: dict[str, Any]) -> dict[str, Any]:
    """The values that are known (not None)."""
    # HSDS fields are typed without null: an unknown value is left out.
    return {key: value for key, value in values.items() if value is not None}


def age_bounds(criteria: Any) -> tuple[int | None, int | None]:
    """The minimum and maximum age a rule demands at its top level, for HSDS's age fields."""
    clauses = criteria.get("and") if isinstance(criteria, dict) and "and" in criteria else None
    low = high = None
    for clause in clauses if isinstance(clauses, list) else [criteria]:
        if not (isinstance(clause, dict) and len(clause) == 1):
            continue
        ((op, args),) = clause.items()
        if not (isinstance(args, list) and len(args) == 2 and args[0] == {"var": "age"}):
            continue
        if not isinstance(args[1], int) or isinstance(args[1], bool):
            continue
        bound = args[1] + {">=": 0, ">": 1, "<=": 0, "<": -1}.get(op, 0)
        if op in (">=", ">"):
            low = bound if low is None else max(low, bound)
        elif op in ("<=", "<"):
            high = bound if high is None else min(high, bound)
    return low, high


def service_area(area: ServiceArea, service_id: str) -> dict[str, Any]:
    """A service area: ZIP codes as text, a circle or a polygon as GeoJSON."""
    doc = {"id": area.uuid, "service_id": service_id, "name": area.name}
    if area.kind == AreaKind.POSTAL_CODES:
        codes = ", ".join(area.postal_codes or [])
        doc.update(description=f"ZIP codes {codes}", extent=codes, extent_type="text")
    elif area.kind == AreaKind.RADIUS:
        point = [area.center_longitude, area.center_latitude]  # GeoJSON order: lon, lat
        feature = {
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": point},
            "properties": {"radius_km": area.radius_km},
        }
        doc.update(
            description=f"Within {area.radius_km:g} km of {area.center_latitude:.5f}, "
            f"{area.center_longitude:.5f}",
            extent=json.dumps(feature),
            extent_type="geojson",
        )
    else:
        doc.update(extent=json.dumps(area.geometry), extent_type="geojson")
    return doc


def _hhmm(value: time) -> str:
    return value.strftime("%H:%M")


def schedules(program_site: ProgramSite) -> list[dict[str, Any]]:
    """Weekly hours (one schedule per distinct opening time), 24/7 and dated exceptions."""
    tz = current_app.config["TIMEZONE"]
    base = {
        "service_id": program_site.program.uuid,
        "location_id": program_site.site.uuid,
        "service_at_location_id": program_site.uuid,
        "wkst": "MO",
        "freq": "WEEKLY",
    }
    found = []
    if program_site.open_24_7:
        found.append(
            base
            | {
                "id": hsds_id("schedule", program_site.uuid, "24/7"),
                "byday": ",".join(DAYS),
                "opens_at": "00:00",
                "closes_at": "23:59",
                "description": "Open 24 hours a day, 7 days a week.",
            }
        )
    groups: dict[tuple[time, time], list[int]] = {}
    for hours in [] if program_site.open_24_7 else program_site.weekly_hours:
        groups.setdefault((hours.opens_at, hours.closes_at), []).append(hours.weekday)
    for (opens, closes), weekdays in groups.items():
        overnight = " (closing the next day)" if closes <= opens else ""
        days = ", ".join(DAY_NAMES[d] for d in weekdays)
        found.append(
            base
            | {
                "id": hsds_id("schedule", program_site.uuid, _hhmm(opens), _hhmm(closes)),
                "byday": ",".join(DAYS[d] for d in weekdays),
                "opens_at": _hhmm(opens),
                "closes_at": _hhmm(closes),
                "description": f"{days} {_hhmm(opens)}-{_hhmm(closes)}{overnight}, {tz} time.",
            }
        )
    for exception in program_site.exceptions:
        day = exception.on_date.isoformat()
        what = "Closed" if exception.closed else "Special hours"
        found.append(
            clean(
                base
                | {
                    "id": hsds_id("schedule", program_site.uuid, day),
                    "valid_from": day,
                    "valid_to": day,
                    "dtstart": day,
                    "count": 1,
                    "byday": DAYS[exception.on_date.weekday()],
                    "opens_at": None if exception.closed else _hhmm(exception.opens_at),
                    "closes_at": None if exception.closed else _hhmm(exception.closes_at),
                    "description": f"{what} on {day}, {tz} time.",
                    "notes": exception.reason,
                }
            )
        )
    return found


# --- HSDS -> model values --------------------------------------------------------------------

TIME_RE = re.compile(r"^(\d{1,2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?$")


def parse_time(text: Any) -> time:
    """A wall-clock time from HH:MM[:SS][offset]; the offset is dropped (times are local)."""
    match = TIME_RE.match(str(text).strip())
    midnight = match is not None and int(match[1]) == 24 and int(match[2]) == 0  # 24:00
    if not match or int(match[2]) > 59 or (int(match[1]) > 23 and not midnight):
        raise HsdsValueError(f"{text!r} is not a time (HH:MM)")
    return time(int(match[1]) % 24, int(match[2]))


def parse_date(text: Any) -> date:
    """A date from YYYY-MM-DD."""
    try:
        return date.fromisoformat(str(text)[:10])
    except ValueError:
        raise HsdsValueError(f"{text!r} is not a date (YYYY-MM-DD)") from None


@dataclass
class Hours:
    """Opening hours read from HSDS schedules, in the shape directory.operations takes."""

    open_24_7: bool = False
    weekly: list[tuple[int, time, time]] = field(default_factory=list)
    exceptions: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def hours_from_schedules(rows: Iterable[dict[str, Any]]) -> Hours:
    """Weekly hours, 24/7 and dated exceptions; other recurrences are left out with a warning."""
    hours = Hours()
    for row in rows:
        sid = row.get("id", "?")
        has_times = row.get("opens_at") is not None and row.get("closes_at") is not None
        if row.get("valid_from") and row.get("valid_from") == row.get("valid_to"):
            hours.exceptions.append(
                {
                    "on_date": parse_date(row["valid_from"]),
                    "closed": not has_times,
                    "opens": parse_time(row["opens_at"]) if has_times else None,
                    "closes": parse_time(row["closes_at"]) if has_times else None,
                    "reason": row.get("notes"),
                }
            )
            continue
        days = [d.strip().upper() for d in str(row.get("byday") or "").split(",") if d.strip()]
        unsupported = row.get("freq") not in (None, "WEEKLY") or row.get("interval") not in (
            None,
            1,
        )
        if unsupported or not days or not set(days) <= set(DAYS) or not has_times:
            hours.warnings.append(f"schedule {sid}: only weekly hours on named days are read")
            continue
        opens, closes = parse_time(row["opens_at"]), parse_time(row["closes_at"])
        hours.weekly.extend((DAYS.index(d), opens, closes) for d in days)
    all_day = {time(0, 0), time(23, 59)}
    if {d for d, _o, _c in hours.weekly} == set(range(7)) and all(
        o == time(0, 0) and c in all_day for _d, o, c in hours.weekly
    ):
        hours.open_24_7, hours.weekly = True, []
    return hours


ZIP_RE = re.compile(r"^\d{5}$")


def area_from_hsds(row: dict[str, Any]) -> dict[str, Any] | None:
    """A service area for directory.operations.set_service_areas, or None if unreadable."""
    name = row.get("name") or row.get("description") or "Service area"
    extent, kind = row.get("extent"), str(row.get("extent_type") or "").lower()
    if extent and kind == "text":
        codes = [c.strip() for c in str(extent).replace(";", ",").split(",") if c.strip()]
        if codes and all(ZIP_RE.match(c) for c in codes):
            return {"kind": AreaKind.POSTAL_CODES, "name": name, "postal_codes": codes}
        return None
    if not extent or kind != "geojson":
        return None
    try:
        shape = json.loads(extent)
    except ValueError:
        raise HsdsValueError("service area extent is not valid GeoJSON") from None
    if not isinstance(shape, dict):
        return None
    geometry = shape.get("geometry") if shape.get("type") == "Feature" else shape
    if not isinstance(geometry, dict):
        return None
    if geometry.get("type") == "Point" and "radius_km" in (shape.get("properties") or {}):
        values = [*(geometry.get("coordinates") or [])[:2], shape["properties"]["radius_km"]]
        if len(values) != 3 or not all(isinstance(v, int | float) for v in values):
            raise HsdsValueError("a service area circle needs numeric coordinates and radius_km")
        lon, lat, radius = values
        return {
            "kind": AreaKind.RADIUS,
            "name": name,
            "center_latitude": lat,
            "center_longitude": lon,
            "radius_km": radius,
        }
    if geometry.get("type") in ("Polygon", "MultiPolygon"):
        return {"kind": AreaKind.POLYGON, "name": name, "geometry": geometry}
    return None


def age_clauses(minimum: float | None, maximum: float | None) -> list[dict[str, Any]]:
    """HSDS minimum/maximum age as criteria clauses over the screener's integer age."""
    clauses = []
    if minimum is not None:
        clauses.append({">=": [{"var": "age"}, math.ceil(minimum)]})
    if maximum is not None:
        clauses.append({"<=": [{"var": "age"}, math.floor(maximum)]})
    return clauses


def merge_criteria(rule: Any, clauses: list[dict[str, Any]]) -> Any:
    """`rule` and the clauses it does not already contain, joined with "and"."""
    if isinstance(rule, dict) and list(rule) == ["and"] and isinstance(rule["and"], list):
        present = list(rule["and"])
    else:
        present = [] if rule is None else [rule]
    missing = [clause for clause in clauses if clause not in present]
    if not missing:
        return rule
    combined = missing + present
    return combined[0] if len(combined) == 1 else {"and": combined}


def parse_criteria(text: str) -> Any:
    """The JsonLogic rule carried by an eligibility-criteria attribute."""
    try:
        return json.loads(text)
    except ValueError:
        raise HsdsValueError("the eligibility-criteria attribute is not JSON") from None


def parse_count(text: Any, what: str) -> int:
    """A non-negative integer carried as attribute text."""
    try:
        number = int(str(text).strip())
    except ValueError:
        raise HsdsValueError(f"{what} must be a whole number, not {text!r}") from None
    if number < 0:
        raise HsdsValueError(f"{what} cannot be negative")
    return number


def fees_from_hsds(
    description: str | None, options: list[dict[str, Any]]
) -> tuple[bool, str | None]:
    """Whether a service is free, and what its fees are, from HSDS's fees text and cost options."""

    def free(option: dict[str, Any]) -> bool:
        amount = option.get("amount")
        return amount == 0 or (amount is None and str(option.get("option", "")).lower() == "free")

    paid = [o for o in options if not free(o)]
    if not description and not paid:
        return True, None
    first = paid[0] if paid else {}
    amount = f"{first.get('amount', '')} {first.get('currency', '')}".strip()
    return False, description or first.get("amount_description") or first.get("option") or amount


def language_codes(rows: Iterable[dict[str, Any]]) -> tuple[list[str], list[str]]:
    """The language codes of HSDS language rows (region subtags dropped), and what was not."""
    codes, left_out = [], []
    for row in rows:
        code = str(row.get("code") or "").split("-")[0].strip().lower()
        if code:
            codes.append(code)
        else:
            left_out.append(f"language {row.get('id')}: no code, left out")
    return codes, left_out


def code_list(text: str | None) -> list[str]:
    """Codes from comma-separated text, as the interpreter-languages attribute carries them."""
    return [code.strip().lower() for code in (text or "").split(",") if code.strip()]


def site_address(addresses: list[dict[str, Any]]) -> dict[str, Any]:
    """A site's address fields from HSDS addresses, the physical one first."""
    address = next((a for a in addresses if a["address_type"] == "physical"), addresses[0])
    state = address["state_province"].strip().upper()
    if not re.fullmatch(r"[A-Z]{2}", state):
        raise HsdsValueError("state_province must be a two-letter code")
    return {
        "address_1": address["address_1"],
        "city": address["city"],
        "state": state,
        "postal_code": address["postal_code"],
    }
