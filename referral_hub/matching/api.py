"""JSON API: the screener's questions and matching."""

from __future__ import annotations

from flask import Blueprint
from flask_login import login_required

from referral_hub.core.api import API_PREFIX, endpoint, load_json
from referral_hub.extensions import csrf
from referral_hub.geo.base import Point
from referral_hub.matching import operations as ops
from referral_hub.matching.questions import QUESTIONS, SCREENER_VERSION
from referral_hub.matching.schemas import MatchesSchema, MatchRequestSchema, ScreenerSchema

bp = Blueprint("matching_api", __name__, url_prefix=API_PREFIX)
csrf.exempt(bp)  # bearer requests need none; cookie requests are checked in accounts.auth


@bp.get("/screener")
@login_required
@endpoint(
    summary="The screener's questions, in the caller's language",
    tag="matching",
    response=ScreenerSchema,
)
def screener():
    return ScreenerSchema().dump({"version": SCREENER_VERSION, "questions": QUESTIONS})


@bp.post("/matches")
@login_required
@endpoint(
    summary="Programs a person qualifies for, ranked and explained",
    tag="matching",
    body=MatchRequestSchema,
    response=MatchesSchema,
)
def matches():
    data = load_json(MatchRequestSchema())
    answers = ops.clean_answers(data["answers"])
    point = Point(**data["location"]) if data["location"] else None
    result = ops.match(
        answers,
        point=point,
        place=data["place"],
        at=data["at"],
        limit=data["limit"],
        mode=data["mode"],
    )
    return MatchesSchema().dump(result)
