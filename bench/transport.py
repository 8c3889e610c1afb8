"""Group "transport": pickup planning and many-to-many travel with the offline estimator.

- pickup_plan_ms: one pickup plan (offline travel estimate + window), median of many.
- matrix_50x200_ms: a 50 x 200 travel matrix with the offline estimator, median of many.
Both run in-process on the embedded default (no network), after one warm-up call.
"""

from __future__ import annotations

import os
import random
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta

RUNS = int(os.environ.get("BENCH_TRANSPORT_RUNS", "200"))


def _timed(fn, runs: int) -> list[float]:
    fn()
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        timings.append((time.perf_counter() - started) * 1000)
    return timings


def run() -> dict:
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
