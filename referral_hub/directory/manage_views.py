"""Provider administrators keep their programs current: capacity, listing, criteria, hours.

Routes live on the directory blueprint (endpoints `directory.*`); create_app imports this
module explicitly so they are registered.
"""

from __future__ import annotations

import json
from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from referral_hub import policies
from referral_hub.accounts.models import Organization
from referral_hub.core.errors import NotFound, ValidationFailed
from referral_hub.directory import operations as ops
from referral_hub.directory import views as shared
from referral_hub.directory.forms import (
    RULE_QUESTIONS,
    CapacityForm,
    CriteriaForm,
    ExceptionForm,
    HoursForm,
    OfferForm,
    ProgramForm,
    SiteForm,
    build_rule,
    mark_error,
    parse_rule,
    rule_json,
    sync_row_errors,
)
from referral_hub.directory.models import (
    Category,
    Program,
    ProgramSite,
    Site,
)
from referral_hub.directory.views import bp
from referral_hub.extensions import db
from referral_hub.matching.operations import clean_answers
from referral_hub.matching.questions import BY_CODE, CATEGORY_OPTIONS
from referral_hub.matching.rules import (
    Outcome,
    compile_criteria,
    validate_criteria,
)
from referral_hub.policies import managed, managed_program_or_404, require_manager
from referral_hub.web.forms import apply_errors

# --- manage: the organization's programs and one-tap capacity -------------------------------


@bp.get("/manage")
@login_required
def manage():
    require_manager(current_user)
    return redirect(url_for("directory.manage_programs"))


def _manage_page(status: int = 200, failed: tuple[int, CapacityForm] | None = None):
    programs = db.session.scalars(
        managed(current_user, Program)
        .options(joinedload(Program.organization))
        .order_by(Program.name, Program.id)
    ).all()
    forms = {
        p.id: CapacityForm(formdata=None, status=p.capacity_status.value, open_slots=p.open_slots)
        for p in programs
    }
    if failed:
        forms[failed[0]] = failed[1]
    return render_template("directory/manage_programs.html", programs=programs, forms=forms), status


@bp.get("/manage/programs")
@login_required
def manage_programs():
    require_manager(current_user)
    return _manage_page()


@bp.post("/manage/programs/<int:program_id>/capacity")
@login_required
def update_capacity(program_id: int):
    program = managed_program_or_404(current_user, program_id)
    form = CapacityForm()
    if form.validate():
        try:
            ops.set_capacity(program, form.status.data, form.open_slots.data)
        except ValidationFailed as exc:
            db.session.rollback()
            apply_errors(form, exc)
        else:
            db.session.commit()
            flash(
                _(
                    "%(program)s: %(status)s.",
                    program=program.name,
                    status=program.capacity_status.title,
                ),
                "success",
            )
            return redirect(url_for("directory.manage_programs", _anchor=f"program-{program.id}"))
    return _manage_page(422, failed=(program_id, form))


# --- manage: the listing --------------------------------------------------------------------


def _category_choices() -> list[tuple[str, str]]:
    choices = {o.value: str(o.label) for o in CATEGORY_OPTIONS}
    for c in db.session.scalars(select(Category).order_by(Category.name)):
        choices.setdefault(c.code, c.name)
    return list(choices.items())


@bp.route("/manage/programs/new", methods=["GET", "POST"])
@login_required
def new_program():
    require_manager(current_user)
    orgs = db.session.scalars(
        managed(current_user, Organization)
        .where(Organization.is_active)
        .order_by(Organization.name)
    ).all()
    policies.require(bool(orgs))
    form = ProgramForm()
    form.categories.choices = _category_choices()
    form.organization_id.choices = [(o.id, o.name) for o in orgs]
    if len(orgs) == 1:
        del form.organization_id
    if form.validate_on_submit():
        org = orgs[0] if len(orgs) == 1 else db.session.get(Organization, form.organization_id.data)
        try:
            created = ops.create_program(
                org,
                categories=form.categories.data,
                languages=form.chosen_languages(),
                **form.listing(),
            )
        except ValidationFailed as exc:
            db.session.rollback()
            apply_errors(form, exc)
        else:
            db.session.commit()
            flash(_("The program is created. Now say where and when it is offered."), "success")
            return redirect(url_for("directory.sites", program_id=created.id))
    return render_template("directory/program_form.html", form=form, program=None), (
        422 if form.errors else 200
    )


