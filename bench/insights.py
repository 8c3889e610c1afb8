"""Group "insights": the coordinator's dashboard over a 1,000,000-referral history.

- dashboard_p95_ms_1m (and _p50_ms_1m): server time of GET /insights with its default
  filters (the last 90 days, city-wide), signed in as the demo coordinator, measured
  in-process with Flask's test client after warm-up requests.
- dashboard_referrals_1m: the referrals in the database the dashboard reads.

The data lives in its own PostgreSQL database (rh_bench_insights on the local server),
built with `seed demo` and `seed synthetic-history` and vacuumed (as autovacuum would after
a bulk insert), and dropped afterwards. The admin
connection goes to the `postgres` maintenance database; no other database is touched.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench.http import BenchError, bench_env, flask

REFERRALS = int(os.environ.get("BENCH_INSIGHTS_REFERRALS", "1000000"))
RUNS = int(os.environ.get("BENCH_INSIGHTS_RUNS", "20"))
WARMUP = 2
ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
DATABASE = "rh_bench_insights"
COORDINATOR = "coordinator@example.org"
PASSWORD = "demo-password-2026"  # noqa: S105  (the demo's users, in a throw-away database)
PATH = "/insights"
TARGET_MS = 1000
# Never create, drop or connect to these: CI runs its tests in `test`.
PROTECTED = {"test", "postgres", "template0", "template1"}


def _percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, round(pct / 100 * len(ordered)) - 1)]


def _admin_engine():
    import sqlalchemy as sa

    engine = sa.create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
    except Exception as exc:
        engine.dispose()
        raise BenchError(
            f"insights: PostgreSQL is unavailable at {ADMIN_URL} ({exc.__class__.__name__}: "
            f"{str(exc).strip().splitlines()[0] if str(exc).strip() else ''}); this group "
            "needs a local PostgreSQL server (user postgres, trust auth)"
        ) from exc
    return engine


def _drop(engine) -> None:
    assert DATABASE not in PROTECTED
    with engine.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')


def run() -> dict:
    if RUNS < 20:
        raise BenchError(f"BENCH_INSIGHTS_RUNS={RUNS}: at least 20 requests make a p95")
    import sqlalchemy as sa

    admin = _admin_engine()
    url = str(sa.engine.make_url(ADMIN_URL).set(database=DATABASE))
    try:
        _drop(admin)  # a leftover of an interrupted run
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{DATABASE}"')
        with tempfile.TemporaryDirectory(prefix="rh-bench-insights-") as tmp:
            env = {**bench_env(Path(tmp)), "DATABASE_URL": url, "DEMO_PASSWORD": PASSWORD}
            env.pop("TEST_DATABASE_URL", None)
            started = time.perf_counter()
            flask(["db", "upgrade"], env)
            flask(["seed", "demo"], env)
            out = flask(
                ["seed", "synthetic-history", "--referrals", str(REFERRALS)], env, timeout=3600
            )
            build_s = time.perf_counter() - started
            print(f"insights: data built in {build_s:.0f} s: {out.strip()}", file=sys.stderr)
            # What autovacuum does to a table after a bulk insert, done now rather than in
            # its own time: the visibility map (index-only scans) and statistics.
            engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
            try:
                with engine.connect() as conn:
                    conn.exec_driver_sql("VACUUM (ANALYZE)")
            finally:
                engine.dispose()
            timings, referrals = _measure(env, url)
    finally:
        _drop(admin)
        admin.dispose()
    return {
        "dashboard_p50_ms_1m": {"value": round(statistics.median(timings), 1), "unit": "ms"},
        "dashboard_p95_ms_1m": {
            "value": round(_percentile(timings, 95), 1),
            "unit": "ms",
            "runs": len(timings),
            "target": TARGET_MS,
            "build_s": round(build_s),
        },
        "dashboard_referrals_1m": {"value": referrals, "unit": "referrals"},
    }


def _measure(env: dict[str, str], url: str) -> tuple[list[float], int]:
    """Sign in as the coordinator and time GET /insights with the test client."""
    os.environ["INSTANCE_PATH"] = env["INSTANCE_PATH"]
    from sqlalchemy import func, select

    from referral_hub import create_app
    from referral_hub.extensions import db
    from referral_hub.referrals.models import Referral

    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": url,
            "SECRET_KEY": "bench",
            "WTF_CSRF_ENABLED": False,
            "RATELIMIT_ENABLED": False,
        }
    )
    try:
        with app.app_context():
            referrals = db.session.scalar(select(func.count()).select_from(Referral))
        client = app.test_client()
        response = client.post("/login", data={"email": COORDINATOR, "password": PASSWORD})
        if response.status_code != 302:
            raise BenchError(f"insights: login failed with {response.status_code}")

        def get() -> None:
            response = client.get(PATH)
            if response.status_code != 200:
                raise BenchError(f"insights: GET {PATH} returned {response.status_code}")

        for _ in range(WARMUP):
            get()
        timings = []
        for _ in range(RUNS):
            started = time.perf_counter()
            get()
            timings.append((time.perf_counter() - started) * 1000)
    finally:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
    return timings, referrals
