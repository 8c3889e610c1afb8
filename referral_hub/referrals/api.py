"""JSON API: clients, consent, referrals and their lifecycle actions."""

from __future__ import annotations

from flask import Blueprint
from flask_login import current_user, login_required
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from referral_hub import policies
from referral_hub.accounts.models import Organization
from referral_hub.core.api import API_PREFIX, endpoint, load_json, load_query, paginate
from referral_hub.core.errors import Forbidden, NotFound, ValidationFailed
from referral_hub.directory.models import Program, Site
from referral_hub.extensions import csrf, db
from referral_hub.matching.operations import clean_answers
from referral_hub.referrals import operations as ops
from referral_hub.referrals.lifecycle import BY_ACTION, Side
from referral_hub.referrals.models import Client, Consent, Referral, ReferralEvent
from referral_hub.referrals.schemas import (
    ActionSchema,
    ClientCreateSchema,
    ClientSchema,
    ConsentCreateSchema,
    ConsentSchema,
    DuplicateQuerySchema,
    DuplicatesSchema,
    EventSchema,
    ReferralCreateSchema,
    ReferralQuerySchema,
    ReferralSchema,
    RerouteSchema,
)
from referral_hub.referrals.views_common import referral_view

bp = Blueprint("referrals_api", __name__, url_prefix=API_PREFIX)
csrf.exempt(bp)  # bearer requests need none; cookie requests are checked in accounts.auth


def _acting_org() -> Organization:
    membership = current_user.primary_membership
    if membership is None:
        raise Forbidden("You belong to no organization.")
    return membership.organization


def _program(program_id: int) -> Program:
    program = db.session.get(Program, program_id)
    if program is None:
        raise NotFound("Not found.")
    return program


@bp.post("/clients")
@login_required
@endpoint(
    summary="Record a client (the minimum personal data)",
    tag="referrals",
    body=ClientCreateSchema,
    response=ClientSchema,
    status=201,
)
def create_client():
    data = load_json(ClientCreateSchema())
    client = ops.create_client(_acting_org(), current_user, **data)
    db.session.commit()
    return ClientSchema().dump(client), 201


@bp.get("/clients/duplicates")
@login_required
@endpoint(
    summary="Possible duplicates of a client (a hint, never forced)",
    tag="referrals",
    query=DuplicateQuerySchema,
    response=DuplicatesSchema,
)
def duplicates():
    params = load_query(DuplicateQuerySchema())
    found = ops.possible_duplicates(
        _acting_org().id, params["display_name"], params["birth_year"], params["phone"]
    )
    return DuplicatesSchema().dump({"items": found})


@bp.get("/clients/<int:client_id>")
@login_required
@endpoint(
    summary="One client (the view is logged)", tag="referrals", response=ClientSchema, errors=(404,)
)
def client(client_id: int):
    found = policies.get_visible_or_404(current_user, Client, client_id)
    ops.record_view(current_user, found, context="api")
    db.session.commit()
    return ClientSchema().dump(found)


@bp.post("/clients/<int:client_id>/consents")
@login_required
@endpoint(
    summary="Record consent to refer a client to a program",
    tag="referrals",
    body=ConsentCreateSchema,
    response=ConsentSchema,
    status=201,
    errors=(403, 404),
)
def create_consent(client_id: int):
    found = policies.get_visible_or_404(current_user, Client, client_id)
    data = load_json(ConsentCreateSchema())
    consent = ops.record_consent(found, _program(data.pop("program_id")), current_user, **data)
    db.session.commit()
    return ConsentSchema().dump(consent), 201


@bp.post("/consents/<int:consent_id>/revoke")
@login_required
@endpoint(
    summary="Revoke consent; open referrals resting on it are cancelled",
    tag="referrals",
    response=ConsentSchema,
    errors=(404,),
)
def revoke_consent(consent_id: int):
    consent = db.session.get(Consent, consent_id)
    if consent is None:
        raise NotFound("Not found.")
    policies.get_visible_or_404(current_user, Client, consent.client_id)
    ops.revoke_consent(consent, current_user)
    db.session.commit()
    return ConsentSchema().dump(consent)


@bp.post("/referrals")
@login_required
@endpoint(
    summary="Send a referral (consent required)",
    tag="referrals",
    body=ReferralCreateSchema,
    response=ReferralSchema,
    status=201,
    errors=(404,),
)
def create_referral():
    data = load_json(ReferralCreateSchema())
    found = policies.get_visible_or_404(current_user, Client, data["client_id"])
    program = _program(data["program_id"])
    consent = db.session.get(Consent, data["consent_id"])
    site = db.session.get(Site, data["site_id"]) if data["site_id"] else None
    if data["site_id"] and site is None:
        raise ValidationFailed("Unknown site.", fields={"site_id": ["Unknown site."]})
    referral = ops.send_referral(
        client=found,
        program=program,
        user=current_user,
        organization=_acting_org(),
        consent=consent,
        site=site,
        priority=data["priority"],
        note=data["note"],
        answers=clean_answers(data["answers"]),
    )
    db.session.commit()
    return ReferralSchema().dump(referral_view(current_user, referral)), 201


