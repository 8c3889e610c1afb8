"""Group "transport": pickup planning, many-to-many travel, and the dispatch board.

- pickup_plan_ms: one pickup plan (offline travel estimate + window), median of many.
- matrix_50x200_ms: a 50 x 200 travel matrix with the offline estimator, median of many.
  Both run in-process on the embedded default (no network), after one warm-up call.
- dispatch_board_p95_ms: server time of the dispatcher's board for a day with
  BOARD_RIDES rides of one vendor (plus rides of other days and another vendor), measured
  in-process as the demo dispatcher: the page GET /dispatch?day=... when the app has it
  ("measured": "page"), else the operation dispatch_board() ("measured": "operation").
  dispatch_board_operation_p95_ms is the operation alone, always measured.
"""

from __future__ import annotations

import os
import random
import statistics
import tempfile
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from bench.http import BenchError, bench_env, flask

RUNS = int(os.environ.get("BENCH_TRANSPORT_RUNS", "200"))
BOARD_RIDES = int(os.environ.get("BENCH_BOARD_RIDES", "5000"))
BOARD_RUNS = int(os.environ.get("BENCH_BOARD_RUNS", "40"))
# Noise: the vendor's rides on other days, and another vendor's rides on the same day.
OTHER_DAYS_RIDES = 3 * BOARD_RIDES
OTHER_VENDOR_RIDES = BOARD_RIDES
REFERRALS = 10000  # rides go on these, so the board joins real clients and programs
DISPATCHER = "dispatcher@example.org"  # the demo's dispatcher of "metro-rides"
VENDOR = "metro-rides"
PASSWORD = "bench-password-2026"  # noqa: S105  (demo users of a throw-away database)
BOARD_DAY = date(2026, 12, 1)  # a Tuesday; any day works, a fixed one keeps runs alike
# Endpoint names the dispatch board page has had; the first one the app knows is measured.
BOARD_ENDPOINTS = ("transport.dispatch", "transport.dispatch_board")


def _timed(fn, runs: int) -> list[float]:
    fn()
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        timings.append((time.perf_counter() - started) * 1000)
    return timings


def _percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, round(pct / 100 * len(ordered)) - 1)]


def run() -> dict:
    figures = _planning()
    figures.update(_board())
    return figures


