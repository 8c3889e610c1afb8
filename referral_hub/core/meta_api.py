"""The API's own description."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify

from referral_hub.core.api import API_PREFIX
from referral_hub.core.openapi import build_spec
from referral_hub.extensions import csrf

bp = Blueprint("meta_api", __name__, url_prefix=API_PREFIX)
csrf.exempt(bp)


@bp.get("/openapi.json")
def openapi():
    """The OpenAPI 3 document, generated from the schemas of every API view."""
    spec = current_app.extensions.get("referral_hub.openapi")
    if spec is None:
        spec = current_app.extensions["referral_hub.openapi"] = build_spec(current_app)
    response = jsonify(spec)
    response.headers["Cache-Control"] = "public, max-age=300"
    return response