@bp.route("/manage/programs/<int:program_id>/edit", methods=["GET", "POST"])
@login_required
def edit_program(program_id: int):
    program = managed_program_or_404(current_user, program_id)
    form = ProgramForm(obj=program)
    del form.organization_id
    form.categories.choices = _category_choices()
    if request.method == "GET":
        form.fill_from(program)
    elif form.validate():
        try:
            ops.update_program(program, categories=form.categories.data, **form.listing())
            ops.set_languages(program, form.chosen_languages())
        except ValidationFailed as exc:
            db.session.rollback()
            apply_errors(form, exc)
        else:
            db.session.commit()
            flash(_("The listing is saved."), "success")
            return redirect(url_for("directory.manage_programs", _anchor=f"program-{program.id}"))
    return render_template("directory/program_form.html", form=form, program=program), (
        422 if form.errors else 200
    )


# --- manage: criteria, with the builder, the JSON editor and a try-it panel ------------------


def _rule_from(form: CriteriaForm) -> tuple[bool, Any]:
    """The rule the form describes (builder or JSON), checked; faults are marked in place."""
    target = form.raw_json
    if form.editor.data == "json":
        text = (form.raw_json.data or "").strip()
        if not text:
            return True, None
        try:
            rule = json.loads(text)
        except json.JSONDecodeError as exc:
            mark_error(
                form.raw_json,
                _(
                    "This is not valid JSON: %(error)s (line %(line)d, column %(column)d).",
                    error=exc.msg,
                    line=exc.lineno,
                    column=exc.colno,
                ),
            )
            return False, None
    else:
        rows = form.conditions()
        if rows is None:
            return False, None
        for row, condition in rows:
            try:
                validate_criteria(condition.to_json())
            except ValidationFailed as exc:
                # The path says where in the JSON; in a row it is only noise.
                mark_error(row.value, shared.RULE_PATH.sub("", exc.message))
        sync_row_errors(form.rows)
        if form.rows.errors:
            return False, None
        rule = build_rule(form.combinator.data, [c for _row, c in rows], form.in_service_area.data)
        target = None
    try:
        validate_criteria(rule)
    except ValidationFailed as exc:
        if target is not None:
            mark_error(target, exc.message)
        else:
            form.form_errors.append(exc.message)
        return False, None
    return True, rule


def _try(form: CriteriaForm, rule: Any) -> Outcome | None:
    """Evaluate the form's rule against the sample answers; nothing is saved."""
    try:
        answers = clean_answers(form.answers.form.raw())
    except ValidationFailed as exc:
        apply_errors(form.answers.form, exc)
        return None
    return compile_criteria(rule).evaluate(answers)


def _criteria_page(
    program: Program,
    form: CriteriaForm,
    status: int = 200,
    outcome: Outcome | None = None,
    tried: Any = None,
):
    missing = [BY_CODE[c].label for c in outcome.missing] if outcome else []
    return render_template(
        "directory/criteria.html",
        program=program,
        form=form,
        outcome=outcome,
        missing=missing,
        tried=json.dumps(tried, ensure_ascii=False),
        questions=RULE_QUESTIONS,
        too_complex=parse_rule(program.criteria) is None,
    ), status


@bp.route("/manage/programs/<int:program_id>/criteria", methods=["GET", "POST"])
@login_required
def criteria(program_id: int):
    program = managed_program_or_404(current_user, program_id)
    if request.method == "GET":
        stored = program.criteria
        form = CriteriaForm(
            eligibility_description=program.eligibility_description,
            raw_json=rule_json(stored),
        )
        parsed = parse_rule(stored)
        if parsed is None:
            form.editor.data = "json"
        else:
            form.fill_builder(parsed)
        return _criteria_page(program, form)
    form = CriteriaForm()
    outcome, tried = None, None
    if form.validate():
        ok, rule = _rule_from(form)
        if ok and request.form.get("action") == "try":
            outcome, tried = _try(form, rule), rule
        elif ok:
            try:
                ops.set_criteria(
                    program, rule, eligibility_description=form.eligibility_description.data or ""
                )
            except ValidationFailed as exc:
                db.session.rollback()
                mark_error(form.raw_json, exc.message)
            else:
                db.session.commit()
                flash(_("The eligibility rule is saved."), "success")
                return redirect(url_for("directory.criteria", program_id=program.id))
    return _criteria_page(program, form, 422 if form.errors else 200, outcome, tried)


# --- manage: sites, weekly hours, exceptions ------------------------------------------------


def _free_sites(program: Program) -> list[tuple[int, str]]:
    """The organization's active sites that do not offer the program yet, as choices."""
    offered = {ps.site_id for ps in program.program_sites}
    stmt = select(Site).where(Site.organization_id == program.organization_id, Site.is_active)
    return [
        (s.id, s.name) for s in db.session.scalars(stmt.order_by(Site.name)) if s.id not in offered
    ]


