"""Referral pages: refer a person from the results, the role-aware list, the referral page
and its lifecycle actions, re-routing, and the client record with who has seen it.

Every page renders what `referral_view()` lets its viewer see; every lookup goes through
`policies`, so a foreign referral or client answers 404.
"""

from __future__ import annotations

import math
import re
from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from referral_hub import policies
from referral_hub.accounts.models import Organization, Role, User
from referral_hub.core.db import utcnow
from referral_hub.core.errors import Conflict, NotFound, ValidationFailed
from referral_hub.directory.models import Program, Site
from referral_hub.extensions import db
from referral_hub.referrals import operations as ops
from referral_hub.referrals.forms import (
    CLIENT_LANGUAGES,
    PRIORITY_TITLES,
    ListForm,
    ReferForm,
    RerouteForm,
    action_form_class,
    consent_method_choices,
)
from referral_hub.referrals.lifecycle import BY_ACTION, REASON_TITLES, Side
from referral_hub.referrals.models import Client, Referral, Status
from referral_hub.referrals.views_actions import (
    acting_sides,
    action_forms,
    action_values,
    timeline,
)
from referral_hub.referrals.views_common import referral_view
from referral_hub.referrals.views_queries import (
    CITY_WIDE,
    client_answers,
    delivery_flags,
    forward_id,
    list_mode,
    list_query,
    next_programs,
    record_views,
    screening_answers,
)
from referral_hub.transport.views_booking import referral_rides
from referral_hub.web.forms import apply_errors, options
from referral_hub.web.i18n import LANGUAGE_NAMES

bp = Blueprint("referrals", __name__, template_folder="templates")

REFERRING_ROLES = (Role.RESPONDER, Role.COORDINATOR, Role.ADMIN)
PER_PAGE = 25


@bp.context_processor
def helpers() -> dict[str, Any]:
    """Formatting helpers for this blueprint's templates."""
    return {
        "tel": lambda phone: re.sub(r"[^\d+]", "", phone or ""),
        "language_name": lambda code: LANGUAGE_NAMES.get(code, code),
        "priority_title": lambda p: PRIORITY_TITLES.get(p, p),
        "reason_title": lambda code: REASON_TITLES.get(code, code),
    }


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _user() -> User:
    return current_user._get_current_object()


def _can_open_client(client: Client) -> bool:
    """The client record: coordinators and the organization that recorded the person."""
    return (
        policies.has_role(current_user, *CITY_WIDE)
        or client.organization_id in current_user.organization_ids
    )


def _consent_label(program: Program) -> str:
    return _(
        "The person agreed that we share this referral with %(program)s (%(org)s) to get services.",
        program=program.name,
        org=program.organization.name,
    )


# --- refer: from the results page to a sent referral ----------------------------------------


def _refer_target(form: ReferForm) -> tuple[Program, Site | None]:
    program = db.session.get(Program, _int(form.program_id.data) or 0)
    site = db.session.get(Site, _int(form.site_id.data) or 0) if form.site_id.data else None
    if program is None or (form.site_id.data and site is None):
        raise NotFound(_("Not found."))
    return program, site


def _refer_page(
    form: ReferForm,
    program: Program,
    site: Site | None,
    duplicates: list[Client] | None = None,
    status: int = 200,
):
    form.consent.label.text = _consent_label(program)
    return render_template(
        "referrals/new.html", form=form, program=program, site=site, duplicates=duplicates or []
    ), status


def _client_for(form: ReferForm, org: Organization) -> Client | list[Client]:
    """The chosen existing client, the possible duplicates to offer, or a new client."""
    choice = (form.client_choice.data or "").strip()
    if choice and choice != "new":
        client = db.session.scalar(
            policies.visible(current_user, Client).where(
                Client.id == (_int(choice) or 0), Client.organization_id == org.id
            )
        )
        if client is None:
            raise NotFound(_("Not found."))
        return client
    if not choice:
        found = ops.possible_duplicates(
            org.id, form.display_name.data, form.birth_year.data, form.phone.data
        )
        if found:
            return found
    return ops.create_client(
        org,
        _user(),
        display_name=form.display_name.data,
        phone=form.phone.data,
        preferred_language=form.preferred_language.data,
        birth_year=form.birth_year.data,
        sms_ok=form.sms_ok.data,
        neutral_sender=form.neutral_sender.data,
    )