@bp.get("/referrals")
@login_required
@endpoint(
    summary="Referrals visible to the caller, newest first",
    tag="referrals",
    query=ReferralQuerySchema,
    response=ReferralSchema,
    paginated=True,
)
def referrals():
    params = load_query(ReferralQuerySchema())
    stmt = (
        policies.visible(current_user, Referral)
        .options(selectinload(Referral.program))
        .order_by(Referral.created_at.desc(), Referral.id.desc())
    )
    if params["status"]:
        stmt = stmt.where(Referral.status.in_(params["status"]))
    if params["program_id"]:
        stmt = stmt.where(Referral.program_id == params["program_id"])
    if params["since"]:
        stmt = stmt.where(Referral.created_at >= params["since"])
    if params["until"]:
        stmt = stmt.where(Referral.created_at < params["until"])
    if params["side"] == "provider":
        stmt = stmt.where(
            Referral.provider_org_id.in_(policies.provider_org_ids(current_user) or {-1})
        )
    elif params["side"] == "referrer":
        stmt = stmt.where(Referral.referring_org_id.in_(current_user.organization_ids or {-1}))

    class _View:
        def dump(self, rows, many=True):
            return ReferralSchema(many=True).dump([referral_view(current_user, r) for r in rows])

    return paginate(stmt, _View(), params)


@bp.get("/referrals/<int:referral_id>")
@login_required
@endpoint(
    summary="One referral as the caller may see it",
    tag="referrals",
    response=ReferralSchema,
    errors=(404,),
)
def referral(referral_id: int):
    found = policies.get_visible_or_404(current_user, Referral, referral_id)
    return ReferralSchema().dump(referral_view(current_user, found))


@bp.get("/referrals/<int:referral_id>/events")
@login_required
@endpoint(summary="The referral's timeline", tag="referrals", response=EventSchema, errors=(404,))
def events(referral_id: int):
    found = policies.get_visible_or_404(current_user, Referral, referral_id)
    rows = db.session.scalars(
        select(ReferralEvent)
        .where(ReferralEvent.referral_id == found.id)
        .order_by(ReferralEvent.id)
    )
    return {"items": EventSchema(many=True).dump(rows)}


@bp.post("/referrals/<int:referral_id>/actions/<action>")
@login_required
@endpoint(
    summary="Take a lifecycle action (accept, decline, hand_off, complete, cancel, ...)",
    tag="referrals",
    body=ActionSchema,
    response=ReferralSchema,
    errors=(403, 404, 409),
)
def act(referral_id: int, action: str):
    found = policies.get_visible_or_404(current_user, Referral, referral_id)
    if action not in BY_ACTION:
        raise NotFound("Unknown action.")
    data = load_json(ActionSchema())
    version = data.pop("version")
    sides = frozenset(policies.referral_sides(current_user, found) - {Side.SYSTEM})
    membership = current_user.primary_membership
    ops.perform(
        found,
        action,
        ops.Actor(
            sides,
            user=current_user,
            organization_id=membership.organization_id if membership else None,
        ),
        expected_version=version,
        **data,
    )
    db.session.commit()
    return ReferralSchema().dump(referral_view(current_user, found))


@bp.post("/referrals/<int:referral_id>/reroute")
@login_required
@endpoint(
    summary="Re-route a declined or expired referral to another program",
    tag="referrals",
    body=RerouteSchema,
    response=ReferralSchema,
    status=201,
    errors=(403, 404, 409),
)
def reroute(referral_id: int):
    found = policies.get_visible_or_404(current_user, Referral, referral_id)
    sides = policies.referral_sides(current_user, found)
    policies.require(bool(sides & {Side.REFERRER, Side.COORDINATOR}))
    data = load_json(RerouteSchema())
    consent = db.session.get(Consent, data["consent_id"])
    site = db.session.get(Site, data["site_id"]) if data["site_id"] else None
    new = ops.reroute(found, _program(data["program_id"]), current_user, consent=consent, site=site)
    db.session.commit()
    return ReferralSchema().dump(referral_view(current_user, new)), 201


@bp.get("/referrals/<int:referral_id>/fhir")
@login_required
@endpoint(
    summary="The referral as a FHIR R4 Bundle (application/fhir+json): SDOH Clinical "
    "Care Task, ServiceRequest, Patient, Organizations (the view is logged)",
    tag="referrals",
    errors=(404,),
)
def referral_fhir(referral_id: int):
    import json

    from flask import current_app

    from referral_hub.referrals import fhir

    found = policies.get_visible_or_404(current_user, Referral, referral_id)
    bundle = fhir.referral_bundle(
        found, fhir.export_view(current_user, found), current_app.config["BASE_URL"]
    )
    ops.record_view(current_user, found.client, referral=found, context="fhir")
    db.session.commit()
    # Unsorted, so that each resource reads resourceType first, as FHIR JSON conventionally does.
    return current_app.response_class(json.dumps(bundle), mimetype=fhir.MEDIA_TYPE)
