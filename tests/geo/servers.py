"""Local stand-ins for the remote geo services, on 127.0.0.1 only.

One threaded HTTP server speaks openrouteservice v2 (directions and matrix, its error
bodies), Nominatim (/search, /reverse) and Pelias (/v1/search, /v1/reverse) JSON. It records
every request so tests can count them, and answers scripted replies first.
"""

from __future__ import annotations

import json
import re
import socket
import threading
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

NOT_ROUTABLE = (
    "Could not find routable point within a radius of 350.0 meters of specified coordinate"
)


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def fake_leg(a: list[float], b: list[float]) -> tuple[float, float]:
    """The (seconds, metres) the fake ORS answers from (lon, lat) `a` to `b`."""
    # A minute, plus a second per 0.0001 degree of longitude and two per 0.0001 of latitude:
    # each pair of test points gets its own time, and a swapped (lat, lon) would change it.
    seconds = 60.0 + round((abs(a[0] - b[0]) + 2 * abs(a[1] - b[1])) * 10_000)
    return seconds, seconds * 8.0


def ors_error(status: int, code: int, message: str) -> Reply:
    """An ORS error reply: {"error": {"code", "message"}, "info": {...}}."""
    body = {"error": {"code": code, "message": message}, "info": {"engine": {"version": "9.1"}}}
    return Reply(status, body)


@dataclass
class Seen:
    """One request the server received."""

    method: str
    path: str
    query: dict[str, str]
    body: Any
    headers: dict[str, str]


@dataclass
class Reply:
    """A scripted answer: a JSON body (or raw text), after `delay` seconds at most."""

    status: int
    body: Any
    delay: float = 0.0


@dataclass
class GeoServer:
    """The fake services; use as a context manager, which starts and stops it."""

    port: int = field(default_factory=free_port)
    seen: list[Seen] = field(default_factory=list)
    replies: deque[Reply] = field(default_factory=deque)  # answered first, in order
    unreachable: set[tuple[float, float]] = field(default_factory=set)  # (lon, lat), no route
    nominatim: dict[str, list[dict]] = field(default_factory=dict)  # query (lower) → results
    nominatim_reverse: dict | None = None
    pelias: dict[str, list[dict]] = field(default_factory=dict)  # text (lower) → features
    pelias_reverse: list[dict] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._release = threading.Event()  # set at stop: slow replies end at once
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def script(self, *replies: Reply) -> None:
        """Answer the next requests with these, whatever they ask."""
        with self._lock:
            self.replies.extend(replies)

    def requests(self, prefix: str = "/") -> list[Seen]:
        """The requests received whose path starts with `prefix`."""
        with self._lock:
            return [s for s in self.seen if s.path.startswith(prefix)]

    def answer(self, seen: Seen) -> Reply:
        with self._lock:
            self.seen.append(seen)
            if self.replies:
                return self.replies.popleft()
        routes = (
            (r"/v2/directions/[\w-]+/json", self._directions),
            (r"/v2/matrix/[\w-]+/json", self._matrix),
            (r"/search", lambda s: Reply(200, self.nominatim.get(s.query["q"].lower(), []))),
            (r"/reverse", self._nominatim_reverse),
            (r"/v1/search", self._pelias_search),
            (r"/v1/reverse", lambda s: Reply(200, {"features": self.pelias_reverse})),
        )
        for pattern, handle in routes:
            if re.fullmatch(pattern, seen.path):
                return handle(seen)
        return Reply(404, {"error": "Not Found"})

    def _directions(self, seen: Seen) -> Reply:
        a, b = seen.body["coordinates"]
        for index, point in enumerate((a, b)):
            if tuple(point) in self.unreachable:
                lon, lat = point
                return ors_error(404, 2010, f"{NOT_ROUTABLE} {index}: {lon:.7f} {lat:.7f}.")
        seconds, meters = fake_leg(a, b)
        summary = {"distance": meters, "duration": seconds}
        return Reply(200, {"routes": [{"summary": summary, "way_points": [0, 1]}]})

    def _matrix(self, seen: Seen) -> Reply:
        locations = seen.body["locations"]
        sources = seen.body.get("sources", range(len(locations)))
        dests = seen.body.get("destinations", range(len(locations)))
        durations, distances = [], []
        for i in sources:
            durations.append([])
            distances.append([])
            for j in dests:
                a, b = locations[i], locations[j]
                blocked = tuple(a) in self.unreachable or tuple(b) in self.unreachable
                seconds, meters = (None, None) if blocked else fake_leg(a, b)
                durations[-1].append(seconds)
                distances[-1].append(meters)
        return Reply(200, {"durations": durations, "distances": distances})

    def _nominatim_reverse(self, seen: Seen) -> Reply:
        return Reply(200, self.nominatim_reverse or {"error": "Unable to geocode"})

    def _pelias_search(self, seen: Seen) -> Reply:
        return Reply(200, {"features": self.pelias.get(seen.query["text"].lower(), [])})

    def __enter__(self) -> GeoServer:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                seen = Seen(
                    self.command,
                    parts.path,
                    dict(parse_qsl(parts.query)),
                    json.loads(raw) if raw else None,
                    dict(self.headers.items()),
                )
                reply = fake.answer(seen)
                if reply.delay:
                    fake._release.wait(reply.delay)  # bounded; ends early when stopping
                text = reply.body if isinstance(reply.body, str) else json.dumps(reply.body)
                kind = "text/plain" if isinstance(reply.body, str) else "application/json"
                data = text.encode()
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", kind)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up waiting, as it should

            do_GET = do_POST = _handle

            def log_message(self, format: str, *args: Any) -> None:  # quiet test output
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        # A short poll interval: shutdown() waits for it at every test's teardown.
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._release.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=5)
            self._server = None
