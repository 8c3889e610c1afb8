"""JSON API for rides."""

from __future__ import annotations

from flask import Blueprint

from referral_hub.core.api import API_PREFIX
from referral_hub.extensions import csrf

bp = Blueprint("transport_api", __name__, url_prefix=API_PREFIX)
csrf.exempt(bp)  # bearer requests need none; cookie requests are checked in accounts.auth
