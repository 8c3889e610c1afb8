"""The public HSDS 3.0 read API at /hsds/: services, organizations, service at locations,
taxonomies and taxonomy terms, as the HSDS openapi.json describes them.

Public on purpose: the directory lists public services and holds no client data. Only
active programs of active organizations, at active sites, are shown. Lists are HSDS Page
objects; `page` and `per_page` page them, and bad parameters answer 400 in the API's one
error shape.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC
from typing import Any

from flask import Blueprint, Response, current_app, jsonify
from marshmallow import RAISE, Schema, fields, validate
from sqlalchemy import ColumnElement, Select, false, func, or_, select
from sqlalchemy.orm import joinedload, selectinload

from referral_hub.accounts.models import Organization
from referral_hub.core.api import error_response, load_query
from referral_hub.core.errors import AppError, NotFound, ValidationFailed
from referral_hub.directory import hsds
from referral_hub.directory.models import Category, Program, ProgramSite, Site
from referral_hub.extensions import db

bp = Blueprint("hsds", __name__, url_prefix="/hsds")

MAX_PER_PAGE = 200
PUBLISHED = (Program.is_active.is_(True), Organization.is_active.is_(True))
TERMS_LIST = [hsds.term(code) for code in hsds.TERMS]


@bp.get("/")
def root() -> dict[str, str]:
    """HSDS API root: which version of the specification this server speaks."""
    return {
        "version": "3.0.1",
        "profile": "https://openreferral.org/",
        "openapi_url": "https://raw.githubusercontent.com/openreferral/specification/3.0/schema/openapi.json",
    }


# --- parameters and errors -------------------------------------------------------------------


class PageQuery(Schema):
    """Parameters every HSDS list takes (unknown ones are refused, not silently ignored)."""

    class Meta:
        unknown = RAISE

    page = fields.Integer(load_default=1, validate=validate.Range(min=1))
    per_page = fields.Integer(load_default=None, validate=validate.Range(min=1, max=MAX_PER_PAGE))
    search = fields.String(validate=validate.Length(max=200))
    format = fields.String(validate=validate.OneOf(["json"]))


class ServiceQuery(PageQuery):
    """Filters of /services and /service_at_locations."""

    taxonomy_term_id = fields.UUID()
    taxonomy_id = fields.UUID()
    organization_id = fields.UUID()
    modified_after = fields.AwareDateTime(default_timezone=UTC)


class TermQuery(PageQuery):
    """Filters of /taxonomy_terms."""

    taxonomy_id = fields.UUID()
    parent_id = fields.UUID()
    top_only = fields.Boolean()


class OrganizationQuery(Schema):
    """Parameters of /organizations/<id>."""

    class Meta:
        unknown = RAISE

    full_service = fields.Boolean(load_default=False)


def _params(schema: Schema) -> dict[str, Any]:
    try:
        return load_query(schema)
    except ValidationFailed as exc:
        # A malformed query is a bad request, not an invalid entity.
        raise AppError(exc.message, fields=exc.fields) from exc


@bp.errorhandler(AppError)
def _app_error(exc: AppError) -> Response:
    return error_response(exc.status, exc.code, exc.message, exc.fields)


def _uuid(value: str, what: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise NotFound(f"No {what} with this id.") from None


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _matches(text: str, *columns) -> ColumnElement[bool]:
    return or_(*(column.ilike(_like(text), escape="\\") for column in columns))


# --- pages -----------------------------------------------------------------------------------


def page_object(contents: list, total: int, page: int, per_page: int) -> dict[str, Any]:
    """The HSDS Page object around one page of contents."""
    total_pages = math.ceil(total / per_page)
    return {
        "total_items": total,
        "total_pages": total_pages,
        "page_number": page,
        "size": len(contents),
        "first_page": page == 1,
        "last_page": page >= total_pages,
        "empty": not contents,
        "contents": contents,
    }


def _per_page(params: dict[str, Any]) -> int:
    return params["per_page"] or current_app.config["API_PAGE_SIZE"]


def _count(stmt: Select) -> int:
    return db.session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery()))


def _page(stmt: Select, params: dict, options: Sequence, dump: Callable[[Any], dict]) -> Response:
    """Two queries for the page itself, plus one per eager-loaded list, whatever its size."""
    page, per_page = params["page"], _per_page(params)
    total = _count(stmt)
    rows = db.session.scalars(
        stmt.options(*options).limit(per_page).offset((page - 1) * per_page)
    ).unique()
    return jsonify(page_object([dump(row) for row in rows], total, page, per_page))


# --- services --------------------------------------------------------------------------------


def _published_programs() -> Select:
    return select(Program).join(Program.organization).where(*PUBLISHED)


def _organization_pk(hsds_id: str) -> int | None:
    # Organizations have no uuid column: their HSDS ids are derived from the primary key.
    for pk in db.session.scalars(select(Organization.id)):
        if hsds.organization_id(pk) == hsds_id:
            return pk
    return None


def _service_filters(params: dict[str, Any]) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = []
    if params.get("search"):
        where.append(_matches(params["search"], Program.name, Program.description))
    if "taxonomy_term_id" in params:
        # Only category terms select services; the referral_hub terms describe every service.
        where.append(Program.categories.any(Category.uuid == str(params["taxonomy_term_id"])))
    taxonomy_id = str(params.get("taxonomy_id", hsds.TAXONOMY_ID))
    if taxonomy_id == hsds.CATEGORY_TAXONOMY_ID:
        where.append(Program.categories.any())
    elif taxonomy_id != hsds.TAXONOMY_ID:
        where.append(false())
    if "organization_id" in params:
        pk = _organization_pk(str(params["organization_id"]))
        where.append(Program.organization_id == pk if pk else false())
    if "modified_after" in params:
        where.append(Program.updated_at >= params["modified_after"])
    return where


@bp.get("/services")
def services() -> Response:
    """Active services, flat (compiled/service_list), in a Page."""
    params = _params(ServiceQuery())
    stmt = _published_programs().where(*_service_filters(params))
    stmt = stmt.order_by(Program.name, Program.id)
    return _page(stmt, params, hsds.SERVICE_FLAT, hsds.service_flat)


@bp.get("/services/<id>")
def service(id: str) -> Response:
    """One active service in full (compiled/service)."""
    found = db.session.scalar(
        _published_programs()
        .where(Program.uuid == _uuid(id, "service"))
        .options(*hsds.SERVICE_TREE)
    )
    if found is None:
        raise NotFound("No service with this id.")
    return jsonify(hsds.service(found))


# --- organizations ---------------------------------------------------------------------------


def _published_organizations() -> Select:
    serving = _published_programs().where(Program.organization_id == Organization.id)
    return select(Organization).where(Organization.is_active.is_(True), serving.exists())


@bp.get("/organizations")
def organizations() -> Response:
    """Active organizations that list at least one active service, in a Page."""
    params = _params(PageQuery())
    stmt = _published_organizations()
    if params.get("search"):
        stmt = stmt.where(_matches(params["search"], Organization.name, Organization.description))
    stmt = stmt.order_by(Organization.name, Organization.id)
    return _page(stmt, params, (), hsds.organization_flat)


@bp.get("/organizations/<id>")
def organization(id: str) -> Response:
    """One organization in full, with its locations and (flat or full) services."""
    params = _params(OrganizationQuery())
    pk = _organization_pk(_uuid(id, "organization"))
    found = db.session.scalar(_published_organizations().where(Organization.id == pk))
    if found is None:
        raise NotFound("No organization with this id.")
    sites = db.session.scalars(
        select(Site).where(Site.organization_id == pk, Site.is_active.is_(True)).order_by(Site.name)
    )
    full = params["full_service"]
    programs = db.session.scalars(
        _published_programs()
        .where(Program.organization_id == pk)
        .options(*(hsds.SERVICE_TREE if full else hsds.SERVICE_FLAT))
        .order_by(Program.name)
    )
    services = [
        hsds.service(p) if full else hsds.service_flat(p, with_organization=False) for p in programs
    ]
    return jsonify(hsds.organization(found, sites, services))


# --- service at locations --------------------------------------------------------------------


def _published_program_sites() -> Select:
    return (
        select(ProgramSite)
        .join(ProgramSite.program)
        .join(Program.organization)
        .join(ProgramSite.site)
        .where(*PUBLISHED, Site.is_active.is_(True))
    )


@bp.get("/service_at_locations")
def service_at_locations() -> Response:
    """Active services at active locations, flat, in a Page."""
    params = _params(ServiceQuery())
    stmt = _published_program_sites().where(*_service_filters(params))
    stmt = stmt.order_by(Program.name, Site.name, ProgramSite.id)
    options = (
        joinedload(ProgramSite.site),
        joinedload(ProgramSite.program).options(*hsds.SERVICE_FLAT),
    )
    return _page(stmt, params, options, hsds.service_at_location_flat)


@bp.get("/service_at_locations/<id>")
def service_at_location(id: str) -> Response:
    """One service at a location in full, with its schedules, location and service."""
    found = db.session.scalar(
        _published_program_sites()
        .where(ProgramSite.uuid == _uuid(id, "service at location"))
        .options(
            joinedload(ProgramSite.site),
            selectinload(ProgramSite.weekly_hours),
            selectinload(ProgramSite.exceptions),
            joinedload(ProgramSite.program).options(
                *hsds.SERVICE_FLAT,
                selectinload(Program.categories),
                selectinload(Program.service_areas),
            ),
        )
    )
    if found is None:
        raise NotFound("No service at location with this id.")
    return jsonify(hsds.service_at_location(found, with_service=True))


# --- taxonomies ------------------------------------------------------------------------------


@bp.get("/taxonomies")
def taxonomies() -> Response:
    """The two taxonomies we publish (see referral_hub.directory.hsds), in a Page."""
    params = _params(PageQuery())
    found = [
        t for t in hsds.TAXONOMIES.values() if params.get("search", "").lower() in t["name"].lower()
    ]
    page, per_page = params["page"], _per_page(params)
    start = (page - 1) * per_page
    return jsonify(page_object(found[start : start + per_page], len(found), page, per_page))


@bp.get("/taxonomies/<id>")
def taxonomy(id: str) -> Response:
    """One taxonomy."""
    found = hsds.TAXONOMIES.get(_uuid(id, "taxonomy"))
    if found is None:
        raise NotFound("No taxonomy with this id.")
    return jsonify(found)


@bp.get("/taxonomy_terms")
def taxonomy_terms() -> Response:
    """The referral_hub terms, then the categories, in a Page (no term has a parent)."""
    params = _params(TermQuery())
    taxonomy_id = str(params.get("taxonomy_id", ""))
    search = params.get("search", "").lower()
    ours = [] if "parent_id" in params or taxonomy_id not in ("", hsds.TAXONOMY_ID) else TERMS_LIST
    ours = [t for t in ours if search in t["name"].lower() or search in t["code"]]
    stmt = select(Category).order_by(Category.code, Category.id)
    if "parent_id" in params or taxonomy_id not in ("", hsds.CATEGORY_TAXONOMY_ID):
        stmt = stmt.where(false())
    if search:
        stmt = stmt.where(_matches(search, Category.name, Category.code))
    page, per_page = params["page"], _per_page(params)
    start = (page - 1) * per_page
    contents = ours[start : start + per_page]
    total = len(ours) + _count(stmt)
    if len(contents) < per_page:
        offset = max(0, start - len(ours))
        categories = db.session.scalars(stmt.offset(offset).limit(per_page - len(contents)))
        contents += [hsds.category_term(c) for c in categories]
    return jsonify(page_object(contents, total, page, per_page))


@bp.get("/taxonomy_terms/<id>")
def taxonomy_term(id: str) -> Response:
    """One term: of the referral_hub taxonomy, or a category."""
    term_id = _uuid(id, "taxonomy term")
    if term_id in hsds.TERM_CODES:
        return jsonify(hsds.term(hsds.TERM_CODES[term_id]))
    found = db.session.scalar(select(Category).where(Category.uuid == term_id))
    if found is None:
        raise NotFound("No taxonomy term with this id.")
    return jsonify(hsds.category_term(found))
