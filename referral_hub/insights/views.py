"""Insights pages: dashboards for the city, providers and responder teams, goals, the
monthly review, and the public transparency page with its open data."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("insights", __name__, template_folder="templates")