def _sites_page(program: Program, status: int = 200, **forms: Any):
    offer_form = forms.get("offer_form") or OfferForm(formdata=None, prefix="offer")
    offer_form.site_id.choices = _free_sites(program)
    hours_forms, exception_forms = forms.get("hours_forms", {}), forms.get("exception_forms", {})
    for ps in program.program_sites:
        if ps.id not in hours_forms:
            hours_forms[ps.id] = HoursForm(formdata=None, prefix=f"ps{ps.id}")
            hours_forms[ps.id].fill(
                ps.open_24_7, [(h.weekday, h.opens_at, h.closes_at) for h in ps.weekly_hours]
            )
        exception_forms.setdefault(ps.id, ExceptionForm(formdata=None, prefix=f"ex{ps.id}"))
    return render_template(
        "directory/sites.html",
        program=program,
        today=shared._local_day(shared.now()),
        offer_form=offer_form,
        hours_forms=hours_forms,
        exception_forms=exception_forms,
        site_form=forms.get("site_form") or SiteForm(formdata=None),
    ), status


def _program_site_or_404(program: Program, program_site_id: int) -> ProgramSite:
    found = db.session.scalar(
        select(ProgramSite).where(
            ProgramSite.id == program_site_id, ProgramSite.program_id == program.id
        )
    )
    if found is None:
        raise NotFound(_("Not found."))
    return found


def _saved(program: Program, message: str, anchor: str | None = None):
    db.session.commit()
    flash(message, "success")
    return redirect(url_for("directory.sites", program_id=program.id, _anchor=anchor))


@bp.get("/manage/programs/<int:program_id>/sites")
@login_required
def sites(program_id: int):
    return _sites_page(managed_program_or_404(current_user, program_id))


@bp.post("/manage/programs/<int:program_id>/sites")
@login_required
def offer(program_id: int):
    program = managed_program_or_404(current_user, program_id)
    form = OfferForm(prefix="offer")
    form.site_id.choices = _free_sites(program)
    if form.validate() and (weekly := form.weekly()) is not None:
        try:
            ops.offer_at(
                program,
                db.session.get(Site, form.site_id.data),
                open_24_7=form.open_24_7.data,
                weekly=weekly,
            )
        except ValidationFailed as exc:
            db.session.rollback()
            apply_errors(form, exc)
        else:
            return _saved(program, _("The program is now offered at this site."))
    return _sites_page(program, 422, offer_form=form)


@bp.post("/manage/programs/<int:program_id>/sites/<int:program_site_id>/hours")
@login_required
def hours(program_id: int, program_site_id: int):
    program = managed_program_or_404(current_user, program_id)
    program_site = _program_site_or_404(program, program_site_id)
    form = HoursForm(prefix=f"ps{program_site.id}")
    if form.validate() and (weekly := form.weekly()) is not None:
        try:
            ops.set_hours(program_site, open_24_7=form.open_24_7.data, weekly=weekly)
        except ValidationFailed as exc:
            db.session.rollback()
            apply_errors(form, exc)
        else:
            return _saved(program, _("The opening hours are saved."), f"ps-{program_site.id}")
    return _sites_page(program, 422, hours_forms={program_site_id: form})


@bp.post("/manage/programs/<int:program_id>/sites/<int:program_site_id>/exceptions")
@login_required
def add_exception(program_id: int, program_site_id: int):
    program = managed_program_or_404(current_user, program_id)
    program_site = _program_site_or_404(program, program_site_id)
    form = ExceptionForm(prefix=f"ex{program_site.id}")
    if form.validate():
        closed = form.closed.data == "closed"
        try:
            ops.add_exception(
                program_site,
                form.on_date.data,
                closed=closed,
                opens=None if closed else form.opens.data,
                closes=None if closed else form.closes.data,
                reason=(form.reason.data or "").strip() or None,
            )
        except ValidationFailed as exc:
            db.session.rollback()
            apply_errors(form, exc)
        else:
            return _saved(program, _("The change of hours is saved."), f"ps-{program_site.id}")
    return _sites_page(program, 422, exception_forms={program_site_id: form})


@bp.post("/manage/programs/<int:program_id>/sites/new")
@login_required
def new_site(program_id: int):
    program = managed_program_or_404(current_user, program_id)
    form = SiteForm()
    if form.validate():
        try:
            site = ops.create_site(program.organization, **form.fields_for_site())
        except ValidationFailed as exc:
            db.session.rollback()
            apply_errors(form, exc)
        else:
            return _saved(
                program,
                _("The site %(name)s is added. Now offer the program there.", name=site.name),
                "offer",
            )
    return _sites_page(program, 422, site_form=form)
