"""Group "portal": the client's page /c/<token>, its server time and its weight.

- client_page_p95_ms (and _p50_ms): server time of GET /c/<token> for a demo referral that
  is accepted, has an appointment and a scheduled ride with a driver and a vehicle, measured
  in-process with Flask's test client after a warm-up.
- client_page_bytes: what a phone downloads to show that page: the HTML plus every
  stylesheet it links, uncompressed, in the heaviest of the client languages.
"""

from __future__ import annotations

import os
import re
import statistics
import tempfile
import time
from pathlib import Path

from bench.http import BenchError, bench_env, flask

RUNS = int(os.environ.get("BENCH_CLIENT_PAGE_RUNS", "200"))
WARMUP = 5
LANGUAGES = ("en", "es", "so", "hmn")
PASSWORD = "bench-password-2026"  # noqa: S105  (demo users of a throw-away database)
TARGET_BYTES = 30 * 1024
STYLESHEET = re.compile(
    r"<link\b(?=[^>]*\brel=[\"']?stylesheet)[^>]*\bhref=[\"']?([^\"' >]+)", re.IGNORECASE
)
# Anything else the page would make the phone download (scripts, images, frames, fonts).
OTHER_RESOURCE = re.compile(r"\b(?:src|srcset|poster)=[\"']?(?!data:)[^\"' >]+", re.IGNORECASE)


def _percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, round(pct / 100 * len(ordered)) - 1)]


def run() -> dict:
    if RUNS < 40:
        raise BenchError(f"BENCH_CLIENT_PAGE_RUNS={RUNS}: at least 40 runs make a p95")
    with tempfile.TemporaryDirectory(prefix="rh-bench-portal-") as tmp:
        env = {**bench_env(Path(tmp)), "DEMO_PASSWORD": PASSWORD}
        flask(["db", "upgrade"], env)
        flask(["seed", "demo"], env)
        os.environ["INSTANCE_PATH"] = env["INSTANCE_PATH"]
        from referral_hub import create_app

        app = create_app(
            {
                "SQLALCHEMY_DATABASE_URI": env["DATABASE_URL"],
                "SECRET_KEY": "bench",
                "RATELIMIT_ENABLED": False,
            }
        )
        with app.app_context():
            path = _client_page_path()
        client = app.test_client()
        timings = _timed_gets(client, path)
        weights = {lang: _weight(client, f"{path}?lang={lang}") for lang in LANGUAGES}
    heaviest = max(weights, key=lambda lang: sum(weights[lang]))
    html, css = weights[heaviest]
    return {
        "client_page_p50_ms": {"value": round(statistics.median(timings), 2), "unit": "ms"},
        "client_page_p95_ms": {
            "value": round(_percentile(timings, 95), 2),
            "unit": "ms",
            "runs": len(timings),
        },
        "client_page_bytes": {
            "value": html + css,
            "unit": "bytes",
            "html": html,
            "css": css,
            "lang": heaviest,
            "target": TARGET_BYTES,
        },
    }


def _client_page_path() -> str:
    """Mint a link for the fullest client page the demo has: appointment, ride, driver."""
    from sqlalchemy import select

    from referral_hub.extensions import db
    from referral_hub.portal import operations as portal_ops
    from referral_hub.referrals.models import Referral, Status
    from referral_hub.transport.models import Ride, RideStatus

    ride = db.session.scalar(
        select(Ride)
        .join(Referral)
        .where(
            Referral.status == Status.ACCEPTED,
            Referral.appointment_at.is_not(None),
            Ride.status == RideStatus.SCHEDULED,
            Ride.driver_id.is_not(None),
            Ride.vehicle_id.is_not(None),
        )
        .order_by(Ride.id)
    )
    if ride is None:
        raise BenchError("the demo has no accepted referral with a scheduled, assigned ride")
    token = portal_ops.issue_link(ride.referral, None)
    db.session.commit()
    return f"/c/{token}"


def _get(client, path: str):
    response = client.get(path)
    if response.status_code != 200:
        raise BenchError(f"GET {path} returned {response.status_code}")
    return response


def _timed_gets(client, path: str) -> list[float]:
    for _ in range(WARMUP):
        _get(client, path)
    timings = []
    for _ in range(RUNS):
        started = time.perf_counter()
        _get(client, path)
        timings.append((time.perf_counter() - started) * 1000)
    return timings


def _weight(client, path: str) -> tuple[int, int]:
    """Bytes of the page's HTML and of the stylesheets it links (each fetched once)."""
    html = _get(client, path).get_data()
    text = html.decode()
    other = OTHER_RESOURCE.search(text)
    if other:
        raise BenchError(f"GET {path} loads {other.group(0)!r}: count it in client_page_bytes")
    hrefs = STYLESHEET.findall(text)
    if not hrefs:
        raise BenchError(f"GET {path}: no stylesheet linked, the weight would miss the CSS")
    css = sum(len(_get(client, href).get_data()) for href in dict.fromkeys(hrefs))
    return len(html), css