def _planning() -> dict:
    with tempfile.TemporaryDirectory(prefix="rh-bench-transport-") as workdir:
        os.environ["INSTANCE_PATH"] = workdir
        from referral_hub import create_app
        from referral_hub.geo.base import Mode, Point
        from referral_hub.geo.offline import OfflineGeo
        from referral_hub.transport.planning import plan_for_appointment

        app = create_app(
            {"SQLALCHEMY_DATABASE_URI": f"sqlite:///{workdir}/t.db", "SECRET_KEY": "bench"}
        )
        rng = random.Random(3)
        geo = OfflineGeo(lambda: [])

        def point() -> Point:
            return Point(44.97 + rng.uniform(-0.15, 0.15), -93.26 + rng.uniform(-0.2, 0.2))

        origins = [point() for _ in range(50)]
        destinations = [point() for _ in range(200)]
        now = datetime(2026, 11, 23, 14, 0, tzinfo=UTC)
        appointment = now + timedelta(hours=3)

        with app.test_request_context():

            def plan() -> None:
                travel = geo.travel(origins[0], destinations[0], Mode.DRIVE)
                plan_for_appointment(appointment, travel, now=now)

            plans = _timed(plan, RUNS)
            matrices = _timed(
                lambda: geo.matrix(origins, destinations, Mode.DRIVE), max(10, RUNS // 10)
            )
    return {
        "pickup_plan_ms": {"value": round(statistics.median(plans), 3), "unit": "ms"},
        "matrix_50x200_ms": {"value": round(statistics.median(matrices), 1), "unit": "ms"},
    }


# --- the dispatch board ----------------------------------------------------------------------


def _board() -> dict:
    with tempfile.TemporaryDirectory(prefix="rh-bench-board-") as tmp:
        workdir = Path(tmp)
        env = {**bench_env(workdir), "DEMO_PASSWORD": PASSWORD}
        flask(["db", "upgrade"], env)
        flask(["seed", "demo"], env)
        flask(["seed", "synthetic-referrals", "--referrals", str(REFERRALS)], env)
        os.environ["INSTANCE_PATH"] = env["INSTANCE_PATH"]
        from referral_hub import create_app

        app = create_app(
            {
                "SQLALCHEMY_DATABASE_URI": env["DATABASE_URL"],
                "SECRET_KEY": "bench",
                "WTF_CSRF_ENABLED": False,
                "RATELIMIT_ENABLED": False,
            }
        )
        with app.app_context():
            vendor_id = _fill_rides(random.Random(11))
        operation = _board_operation(app, vendor_id)
        endpoint = next((e for e in BOARD_ENDPOINTS if e in app.view_functions), None)
        page = _board_page(app, endpoint) if endpoint else None
    measured, timings = ("page", page) if page else ("operation", operation)
    return {
        "dispatch_board_p50_ms": {
            "value": round(statistics.median(timings), 1),
            "unit": "ms",
            "measured": measured,
        },
        "dispatch_board_p95_ms": {
            "value": round(_percentile(timings, 95), 1),
            "unit": "ms",
            "measured": measured,
        },
        "dispatch_board_operation_p95_ms": {
            "value": round(_percentile(operation, 95), 1),
            "unit": "ms",
        },
        "dispatch_board_rides": {"value": BOARD_RIDES, "unit": "rides"},
    }


def _fill_rides(rng: random.Random) -> int:
    """Bulk-insert the rides: BOARD_RIDES of the vendor on BOARD_DAY, and the noise."""
    from sqlalchemy import insert, select

    from referral_hub.accounts import operations as accounts
    from referral_hub.accounts.models import Organization
    from referral_hub.directory.models import Site
    from referral_hub.extensions import db
    from referral_hub.referrals.models import Referral
    from referral_hub.transport import board as board_ops
    from referral_hub.transport.models import Driver, Ride, RideStatus, Vehicle

    vendor = db.session.scalar(select(Organization).where(Organization.slug == VENDOR))
    if vendor is None:
        raise BenchError(f"the demo has no vendor {VENDOR!r}")
    other = accounts.create_organization(
        name="Bench Rides", slug="bench-rides", kind="transport_vendor"
    )
    db.session.flush()
    fleets: dict[int, tuple[list[int], list[int]]] = {}
    for org_id in (vendor.id, other.id):
        db.session.execute(
            insert(Driver),
            [{"organization_id": org_id, "first_name": f"Driver {i}"} for i in range(60)],
        )
        db.session.execute(
            insert(Vehicle),
            [{"organization_id": org_id, "label": f"Van {i}", "seats": 6} for i in range(40)],
        )
        fleets[org_id] = (
            list(db.session.scalars(select(Driver.id).where(Driver.organization_id == org_id))),
            list(db.session.scalars(select(Vehicle.id).where(Vehicle.organization_id == org_id))),
        )
    referrals = list(db.session.execute(select(Referral.id, Referral.site_id)))
    sites = list(db.session.scalars(select(Site.id)))
    start, _end = board_ops.day_bounds(BOARD_DAY)
    statuses = [s.value for s in RideStatus]
    now = datetime.now(UTC)

    def ride(org_id: int, day_offset: int) -> dict:
        referral_id, site_id = rng.choice(referrals)
        pickup = start + timedelta(days=day_offset, minutes=rng.uniform(5 * 60, 23 * 60))
        status = rng.choice(statuses)
        drivers, vehicles = fleets[org_id]
        assigned = status != "requested"
        travel = rng.uniform(8, 40)
        return {
            "uuid": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "referral_id": referral_id,
            "leg": rng.choice(["outbound", "return"]),
            "mode": "vendor",
            "status": status,
            "vendor_org_id": org_id,
            "site_id": site_id or rng.choice(sites),
            "pickup_label": f"{rng.randint(100, 4999)} Lake St",
            "pickup_lat": 44.95 + rng.uniform(-0.05, 0.05),
            "pickup_lon": -93.26 + rng.uniform(-0.05, 0.05),
            "dropoff_label": "Program site",
            "dropoff_lat": 44.97,
            "dropoff_lon": -93.26,
            "requested_for_at": pickup + timedelta(minutes=travel + 35),
            "window_start_at": pickup,
            "window_end_at": pickup + timedelta(minutes=20),
            "arrive_by_at": pickup + timedelta(minutes=travel + 25),
            "eta_earliest_at": pickup + timedelta(minutes=travel * 0.8 + 5),
            "eta_latest_at": pickup + timedelta(minutes=travel * 1.4 + 25),
            "travel_minutes": round(travel, 1),
            "travel_minutes_high": round(travel * 1.4, 1),
            "distance_km": round(travel / 2, 2),
            "estimate_source": "estimate",
            "driver_id": rng.choice(drivers) if assigned else None,
            "vehicle_id": rng.choice(vehicles) if assigned else None,
            "created_at": now,
            "updated_at": now,
        }

    rows = [ride(vendor.id, 0) for _ in range(BOARD_RIDES)]
    rows += [ride(vendor.id, rng.choice([-3, -2, -1, 1, 2, 3])) for _ in range(OTHER_DAYS_RIDES)]
    rows += [ride(other.id, 0) for _ in range(OTHER_VENDOR_RIDES)]
    for first in range(0, len(rows), 2000):
        db.session.execute(insert(Ride), rows[first : first + 2000])
    db.session.commit()
    return vendor.id


def _board_operation(app, vendor_id: int) -> list[float]:
    """The operation alone, each call in its own request (and so its own session)."""
    from referral_hub.transport import board as board_ops

    def board() -> None:
        with app.test_request_context():
            board = board_ops.dispatch_board({vendor_id}, BOARD_DAY)
            if board.total != BOARD_RIDES or not board.rows:
                raise BenchError(f"board: {board.total} rides, expected {BOARD_RIDES}")

    return _timed(board, BOARD_RUNS)


def _board_page(app, endpoint: str) -> list[float]:
    """GET the board page as the demo dispatcher (the test client: server time only)."""
    client = app.test_client()
    response = client.post("/login", data={"email": DISPATCHER, "password": PASSWORD})
    if response.status_code != 302:
        raise BenchError(f"board: login failed with {response.status_code}")
    with app.test_request_context():
        from flask import url_for

        path = url_for(endpoint, day=BOARD_DAY.isoformat())

    def get() -> None:
        response = client.get(path)
        if response.status_code != 200:
            raise BenchError(f"board: GET {path} returned {response.status_code}")

    return _timed(get, BOARD_RUNS)
