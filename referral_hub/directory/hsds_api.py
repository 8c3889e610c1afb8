"""The public HSDS 3.0 read API at /hsds/."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("hsds", __name__, url_prefix="/hsds")


@bp.get("/")
def root():
    """HSDS API root: which version of the specification this server speaks."""
    return {
        "version": "3.0.1",
        "profile": "https://openreferral.org/",
        "openapi_url": "https://raw.githubusercontent.com/openreferral/specification/3.0/schema/openapi.json",
    }
