"""Group "referrals": the provider inbox over 100,000 referrals, and sending referrals.

- inbox_p95_ms: server time of the provider inbox page (GET /referrals) for a provider
  of the demo city, with REFERRALS synthetic referrals in the database, measured in-process.
- referral_create_rps: POST /api/v1/referrals (client, consent, program) under gunicorn with
  the same settings as the "http" group, and its ratio to a bare Flask app measured in the
  same run under the same server (referral_create_vs_bare_ratio).
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import time
from pathlib import Path

from bench.http import BenchError, bench_env, flask, gunicorn
from bench.loadgen import run_load

REPO = Path(__file__).resolve().parent.parent
REFERRALS = int(os.environ.get("BENCH_REFERRALS", "100000"))
INBOX_RUNS = int(os.environ.get("BENCH_INBOX_RUNS", "100"))
PROVIDER = "staff2@example.org"  # employment provider staff of the demo city
RESPONDER = "responder@example.org"
PASSWORD = "bench-password-2026"  # noqa: S105  (demo users of a throw-away database)


def _percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, round(pct / 100 * len(ordered)) - 1)]


def _inbox(env: dict[str, str]) -> list[float]:
    os.environ.update({"INSTANCE_PATH": env["INSTANCE_PATH"]})
    from referral_hub import create_app

    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": env["DATABASE_URL"],
            "SECRET_KEY": "bench",
            "WTF_CSRF_ENABLED": False,
            "RATELIMIT_ENABLED": False,
        }
    )
    client = app.test_client()
    response = client.post("/login", data={"email": PROVIDER, "password": PASSWORD})
    if response.status_code != 302:
        raise BenchError(f"inbox: login failed with {response.status_code}")
    first = client.get("/referrals")
    if first.status_code != 200:
        raise BenchError(f"inbox: GET /referrals returned {first.status_code}")
    timings = []
    for n in range(INBOX_RUNS):
        path = "/referrals" if n % 2 == 0 else "/referrals?page=2"
        started = time.perf_counter()
        response = client.get(path)
        timings.append((time.perf_counter() - started) * 1000)
        if response.status_code != 200:
            raise BenchError(f"inbox: GET {path} returned {response.status_code}")
    return timings


def _post(port: int, path: str, headers: dict[str, str], body: dict) -> dict:
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request(
            "POST",
            path,
            body=json.dumps(body),
            headers={**headers, "Content-Type": "application/json"},
        )
        response = conn.getresponse()
        data = json.loads(response.read() or b"{}")
        if response.status not in (200, 201):
            raise BenchError(f"POST {path} returned {response.status}: {data}")
        return data
    finally:
        conn.close()


def run() -> dict:
    with tempfile.TemporaryDirectory(prefix="rh-bench-referrals-") as tmp:
        workdir = Path(tmp)
        env = {**bench_env(workdir), "DEMO_PASSWORD": PASSWORD}
        flask(["db", "upgrade"], env)
        flask(["seed", "demo"], env)
        flask(["seed", "synthetic-referrals", "--referrals", str(REFERRALS)], env)
        inbox = _inbox(env)
        token = flask(["users", "token", RESPONDER], env).split()[-1]
        auth = {"Authorization": f"Bearer {token}"}

        with gunicorn("bench.bare_app:app", env, workdir / "gunicorn-bare.log") as port:
            bare = run_load(port, "/", processes=2)
        with gunicorn("wsgi:app", env, workdir / "gunicorn-api.log") as port:
            person = _post(port, "/api/v1/clients", auth, {"display_name": "Bench Person"})
            program_id = _program_id(port, auth)
            consent = _post(
                port,
                f"/api/v1/clients/{person['id']}/consents",
                auth,
                {"program_id": program_id, "method": "verbal"},
            )
            payload = json.dumps(
                {"client_id": person["id"], "program_id": program_id, "consent_id": consent["id"]}
            ).encode()
            headers = {**auth, "Content-Type": "application/json"}
            create = run_load(
                port, "/api/v1/referrals", headers=headers, processes=2, method="POST", body=payload
            )
        if create.errors or bare.errors:
            raise BenchError(
                f"failed requests: create {dict(create.errors)}, bare {dict(bare.errors)}"
            )
    return {
        "inbox_p50_ms": {"value": round(statistics.median(inbox), 1), "unit": "ms"},
        "inbox_p95_ms": {"value": round(_percentile(inbox, 95), 1), "unit": "ms"},
        "inbox_referrals": {"value": REFERRALS, "unit": "referrals"},
        "referral_create_rps": {"value": round(create.rps, 1), "unit": "req/s"},
        "referral_create_p95_ms": {"value": round(create.p95_ms, 1), "unit": "ms"},
        "referral_bare_flask_rps": {"value": round(bare.rps, 1), "unit": "req/s"},
        "referral_create_vs_bare_ratio": {
            "value": round(create.rps / bare.rps, 3),
            "unit": "ratio",
        },
    }


def _program_id(port: int, auth: dict[str, str]) -> int:
    """A program that takes referrals, found through the matching API like a client would."""
    data = _post(port, "/api/v1/matches", auth, {"answers": {"needs": ["employment"]}})
    if not data["eligible"]:
        raise BenchError("no eligible employment program in the demo directory")
    return data["eligible"][0]["program_id"]