@bp.post("/referrals/new")
@login_required
def new():
    policies.require(policies.has_role(current_user, *REFERRING_ROLES))
    membership = current_user.primary_membership
    policies.require(membership is not None)
    org = membership.organization
    start = request.form.get("step") == "start"
    if start:  # posted by the results page: show the form, check nothing yet
        form = ReferForm(
            formdata=None,
            step="send",
            program_id=request.form.get("program_id"),
            site_id=request.form.get("site_id"),
            answers=request.form.get("answers") or "{}",
        )
    else:
        form = ReferForm()
    form.consent_method.choices = consent_method_choices(
        policies.has_role(current_user, *CITY_WIDE)
    )
    program, site = _refer_target(form)
    try:
        answers = screening_answers(form.answers.data)
    except ValidationFailed as exc:
        apply_errors(form, exc)
        return _refer_page(form, program, site, status=422)
    if start:
        if answers.get("language") in CLIENT_LANGUAGES:
            form.preferred_language.data = answers["language"]
        return _refer_page(form, program, site)
    if not form.validate():
        return _refer_page(form, program, site, status=422)
    try:
        client = _client_for(form, org)
        if isinstance(client, list):  # a hint, never forced: the person decides
            return _refer_page(form, program, site, duplicates=client)
        consent = ops.record_consent(
            client,
            program,
            _user(),
            method=form.consent_method.data,
            override_reason=form.override_reason.data,
        )
        referral = ops.send_referral(
            client=client,
            program=program,
            user=_user(),
            organization=org,
            consent=consent,
            site=site,
            priority=form.priority.data,
            note=form.note.data,
            answers=answers,
        )
    except ValidationFailed as exc:
        db.session.rollback()
        apply_errors(form, exc)
        return _refer_page(form, program, site, status=422)
    db.session.commit()
    flash(_("The referral is sent to %(program)s.", program=program.name), "success")
    return redirect(url_for("referrals.referral", referral_id=referral.id))


# --- the list -------------------------------------------------------------------------------


@bp.get("/referrals")
@login_required
def index():
    mode = list_mode(current_user)
    form = ListForm(formdata=request.args)
    form.status.choices = options(
        [
            ("open", _("Open")),
            ("all", _("All")),
            *((s.value, s.title) for s in Status if s != Status.DRAFT),
        ]
    )
    if not form.status.data:
        form.status.data = "open" if mode == "inbox" else "all"
    if mode == "all":
        programs = db.session.execute(select(Program.id, Program.name).order_by(Program.name))
        form.program_id.choices = options(
            [("", _("All programs")), *((str(i), n) for i, n in programs)]
        )
    stmt = list_query(
        current_user,
        mode,
        status=form.status.data,
        program_id=_int(form.program_id.data),
        escalated=form.escalated.data,
    )
    total = db.session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery()))
    pages = max(1, math.ceil(total / PER_PAGE))
    page = min(max(1, _int(request.args.get("page")) or 1), pages)
    rows = db.session.scalars(
        stmt.options(
            selectinload(Referral.program),
            selectinload(Referral.client),
            selectinload(Referral.provider_org),
        )
        .limit(PER_PAGE)
        .offset((page - 1) * PER_PAGE)
    ).all()
    args = {k: v for k, v in request.args.items() if k != "page" and v}
    return render_template(
        "referrals/list.html",
        mode=mode,
        form=form,
        total=total,
        page=page,
        pages=pages,
        items=[(r, referral_view(current_user, r)) for r in rows],
        now=utcnow(),
        flags=delivery_flags([r.id for r in rows]),
        answers=client_answers([r.id for r in rows]),
        args=args,
    )


# --- the referral page and its actions ------------------------------------------------------


def _referral_page(
    referral: Referral, *, kept: dict | None = None, conflict: str | None = None, status: int = 200
):
    ops.record_view(_user(), referral.client, referral=referral, context="page")
    db.session.commit()
    sides = policies.referral_sides(current_user, referral)
    view = referral_view(current_user, referral)
    forward = forward_id(current_user, referral)
    reroutable = referral.status == Status.DECLINED or (
        referral.status == Status.CANCELLED and referral.reason_code == "expired"
    )
    return render_template(
        "referrals/referral.html",
        referral=referral,
        view=view,
        sides=sides,
        client=referral.client,
        site=referral.site,
        conflict=conflict,
        forward_id=forward,
        actions=action_forms(referral, acting_sides(current_user, referral), kept),
        timeline=timeline(referral, view, sides),
        can_reroute=bool(sides & {Side.REFERRER, Side.COORDINATOR})
        and reroutable
        and forward is None,
        show_contact=bool(sides & {Side.PROVIDER, Side.REFERRER}),
        client_link=_can_open_client(referral.client),
        ride_section=referral_rides(current_user, referral),
        # The client's own link (QR code): the referring side hands it over.
        client_link_allowed=bool(sides & {Side.REFERRER, Side.COORDINATOR}),
    ), status


