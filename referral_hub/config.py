"""Settings from the environment, with safe defaults for the embedded demo."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

SUPPORTED_LANGUAGES = ("en", "es", "so", "hmn")


def _bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _instance_secret_key(instance_path: Path) -> str:
    """Return the embedded install's secret key, generating it once under instance/."""
    key_file = instance_path / "secret_key"
    if key_file.exists():
        return key_file.read_text().strip()
    instance_path.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    # O_EXCL so two processes starting together cannot both write a key.
    try:
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return key_file.read_text().strip()
    with os.fdopen(fd, "w") as fh:
        fh.write(key)
    return key


def _optional(name: str) -> str | None:
    return os.environ.get(name) or None


def load(instance_path: str) -> dict:
    """Build the configuration mapping from environment variables."""
    instance = Path(instance_path)
    base_url = os.environ.get("BASE_URL", "http://127.0.0.1:5000").rstrip("/")
    https = base_url.startswith("https://")
    redis_url = os.environ.get("REDIS_URL")
    return {
        "SECRET_KEY": os.environ.get("SECRET_KEY") or _instance_secret_key(instance),
        "SQLALCHEMY_DATABASE_URI": os.environ.get(
            "DATABASE_URL", f"sqlite:///{instance / 'referral_hub.sqlite3'}"
        ),
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True},
        "BASE_URL": base_url,
        "TIMEZONE": os.environ.get("TIMEZONE", "America/Chicago"),
        "BABEL_DEFAULT_LOCALE": "en",
        "BABEL_DEFAULT_TIMEZONE": os.environ.get("TIMEZONE", "America/Chicago"),
        "LANGUAGES": SUPPORTED_LANGUAGES,
        # Babel has no locale data for some languages we serve (Hmong): format with this.
        "FORMAT_FALLBACK_LOCALE": os.environ.get("FORMAT_FALLBACK_LOCALE", "en_US"),
        "SESSION_COOKIE_SECURE": _bool("SESSION_COOKIE_SECURE", https),
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_NAME": "__Host-rh_session" if https else "rh_session",
        "PERMANENT_SESSION_LIFETIME": int(os.environ.get("SESSION_LIFETIME_SECONDS", 12 * 3600)),
        "REMEMBER_COOKIE_DURATION": 0,
        "WTF_CSRF_TIME_LIMIT": None,  # the token lives as long as the session it is bound to
        "RATELIMIT_STORAGE_URI": redis_url or "memory://",
        "RATELIMIT_ENABLED": _bool("RATELIMIT_ENABLED", True),
        "RATELIMIT_HEADERS_ENABLED": True,
        "LOGIN_RATE_LIMIT": os.environ.get("LOGIN_RATE_LIMIT", "10 per minute; 50 per hour"),
        "TRUSTED_PROXIES": int(os.environ.get("TRUSTED_PROXIES", "0")),
        # argon2.profiles name; hashes made with other parameters are upgraded at next login.
        "ARGON2_PROFILE": os.environ.get("ARGON2_PROFILE", "RFC_9106_LOW_MEMORY"),
        "DEMO_PASSWORD": os.environ.get("DEMO_PASSWORD", "demo-password-2026"),
        "API_PAGE_SIZE": 50,
        "API_MAX_PAGE_SIZE": 200,
        "HSTS": https,
        # Geo: "offline" (default, no network); remote backends come with transport.
        "GEO_BACKEND": os.environ.get("GEO_BACKEND", "offline"),
        "GEO_GAZETTEER_TTL": int(os.environ.get("GEO_GAZETTEER_TTL", "300")),
        # openrouteservice (GEO_BACKEND=openrouteservice): a self-hosted or hosted server.
        "ORS_BASE_URL": _optional("ORS_BASE_URL"),
        "ORS_API_KEY": _optional("ORS_API_KEY"),
        "ORS_TIMEOUT": float(os.environ.get("ORS_TIMEOUT", "5")),
        "ORS_SNAP_RADIUS_M": int(os.environ.get("ORS_SNAP_RADIUS_M", "350")),
        "ORS_MATRIX_MAX_CELLS": int(os.environ.get("ORS_MATRIX_MAX_CELLS", "2500")),
        # Geocoding with the remote backend: "offline", "nominatim" or "pelias".
        "GEOCODER": os.environ.get("GEOCODER", "offline"),
        "NOMINATIM_URL": _optional("NOMINATIM_URL"),
        "NOMINATIM_USER_AGENT": _optional("NOMINATIM_USER_AGENT"),
        "PELIAS_URL": _optional("PELIAS_URL"),
        "PELIAS_API_KEY": _optional("PELIAS_API_KEY"),
        "GEOCODER_TIMEOUT": float(os.environ.get("GEOCODER_TIMEOUT", "5")),
        "GEOCODER_COUNTRY": os.environ.get("GEOCODER_COUNTRY", "us"),
        "GEOCODER_VIEWBOX": _optional("GEOCODER_VIEWBOX"),
        # Matching considers sites within this radius, at most the nearest N of them.
        "MATCH_RADIUS_KM": float(os.environ.get("MATCH_RADIUS_KM", "40")),
        "MATCH_MAX_SITES": int(os.environ.get("MATCH_MAX_SITES", "1000")),
        # Without needs every program at a site counts (about 2.5 times as many offers per
        # site), so a search without needs looks at fewer sites to do comparable work.
        "MATCH_MAX_SITES_ANY_NEED": int(os.environ.get("MATCH_MAX_SITES_ANY_NEED", "400")),
        # Client personal data is anonymised this many days after their last referral closed.
        "RETENTION_DAYS": int(os.environ.get("RETENTION_DAYS", "365")),
        # A referral unanswered this long past its response deadline is cancelled as expired.
        "REFERRAL_EXPIRE_AFTER_HOURS": int(os.environ.get("REFERRAL_EXPIRE_AFTER_HOURS", "72")),
        # Notifications (see referral_hub/notify): console by default, no network needed.
        "NOTIFY_STAFF_CHANNEL": os.environ.get("NOTIFY_STAFF_CHANNEL", "console"),
        "NOTIFY_MAX_ATTEMPTS": int(os.environ.get("NOTIFY_MAX_ATTEMPTS", "8")),
        "NOTIFY_TIMEOUT": float(os.environ.get("NOTIFY_TIMEOUT", "10")),
        "SMTP_HOST": os.environ.get("SMTP_HOST", "127.0.0.1"),
        "SMTP_PORT": int(os.environ.get("SMTP_PORT", "25")),
        "SMTP_USERNAME": _optional("SMTP_USERNAME"),
        "SMTP_PASSWORD": _optional("SMTP_PASSWORD"),
        "SMTP_STARTTLS": _bool("SMTP_STARTTLS", False),
        "MAIL_FROM": os.environ.get("MAIL_FROM", "referral_hub@localhost"),
        "SMS_BASE_URL": os.environ.get("SMS_BASE_URL", "https://api.twilio.com"),
        "SMS_ACCOUNT_SID": _optional("SMS_ACCOUNT_SID"),
        "SMS_AUTH_TOKEN": _optional("SMS_AUTH_TOKEN"),
        "SMS_FROM": _optional("SMS_FROM"),
        # The inbound webhook's address as the gateway calls it (it signs this exact URL);
        # unset: BASE_URL + /sms/inbound.
        # Client texts: "sms" through the gateway, or "console" (instance/notifications.log)
        # for the embedded demo; by default SMS once the gateway is configured.
        "NOTIFY_CLIENT_CHANNEL": os.environ.get(
            "NOTIFY_CLIENT_CHANNEL", "sms" if os.environ.get("SMS_ACCOUNT_SID") else "console"
        ),
        "SMS_INBOUND_URL": _optional("SMS_INBOUND_URL"),
        "SMS_INBOUND_RATE_LIMIT": os.environ.get("SMS_INBOUND_RATE_LIMIT", "120 per minute"),
        "MATCH_MAX_OFFERS": int(os.environ.get("MATCH_MAX_OFFERS", "1000")),
        # Rides (referral_hub/transport): pickup = appointment - check-in - travel - boarding.
        "RIDE_CHECK_IN_MINUTES": int(os.environ.get("RIDE_CHECK_IN_MINUTES", "10")),
        "RIDE_BOARDING_MINUTES": int(os.environ.get("RIDE_BOARDING_MINUTES", "5")),
        "RIDE_WINDOW_MINUTES": int(os.environ.get("RIDE_WINDOW_MINUTES", "20")),
        # A driver may mark "not at pickup" after waiting this long inside the window.
        "RIDE_NO_SHOW_WAIT_MINUTES": int(os.environ.get("RIDE_NO_SHOW_WAIT_MINUTES", "10")),
        "DRIVER_LINK_HOURS_AFTER": int(os.environ.get("DRIVER_LINK_HOURS_AFTER", "2")),
        # Driver and client links: requests per address (the token itself is 256 random bits).
        "DRIVER_LINK_RATE_LIMIT": os.environ.get("DRIVER_LINK_RATE_LIMIT", "60 per minute"),
        "CLIENT_PAGE_RATE_LIMIT": os.environ.get(
            "CLIENT_PAGE_RATE_LIMIT", "30 per minute; 300 per hour"
        ),
        # A client link works until this many days after the appointment or the referral closed.
        "CLIENT_LINK_DAYS_AFTER": int(os.environ.get("CLIENT_LINK_DAYS_AFTER", "14")),
        # Requests per client link token (beside the per-address CLIENT_PAGE_RATE_LIMIT).
        "CLIENT_TOKEN_RATE_LIMIT": os.environ.get("CLIENT_TOKEN_RATE_LIMIT", "20 per minute"),
        # The optional second check on a client link locks after this many failures.
        "CLIENT_CHECK_MAX_FAILURES": int(os.environ.get("CLIENT_CHECK_MAX_FAILURES", "5")),
        # Appointment reminders to the client, hours before (comma-separated).
        "CLIENT_REMINDER_HOURS": os.environ.get("CLIENT_REMINDER_HOURS", "24,2"),
        # south,west,north,east: places outside it get a warning (Twin Cities seven counties).
        "SERVICE_REGION": os.environ.get("SERVICE_REGION", "44.47,-94.02,45.42,-92.73"),
    }
