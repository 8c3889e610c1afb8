"""The responder's screener and results."""

from __future__ import annotations

import json

from flask import Blueprint, render_template
from flask_babel import gettext as _
from flask_login import current_user, login_required

from referral_hub import policies
from referral_hub.accounts.models import Role
from referral_hub.core.errors import ValidationFailed
from referral_hub.extensions import db
from referral_hub.geo.base import Mode, parse_point
from referral_hub.insights.screenings import record_screening
from referral_hub.matching import operations as ops
from referral_hub.matching.forms import FIRST_QUESTIONS, answers_from, screener_form_class
from referral_hub.matching.questions import BY_CODE, QUESTIONS
from referral_hub.web.forms import apply_errors

bp = Blueprint("matching", __name__, template_folder="templates")

SCREENING_ROLES = (Role.RESPONDER, Role.COORDINATOR, Role.ADMIN)


def _render(form, result=None, status=200, answers=None):
    first = [form[code] for code in FIRST_QUESTIONS]
    more = [form[q.code] for q in QUESTIONS if q.code not in FIRST_QUESTIONS]
    return render_template(
        "matching/screen.html",
        form=form,
        first=first,
        more=more,
        result=result,
        questions=BY_CODE,
        answers_json=json.dumps(answers or {}),
    ), status


@bp.get("/screen")
@login_required
def screen():
    policies.require(policies.has_role(current_user, *SCREENING_ROLES))
    return _render(screener_form_class()(formdata=None))


@bp.post("/screen")
@login_required
def results():
    """Match the answers (POST, so they stay out of URLs and logs); only the anonymous
    screening record for unmet need is stored."""
    policies.require(policies.has_role(current_user, *SCREENING_ROLES))
    form = screener_form_class()()
    if not form.validate():
        return _render(form, status=422)
    try:
        answers = ops.clean_answers(answers_from(form))
    except ValidationFailed as exc:
        apply_errors(form, exc)
        return _render(form, status=422)
    point = parse_point(f"{form.lat.data},{form.lon.data}") if form.lat.data else None
    place = (form.location.data or "").strip() or None
    result = ops.match(
        answers, point=point, place=None if point else place, mode=Mode(form.mode.data)
    )
    if result.location_note:
        form.location.errors = [result.location_note]
    membership = current_user.primary_membership
    record_screening(answers, result, membership.organization_id if membership else None)
    db.session.commit()
    return _render(form, result, answers=answers)


@bp.app_template_filter("minutes")
def minutes(value: float) -> str:
    return _("%(n)d min", n=round(value))
