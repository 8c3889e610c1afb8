"""Real delivery endpoints on loopback: an SMTP server (aiosmtpd) and a Twilio-style SMS API."""

from __future__ import annotations

import base64
import itertools
import json
import os
import socket
import threading
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import pytest
from aiosmtpd.controller import Controller
from flask import Flask

from referral_hub.accounts.models import OrgKind
from referral_hub.directory.models import Program
from referral_hub.extensions import db
from referral_hub.referrals.models import Client, Referral

SMS_SID = "AC0123456789abcdef0123456789abcdef"
SMS_TOKEN = "test-auth-token"
SMS_FROM = "+16125550100"
REJECTED_ADDRESS = "nobody@rejected.example.org"

_seq = itertools.count(1)


def free_port() -> int:
    """A TCP port nobody listens on right now (so a server can be started there later)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class ReceivedMail:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage


class SmtpRecorder:
    """aiosmtpd handler: accept and keep every message; refuse one address with a 550."""

    def __init__(self) -> None:
        self.received: list[ReceivedMail] = []

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address == REJECTED_ADDRESS:
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        message = message_from_bytes(envelope.content, policy=default_policy)
        self.received.append(ReceivedMail(envelope.mail_from, list(envelope.rcpt_tos), message))
        return "250 Message accepted for delivery"


class SmtpServer:
    """A real SMTP server on 127.0.0.1 that can be stopped and started on the same port."""

    def __init__(self) -> None:
        self.port = free_port()
        self.handler = SmtpRecorder()
        self.controller: Controller | None = None

    @property
    def received(self) -> list[ReceivedMail]:
        return self.handler.received

    def start(self) -> None:
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


@dataclass
class SmsPost:
    path: str
    form: dict[str, str]
    auth: tuple[str, str] | None
    idempotency_key: str | None


class SmsGateway:
    """Speaks Twilio's Messages API: records form posts, answers 201 {"sid": "SM..."}.

    Queue (status, json) pairs in `responses` to answer the next posts otherwise.
    """

    def __init__(self) -> None:
        self.port = free_port()
        self.posts: list[SmsPost] = []
        self.responses: deque[tuple[int, dict]] = deque()
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _answer(self, post: SmsPost) -> tuple[int, dict]:
        with self._lock:
            self.posts.append(post)
            if self.responses:
                return self.responses.popleft()
            return 201, {"sid": f"SM{len(self.posts):032x}", "status": "queued"}

    def start(self) -> None:
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                auth = None
                header = self.headers.get("Authorization", "")
                if header.startswith("Basic "):
                    user, _, password = base64.b64decode(header[6:]).decode().partition(":")
                    auth = (user, password)
                status, payload = gateway._answer(
                    SmsPost(self.path, form, auth, self.headers.get("Idempotency-Key"))
                )
                body = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format, *args) -> None:  # keep the test output clean
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        # A short poll interval: shutdown() waits for it, at every test's teardown.
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join()
            self._server = None


@pytest.fixture(autouse=True)
def _fresh_console_log(app) -> None:
    """Start each test with no console log: rolled-back tests reuse message ids."""
    path = os.path.join(app.instance_path, "notifications.log")
    if os.path.exists(path):
        os.remove(path)


@pytest.fixture
def smtp_server(app, monkeypatch) -> Iterator[SmtpServer]:
    """A running SMTP server, and the app configured to send e-mail through it."""
    server = SmtpServer()
    monkeypatch.setitem(app.config, "SMTP_HOST", "127.0.0.1")
    monkeypatch.setitem(app.config, "SMTP_PORT", server.port)
    monkeypatch.setitem(app.config, "MAIL_FROM", "referrals@hub.example.org")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def sms_gateway(app, monkeypatch) -> Iterator[SmsGateway]:
    """A running SMS gateway, and the app configured to use it."""
    gateway = SmsGateway()
    monkeypatch.setitem(app.config, "SMS_BASE_URL", gateway.base_url)
    monkeypatch.setitem(app.config, "SMS_ACCOUNT_SID", SMS_SID)
    monkeypatch.setitem(app.config, "SMS_AUTH_TOKEN", SMS_TOKEN)
    monkeypatch.setitem(app.config, "SMS_FROM", SMS_FROM)
    monkeypatch.setitem(app.config, "NOTIFY_CLIENT_CHANNEL", "sms")
    gateway.start()
    yield gateway
    gateway.stop()


@pytest.fixture
def make_referral(app: Flask, make_org, make_user) -> Callable[..., int]:
    """A sent referral to a new program; returns its id."""

    def factory(program_name: str = "Northside Housing Navigation") -> int:
        n = next(_seq)
        provider = make_org(OrgKind.PROVIDER)
        referrer = make_user("responder")
        with app.test_request_context():
            program = Program(
                organization_id=provider.id, slug=f"notify-program-{n}", name=program_name
            )
            client = Client(
                organization_id=referrer.primary_membership.organization_id,
                display_name="Maria Lopez",
                name_key="maria lopez",
            )
            db.session.add_all([program, client])
            db.session.flush()
            referral = Referral(
                client_id=client.id,
                program_id=program.id,
                provider_org_id=provider.id,
                referring_org_id=client.organization_id,
                referring_user_id=referrer.id,
                status="sent",
            )
            db.session.add(referral)
            db.session.commit()
            return referral.id

    return factory
