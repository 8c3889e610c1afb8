"""Ride pages. The blueprint lives here; its routes are in views_booking (book a leg, the
ride page and its actions), views_dispatch (the vendor's board, drivers and vehicles) and
views_driver (the tokenized page drivers without accounts use)."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("transport", __name__, template_folder="templates")
