"""Routes of the transport blueprint (see views.py)."""

from __future__ import annotations

from referral_hub.transport.views import bp  # noqa: F401