@bp.get("/referrals/<int:referral_id>")
@login_required
def referral(referral_id: int):
    return _referral_page(policies.get_visible_or_404(current_user, Referral, referral_id))


@bp.post("/referrals/<int:referral_id>/actions/<action>")
@login_required
def act(referral_id: int, action: str):
    found = policies.get_visible_or_404(current_user, Referral, referral_id)
    transition = BY_ACTION.get(action)
    if transition is None:
        raise NotFound(_("Not found."))
    form = action_form_class(action)()
    if not form.validate():
        return _referral_page(found, kept={action: form}, status=422)
    membership = current_user.primary_membership
    actor = ops.Actor(
        acting_sides(current_user, found),
        user=_user(),
        organization_id=membership.organization_id if membership else None,
    )
    try:
        ops.perform(
            found, action, actor, expected_version=form.expected_version.data, **action_values(form)
        )
    except Conflict as exc:
        db.session.rollback()
        return _referral_page(found, conflict=exc.message, status=409)
    except ValidationFailed as exc:
        db.session.rollback()
        apply_errors(form, exc)
        return _referral_page(found, kept={action: form}, status=422)
    db.session.commit()
    flash(_("Saved: %(action)s.", action=transition.label), "success")
    return redirect(url_for("referrals.referral", referral_id=found.id))


# --- re-routing after a decline or an expiry ------------------------------------------------


@bp.route("/referrals/<int:referral_id>/reroute", methods=["GET", "POST"])
@login_required
def reroute(referral_id: int):
    found = policies.get_visible_or_404(current_user, Referral, referral_id)
    policies.require(
        bool(policies.referral_sides(current_user, found) & {Side.REFERRER, Side.COORDINATOR})
    )
    forward = forward_id(current_user, found)
    if forward is not None:
        flash(_("This referral was already re-routed."), "info")
        return redirect(url_for("referrals.referral", referral_id=forward))
    if found.status not in (Status.DECLINED, Status.CANCELLED):
        flash(_("Only a declined or expired referral can be re-routed."), "info")
        return redirect(url_for("referrals.referral", referral_id=found.id))
    candidates = next_programs(found)
    posted = request.method == "POST"
    chosen = _int(request.form.get("program_id") if posted else request.args.get("program_id"))
    if chosen is None and not posted:
        return render_template("referrals/reroute.html", referral=found, candidates=candidates)
    choice = next((m for m in candidates if m.program_id == chosen), None)
    if choice is None:
        raise NotFound(_("Not found."))
    program = db.session.get(Program, choice.program_id)
    form = RerouteForm() if posted else RerouteForm(formdata=None, program_id=chosen)
    status = 200
    if posted and form.validate():
        site = db.session.get(Site, choice.site.site_id) if choice.site else None
        try:
            consent = ops.record_consent(
                found.client, program, _user(), method=form.consent_method.data
            )
            new_referral = ops.reroute(found, program, _user(), consent=consent, site=site)
        except (Conflict, ValidationFailed) as exc:
            db.session.rollback()
            if exc.fields:
                apply_errors(form, exc)
            else:
                form.form_errors.append(exc.message)
            status = 409 if isinstance(exc, Conflict) else 422
        else:
            db.session.commit()
            flash(_("The referral is sent to %(program)s.", program=program.name), "success")
            return redirect(url_for("referrals.referral", referral_id=new_referral.id))
    form.consent.label.text = _consent_label(program)
    if form.errors and status == 200:
        status = 422
    return render_template(
        "referrals/reroute_consent.html", referral=found, choice=choice, form=form
    ), status


# --- the client record ----------------------------------------------------------------------


@bp.get("/clients/<int:client_id>")
@login_required
def client(client_id: int):
    found = policies.get_visible_or_404(current_user, Client, client_id)
    policies.require(_can_open_client(found))
    ops.record_view(_user(), found, context="page")
    db.session.commit()
    referrals = db.session.scalars(
        policies.visible(current_user, Referral)
        .where(Referral.client_id == found.id)
        .options(selectinload(Referral.program), selectinload(Referral.provider_org))
        .order_by(Referral.created_at.desc(), Referral.id.desc())
    ).all()
    views, by_org = record_views(found.id)
    return render_template(
        "referrals/client.html",
        client=found,
        referrals=referrals,
        views=views,
        by_org=by_org,
    )
