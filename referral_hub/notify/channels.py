"""Delivery channels: console (a log file), e-mail over SMTP, SMS over a Twilio-style API.

Each channel's `send(message)` returns the provider's id for the message (or None) and
raises TemporaryFailure when a later attempt may succeed, PermanentFailure when none will.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import os
import smtplib
import ssl
import threading
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate
from typing import Protocol

from flask import current_app

from referral_hub.notify.models import Channel

DEFAULT_TIMEOUT = 10.0
ERROR_DETAIL_LENGTH = 300


class DeliveryFailure(Exception):
    """A message could not be delivered this time."""


class TemporaryFailure(DeliveryFailure):
    """Try again later: the server is down, busy or rate-limiting us."""


class PermanentFailure(DeliveryFailure):
    """Retrying cannot help: the provider rejected this message."""


class Sendable(Protocol):
    """What a channel reads from a message (a Message row or a snapshot of one)."""

    id: int
    recipient: str
    subject: str | None
    body: str
    dedupe_key: str


class Sender(Protocol):
    def send(self, message: Sendable) -> str | None: ...


def _timeout() -> float:
    return float(current_app.config.get("NOTIFY_TIMEOUT", DEFAULT_TIMEOUT))


# --- console ---------------------------------------------------------------------------------

# Worker threads of one process share the file; a line must never interleave with another.
_console_lock = threading.Lock()


@dataclass(frozen=True)
class ConsoleChannel:
    """Append one JSON line per message to instance/notifications.log (the embedded default)."""

    path: str

    @classmethod
    def from_config(cls) -> ConsoleChannel:
        return cls(os.path.join(current_app.instance_path, "notifications.log"))

    def send(self, message: Sendable) -> str | None:
        """Write the message as one JSON line."""
        line = json.dumps(
            {
                "id": message.id,
                "channel": "console",
                "recipient": message.recipient,
                "subject": message.subject,
                "body": message.body,
            },
            ensure_ascii=False,
        )
        try:
            with _console_lock, open(self.path, "a", encoding="utf-8") as fh:
                fh.write(line + "\n")
        except OSError as exc:
            raise TemporaryFailure(f"cannot write {self.path}: {exc}") from exc
        return None


# --- e-mail ----------------------------------------------------------------------------------


def message_id_for(dedupe_key: str, sender: str) -> str:
    """A stable Message-ID: a resent message is recognisably the same one to the receiver."""
    digest = hashlib.sha256(dedupe_key.encode()).hexdigest()[:40]
    domain = sender.rpartition("@")[2] or "localhost"
    return f"<{digest}@{domain}>"


@dataclass(frozen=True)
class EmailChannel:
    """Plain-text e-mail through an SMTP relay."""

    host: str
    port: int
    sender: str
    username: str | None = None
    password: str | None = None
    starttls: bool = False
    timeout: float = DEFAULT_TIMEOUT

    @classmethod
    def from_config(cls) -> EmailChannel:
        config = current_app.config
        return cls(
            host=config.get("SMTP_HOST", "127.0.0.1"),
            port=int(config.get("SMTP_PORT", 25)),
            sender=config.get("MAIL_FROM", "referral_hub@localhost"),
            username=config.get("SMTP_USERNAME") or None,
            password=config.get("SMTP_PASSWORD") or None,
            starttls=bool(config.get("SMTP_STARTTLS", False)),
            timeout=_timeout(),
        )

    def build(self, message: Sendable) -> EmailMessage:
        """The e-mail for a message, with a Message-ID derived from its dedupe key."""
        mail = EmailMessage()
        mail["From"] = self.sender
        mail["To"] = message.recipient
        mail["Subject"] = message.subject or ""
        mail["Date"] = formatdate(usegmt=True)
        mail["Message-ID"] = message_id_for(message.dedupe_key, self.sender)
        mail.set_content(message.body)
        return mail

    def send(self, message: Sendable) -> str | None:
        """Hand the message to the SMTP server; returns its Message-ID."""
        mail = self.build(message)
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
                if self.starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if self.username:
                    smtp.login(self.username, self.password or "")
                smtp.send_message(mail)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _text in exc.recipients.values()]
            error = f"recipient refused: {exc.recipients}"
            if all(500 <= code < 600 for code in codes):
                raise PermanentFailure(error) from exc
            raise TemporaryFailure(error) from exc
        except smtplib.SMTPAuthenticationError as exc:
            # Wrong credentials are the operator's to fix; keep the message until they do.
            raise TemporaryFailure(f"SMTP authentication failed: {exc.smtp_code}") from exc
        except smtplib.SMTPResponseException as exc:
            error = f"SMTP {exc.smtp_code}: {_text(exc.smtp_error)}"
            if 500 <= exc.smtp_code < 600:
                raise PermanentFailure(error) from exc
            raise TemporaryFailure(error) from exc
        except (smtplib.SMTPException, OSError) as exc:
            raise TemporaryFailure(f"SMTP {self.host}:{self.port}: {exc!r}") from exc
        return mail["Message-ID"]


# --- SMS ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SmsChannel:
    """SMS through a Twilio-compatible REST API (Twilio itself, or a gateway that mimics it)."""

    base_url: str
    account_sid: str | None
    auth_token: str | None
    sender: str | None
    timeout: float = DEFAULT_TIMEOUT

    @classmethod
    def from_config(cls) -> SmsChannel:
        config = current_app.config
        return cls(
            base_url=config.get("SMS_BASE_URL", "https://api.twilio.com").rstrip("/"),
            account_sid=config.get("SMS_ACCOUNT_SID") or None,
            auth_token=config.get("SMS_AUTH_TOKEN") or None,
            sender=config.get("SMS_FROM") or None,
            timeout=_timeout(),
        )

    def request(self, message: Sendable) -> urllib.request.Request:
        """The HTTP request that sends a message."""
        if not (self.account_sid and self.auth_token and self.sender):
            # Configuration can still be fixed: keep the message and retry.
            raise TemporaryFailure(
                "SMS is not configured (SMS_ACCOUNT_SID, SMS_AUTH_TOKEN, SMS_FROM)"
            )
        if not self.base_url.startswith(("https://", "http://")):
            raise PermanentFailure(f"SMS_BASE_URL must be http(s): {self.base_url!r}")
        sid = urllib.parse.quote(self.account_sid, safe="")
        url = f"{self.base_url}/2010-04-01/Accounts/{sid}/Messages.json"
        form = {"To": message.recipient, "From": self.sender, "Body": message.body}
        credentials = base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        return urllib.request.Request(  # noqa: S310  (scheme checked above)
            url,
            data=urllib.parse.urlencode(form).encode(),
            method="POST",
            headers={
                "Authorization": f"Basic {credentials}",
                "Content-Type": "application/x-www-form-urlencoded",
                "Accept": "application/json",
                # The gateway may drop a retry of a message it already accepted.
                "Idempotency-Key": message.dedupe_key,
            },
        )

    def send(self, message: Sendable) -> str | None:
        """POST the message; returns the gateway's message sid."""
        request = self.request(message)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                payload = response.read()
        except urllib.error.HTTPError as exc:
            with exc:
                error = f"HTTP {exc.code}: {_error_message(exc.read())}"
            if exc.code == 429 or exc.code >= 500:
                raise TemporaryFailure(error) from exc
            raise PermanentFailure(error) from exc
        except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
            raise TemporaryFailure(f"SMS gateway {self.base_url}: {exc!r}") from exc
        try:
            sid = json.loads(payload).get("sid")
        except (ValueError, AttributeError):
            sid = None  # accepted all the same: a 2xx means the gateway has the message
        return str(sid) if sid else None


def _error_message(payload: bytes) -> str:
    """The gateway's error text: the JSON "message", else the start of the body."""
    try:
        data = json.loads(payload)
    except ValueError:
        data = None
    if isinstance(data, dict) and data.get("message"):
        return str(data["message"])[:ERROR_DETAIL_LENGTH]
    return _text(payload)


def _text(value: bytes | str) -> str:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return value.strip()[:ERROR_DETAIL_LENGTH]


CHANNELS: dict[Channel, type[ConsoleChannel] | type[EmailChannel] | type[SmsChannel]] = {
    Channel.CONSOLE: ConsoleChannel,
    Channel.EMAIL: EmailChannel,
    Channel.SMS: SmsChannel,
}


def channel_for(name: Channel | str) -> Sender:
    """The configured sender for a channel name (needs an app context)."""
    try:
        channel = Channel(name)
    except ValueError:
        raise PermanentFailure(f"unknown channel {name!r}") from None
    return CHANNELS[channel].from_config()
