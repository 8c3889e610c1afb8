"""Group "http": real-app API throughput against a bare Flask app, same gunicorn, loopback."""

from __future__ import annotations

import contextlib
import http.client
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from bench.loadgen import HOST, LoadResult, run_load

REPO = Path(__file__).resolve().parent.parent
# The machine has 2 cores: 2 gunicorn workers and 2 load processes, for both runs alike.
WORKERS = 2
LOAD_PROCESSES = 2
STARTUP_TIMEOUT = 30.0
POLL_INTERVAL = 0.05
STOP_TIMEOUT = 30.0

ORG_SNIPPET = """\
from referral_hub import create_app
from referral_hub.extensions import db
from referral_hub.accounts import operations as ops

app = create_app()
with app.app_context():
    ops.create_organization(name="Bench City", slug="bench-city", kind="city_department")
    db.session.commit()
"""
BENCH_EMAIL = "bench@example.org"


class BenchError(RuntimeError):
    """The benchmark could not produce a trustworthy figure."""


def bench_env(workdir: Path) -> dict[str, str]:
    """Environment for every subprocess: a throwaway database and instance folder."""
    env = dict(os.environ)
    # A developer's Redis must not be shared with, or slowed down by, the benchmark.
    env.pop("REDIS_URL", None)
    env.update(
        DATABASE_URL=f"sqlite:///{workdir / 'bench.sqlite3'}",
        INSTANCE_PATH=str(workdir / "instance"),
        SECRET_KEY=secrets.token_urlsafe(32),
        # Rate limiting would turn a load test into a test of the limiter (and 429s).
        RATELIMIT_ENABLED="0",
        RH_USER_PASSWORD=secrets.token_urlsafe(16),
    )
    return env


def _run(args: list[str], env: dict[str, str], timeout: float = 120) -> str:
    """Run a command from the repo root; return its stdout, or raise with its output."""
    done = subprocess.run(
        args, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    if done.returncode != 0:
        raise BenchError(
            f"{' '.join(args)} exited {done.returncode}:\n{done.stdout}{done.stderr}".rstrip()
        )
    return done.stdout


def flask(args: list[str], env: dict[str, str], timeout: float = 900) -> str:
    """Run `flask --app referral_hub ARGS` with this interpreter (seeding can take minutes)."""
    return _run([sys.executable, "-m", "flask", "--app", "referral_hub", *args], env, timeout)


def prepare_database(env: dict[str, str]) -> str:
    """Migrate a fresh database, add an organization and a user; return an API token."""
    flask = [sys.executable, "-m", "flask", "--app", "referral_hub"]
    _run([*flask, "db", "upgrade"], env)
    # There is no CLI for a bare organization, so create it the way the CLI would.
    _run([sys.executable, "-c", ORG_SNIPPET], env)
    role = ["--org", "bench-city", "--role", "coordinator", "--name", "Bench"]
    _run([*flask, "users", "create", BENCH_EMAIL, *role], env)
    words = _run([*flask, "users", "token", BENCH_EMAIL], env).split()
    if not words:
        raise BenchError("`users token` printed nothing")
    return words[-1]


def free_port() -> int:
    """A TCP port on loopback that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def _get(port: int, path: str, headers: dict[str, str]) -> tuple[int, bytes]:
    """One GET against the server under test."""
    conn = http.client.HTTPConnection(HOST, port, timeout=5)
    try:
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


@contextlib.contextmanager
def gunicorn(app_spec: str, env: dict[str, str], log: Path) -> Iterator[int]:
    """Serve app_spec with gunicorn on a free loopback port until the block ends; yield the port."""
    port = free_port()
    # One command line for both apps: the only difference between the runs is the app.
    args = [
        sys.executable, "-m", "gunicorn",
        "-w", str(WORKERS), "-k", "sync",
        "-b", f"{HOST}:{port}",
        "--chdir", str(REPO), "--pythonpath", str(REPO),
        "--log-level", "warning",
        app_spec,
    ]  # fmt: skip
    with log.open("w") as log_file:
        proc = subprocess.Popen(args, cwd=REPO, env=env, stdout=log_file, stderr=log_file)
    try:
        _wait_until_serving(proc, port, log)
        yield port
    except Exception:
        # The log lives in a temp dir about to be deleted: show why the server misbehaved.
        tail = "\n".join(log.read_text().splitlines()[-40:])
        print(f"--- last lines of {log.name}:\n{tail}", file=sys.stderr)
        raise
    finally:
        # SIGTERM is gunicorn's graceful stop; kill only if it does not come down in time.
        proc.terminate()
        try:
            proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _wait_until_serving(proc: subprocess.Popen[bytes], port: int, log: Path) -> None:
    """Poll until the port answers HTTP; fail early if gunicorn exits."""
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError(f"gunicorn exited {proc.returncode} before answering")
        try:
            # Any HTTP answer means a worker is accepting; the status is checked separately.
            _get(port, "/", {})
            return
        except (OSError, http.client.HTTPException):
            time.sleep(POLL_INTERVAL)
    raise BenchError(f"gunicorn did not answer on port {port} in {STARTUP_TIMEOUT:.0f} s")


def measure(port: int, path: str, headers: dict[str, str], label: str) -> LoadResult:
    """Check one request returns 200, then load the path; fail on any error at all."""
    # This first request also records the token's first use (a write). Done alone, it cannot
    # race the other worker for SQLite's write lock, which gives a 500 "database is locked".
    # The app writes it again only after 5 minutes, so runs with BENCH_SECONDS under ~290 s
    # see no writes at all.
    status, body = _get(port, path, headers)
    if status != 200:
        raise BenchError(f"{label}: GET {path} returned {status}: {body[:300]!r}")
    result = run_load(port, path, headers=headers, processes=LOAD_PROCESSES)
    # A run with 401s, 500s or dropped connections measures the wrong thing: refuse it.
    if result.errors:
        failed = sum(result.errors.values())
        raise BenchError(
            f"{label}: {failed} failed requests {dict(result.errors)}, {result.ok} succeeded"
        )
    if result.ok == 0:
        raise BenchError(f"{label}: no request completed inside the measuring window")
    print(
        f"  {label}: {result.rps:.1f} req/s, p50 {result.p50_ms:.2f} ms, "
        f"p95 {result.p95_ms:.2f} ms ({result.ok} requests in {result.seconds:g} s)",
        file=sys.stderr,
    )
    return result


def run() -> dict[str, dict[str, float | str]]:
    """Measure bare Flask, then GET /api/v1/me, under identical gunicorn settings."""
    with tempfile.TemporaryDirectory(prefix="rh-bench-") as tmp:
        workdir = Path(tmp)
        env = bench_env(workdir)
        token = prepare_database(env)
        # One after the other, never together: both would compete for the same 2 cores.
        with gunicorn("bench.bare_app:app", env, workdir / "gunicorn-bare.log") as port:
            bare = measure(port, "/", {}, "bare flask GET /")
        auth = {"Authorization": f"Bearer {token}"}
        with gunicorn("wsgi:app", env, workdir / "gunicorn-api.log") as port:
            api = measure(port, "/api/v1/me", auth, "referral_hub GET /api/v1/me")
    return {
        "bare_flask_rps": {"value": round(bare.rps, 1), "unit": "req/s"},
        "api_me_rps": {"value": round(api.rps, 1), "unit": "req/s"},
        "api_vs_bare_flask_ratio": {"value": round(api.rps / bare.rps, 3), "unit": "ratio"},
        "api_me_p95_ms": {"value": round(api.p95_ms, 2), "unit": "ms"},
    }
