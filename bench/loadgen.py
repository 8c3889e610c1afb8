"""A small closed-loop HTTP load generator for loopback benchmarks, standard library only."""

from __future__ import annotations

import http.client
import multiprocessing
import os
import statistics
import time
from collections import Counter
from dataclasses import dataclass, field
from multiprocessing.process import BaseProcess
from multiprocessing.queues import Queue
from queue import Empty
from typing import Any

# Only loopback is ever targeted: there is deliberately no host parameter.
HOST = "127.0.0.1"
WARMUP_SECONDS = 2.0
DEFAULT_SECONDS = 10.0
# One request may never hold a worker past the end of the run by more than this.
REQUEST_TIMEOUT = 5.0
# Spawning the load processes takes about a second; this much means something is wrong.
START_TIMEOUT = 60.0


@dataclass
class LoadResult:
    """What one load run measured; only requests finishing inside the window count."""

    ok: int
    seconds: float
    errors: Counter[str] = field(default_factory=Counter)
    latencies_ms: list[float] = field(default_factory=list)

    @property
    def rps(self) -> float:
        """Successful requests per second over the measuring window."""
        return self.ok / self.seconds

    @property
    def p50_ms(self) -> float:
        """Median latency of the successful requests."""
        return _percentile(self.latencies_ms, 50)

    @property
    def p95_ms(self) -> float:
        """95th-percentile latency of the successful requests."""
        return _percentile(self.latencies_ms, 95)


def _percentile(values: list[float], pct: int) -> float:
    """The pct-th percentile of values (0.0 when there are too few to tell)."""
    if len(values) < 2:
        return values[0] if values else 0.0
    return statistics.quantiles(values, n=100)[pct - 1]


def measure_seconds() -> float:
    """Length of the measuring window: env BENCH_SECONDS, else DEFAULT_SECONDS."""
    raw = os.environ.get("BENCH_SECONDS", "").strip()
    if not raw:
        return DEFAULT_SECONDS
    seconds = float(raw)
    if seconds <= 0:
        raise ValueError(f"BENCH_SECONDS must be positive, got {raw!r}")
    return seconds


def _one_request(
    port: int, path: str, headers: dict[str, str], method: str = "GET", body: bytes | None = None
) -> int:
    """Send one request on a fresh connection and return the status (raises on network errors)."""
    # A new connection per request: gunicorn's sync workers close the connection after every
    # response anyway, so this is what every real client of such a server pays too.
    conn = http.client.HTTPConnection(HOST, port, timeout=REQUEST_TIMEOUT)
    try:
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def _worker(
    port: int,
    path: str,
    headers: dict[str, str],
    ready: Queue[int],
    go: Queue[tuple[float, float]],
    results: Queue[tuple[list[float], Counter[str]]],
    method: str = "GET",
    body: bytes | None = None,
) -> None:
    """Request path back to back inside the window sent on `go`; put latencies and errors."""
    ready.put(os.getpid())
    start, end = go.get(timeout=START_TIMEOUT)
    latencies: list[float] = []
    errors: Counter[str] = Counter()
    # time.monotonic is one system-wide clock on the POSIX systems gunicorn runs on, so the
    # window boundaries the parent computed mean the same instant in every worker.
    while time.monotonic() < end:
        began = time.perf_counter()
        try:
            status = _one_request(port, path, headers, method, body)
        except (OSError, http.client.HTTPException) as exc:
            errors[type(exc).__name__] += 1
            continue
        finished = time.monotonic()
        if status not in (200, 201):
            # Counted during warm-up too: a 401 is a broken benchmark whenever it happens.
            errors[f"HTTP {status}"] += 1
        elif start <= finished <= end:
            latencies.append((time.perf_counter() - began) * 1000.0)
    results.put((latencies, errors))


def _get_all(queue: Queue[Any], procs: list[BaseProcess], deadline: float) -> list[Any]:
    """One item from every worker, failing fast if a worker dies or the deadline passes."""
    items: list[Any] = []
    while len(items) < len(procs):
        if time.monotonic() > deadline:
            raise TimeoutError("load workers did not report in time")
        try:
            items.append(queue.get(timeout=0.2))
        except Empty:
            if any(p.exitcode not in (None, 0) for p in procs):
                raise RuntimeError("a load worker died; see its traceback above") from None
    return items


def run_load(
    port: int,
    path: str,
    *,
    headers: dict[str, str] | None = None,
    processes: int = 2,
    seconds: float | None = None,
    warmup: float = WARMUP_SECONDS,
    method: str = "GET",
    body: bytes | None = None,
) -> LoadResult:
    """Load http://127.0.0.1:port/path from `processes` processes; measure after a warm-up."""
    seconds = measure_seconds() if seconds is None else seconds
    # spawn, not fork: the workers need nothing from this process, and forking a parent that
    # may hold threads or open sockets is a source of hard-to-explain hangs. Spawning takes
    # about a second, hence the handshake below instead of starting the clock at once.
    ctx = multiprocessing.get_context("spawn")
    ready, go, results = ctx.Queue(), ctx.Queue(), ctx.Queue()
    args = (port, path, headers or {}, ready, go, results, method, body)
    procs = [ctx.Process(target=_worker, args=args, daemon=True) for _ in range(processes)]
    for proc in procs:
        proc.start()
    try:
        _get_all(ready, procs, time.monotonic() + START_TIMEOUT)
        # The window is fixed only once every worker runs, and is the same for all of them.
        start = time.monotonic() + warmup
        end = start + seconds
        for _ in procs:
            go.put((start, end))
        # Workers stop by themselves at `end`; allow for one last slow request plus shutdown.
        parts = _get_all(results, procs, end + 2 * REQUEST_TIMEOUT + 10)
    finally:
        for proc in procs:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.terminate()
                proc.join()
    result = LoadResult(ok=0, seconds=seconds)
    for latencies, errors in parts:
        result.ok += len(latencies)
        result.latencies_ms.extend(latencies)
        result.errors.update(errors)
    return result
