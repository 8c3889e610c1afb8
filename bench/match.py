"""Group "match": one screener against a 20,000-program synthetic directory.

The directory is built with `flask seed synthetic` in a throw-away SQLite file and, when
PostgreSQL answers on this machine, in a throw-away PostgreSQL database. Screenings vary
the place (dense metro, suburbs, rural) and the needs; the figure is server time of the
match operation itself, measured in-process (no HTTP), after one warm-up call.
"""

from __future__ import annotations

import os
import random
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from bench.http import flask

REPO = Path(__file__).resolve().parent.parent
PROGRAMS = int(os.environ.get("BENCH_MATCH_PROGRAMS", "20000"))
SITES = int(os.environ.get("BENCH_MATCH_SITES", "50000"))
RUNS = int(os.environ.get("BENCH_MATCH_RUNS", "200"))
POSTGRES_URL = os.environ.get(
    "BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)

SCREENINGS = [
    {"needs": ["housing"], "age": 30, "language": "so", "unsheltered": True},
    {"needs": ["employment"], "age": 22, "justice_status": "charged_misdemeanor"},
    {"needs": ["victim_services"], "crime_type": "assault", "age": 40},
    {"needs": ["behavioral_health", "housing"], "mental_health_crisis": True},
    {"needs": ["diversion"], "age": 19, "justice_status": "arrested_not_charged"},
    {},
]
PLACES = [
    (44.9778, -93.2650),
    (44.9483, -93.2360),
    (45.0118, -93.2915),
    (44.8600, -93.4200),
    (46.7867, -92.1005),
    (44.0121, -92.4802),
]


def _measure(url: str, workdir: str) -> tuple[list[float], int]:
    """Build the directory at url, then time RUNS matches in this process."""
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "INSTANCE_PATH": workdir,
        "SECRET_KEY": "bench",
        "RATELIMIT_ENABLED": "0",
    }
    flask(["db", "upgrade"], env)
    flask(["seed", "synthetic", "--programs", str(PROGRAMS), "--sites", str(SITES)], env)

    os.environ["INSTANCE_PATH"] = workdir
    from sqlalchemy import func, select

    from referral_hub import create_app
    from referral_hub.directory.models import Program
    from referral_hub.extensions import db
    from referral_hub.geo.base import Point
    from referral_hub.matching.operations import match

    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "bench"})
    rng = random.Random(7)
    timings: list[float] = []
    with app.test_request_context():
        programs = db.session.scalar(select(func.count()).select_from(Program))
        match(SCREENINGS[0], point=Point(*PLACES[0]))  # warm caches: gazetteer, ZIP data
        for _ in range(RUNS):
            answers = rng.choice(SCREENINGS)
            lat, lon = rng.choice(PLACES)
            point = Point(lat + rng.uniform(-0.02, 0.02), lon + rng.uniform(-0.02, 0.02))
            started = time.perf_counter()
            match(answers, point=point)
            timings.append((time.perf_counter() - started) * 1000)
        db.session.remove()
        db.engine.dispose()
    return timings, programs


def _figures(prefix: str, timings: list[float], programs: int) -> dict:
    ordered = sorted(timings)
    p95 = ordered[max(0, round(0.95 * len(ordered)) - 1)]
    return {
        f"{prefix}p50_ms": {"value": round(statistics.median(ordered), 1), "unit": "ms"},
        f"{prefix}p95_ms": {"value": round(p95, 1), "unit": "ms"},
        f"{prefix}programs": {"value": programs, "unit": "programs"},
    }


def _postgres_database() -> tuple[str, callable] | None:
    """A fresh database on the local PostgreSQL server, or None when it does not answer."""
    import sqlalchemy as sa

    try:
        admin = sa.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
        name = f"rh_bench_{uuid.uuid4().hex[:8]}"
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    except Exception as exc:
        print(f"match: PostgreSQL unavailable, skipping its figures ({exc.__class__.__name__})")
        return None

    def drop() -> None:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()

    return str(sa.engine.make_url(POSTGRES_URL).set(database=name)), drop


def run() -> dict:
    figures: dict = {}
    with tempfile.TemporaryDirectory(prefix="rh-bench-match-") as workdir:
        url = f"sqlite:///{Path(workdir) / 'match.sqlite3'}"
        timings, programs = _measure(url, workdir)
        figures.update(_figures("match_", timings, programs))
        pg = _postgres_database()
        if pg is not None:
            pg_url, drop = pg
            try:
                timings, programs = _measure(pg_url, workdir)
                figures.update(_figures("match_postgres_", timings, programs))
            finally:
                drop()
    return figures
