"""JSON API: the caller, organizations and users."""

from __future__ import annotations

from flask import Blueprint
from flask_login import current_user, login_required
from sqlalchemy import or_, select

from referral_hub import policies
from referral_hub.accounts import operations as ops
from referral_hub.accounts.models import Membership, Organization, User
from referral_hub.accounts.schemas import (
    MeSchema,
    OrganizationSchema,
    UserCreateSchema,
    UserQuerySchema,
    UserSchema,
    UserUpdateSchema,
)
from referral_hub.core.api import API_PREFIX, PageQuery, endpoint, load_json, load_query, paginate
from referral_hub.extensions import csrf, db

bp = Blueprint("accounts_api", __name__, url_prefix=API_PREFIX)
csrf.exempt(bp)  # bearer requests need none; cookie requests are checked in accounts.auth


@bp.get("/me")
@login_required
@endpoint(
    summary="The authenticated user, their roles and organizations",
    tag="accounts",
    response=MeSchema,
)
def me():
    return MeSchema().dump(current_user)


@bp.get("/organizations")
@login_required
@endpoint(
    summary="Organizations visible to the caller",
    tag="accounts",
    query=PageQuery,
    response=OrganizationSchema,
    paginated=True,
)
def organizations():
    params = load_query(PageQuery())
    stmt = policies.visible(current_user, Organization).order_by(Organization.name)
    return paginate(stmt, OrganizationSchema(), params)


@bp.get("/organizations/<int:org_id>")
@login_required
@endpoint(summary="One organization", tag="accounts", response=OrganizationSchema, errors=(404,))
def organization(org_id: int):
    org = policies.get_visible_or_404(current_user, Organization, org_id)
    return OrganizationSchema().dump(org)


@bp.get("/users")
@login_required
@endpoint(
    summary="Users visible to the caller",
    tag="accounts",
    query=UserQuerySchema,
    response=UserSchema,
    paginated=True,
)
def users():
    params = load_query(UserQuerySchema())
    stmt = policies.visible(current_user, User).order_by(User.name, User.id)
    if "organization_id" in params:
        stmt = stmt.where(
            User.id.in_(
                select(Membership.user_id).where(
                    Membership.organization_id == params["organization_id"]
                )
            )
        )
    if params.get("q"):
        like = f"%{params['q'].lower()}%"
        stmt = stmt.where(or_(User.email.like(like), User.name.ilike(like)))
    return paginate(stmt, UserSchema(), params)


@bp.get("/users/<int:user_id>")
@login_required
@endpoint(summary="One user", tag="accounts", response=UserSchema, errors=(404,))
def user(user_id: int):
    return UserSchema().dump(policies.get_visible_or_404(current_user, User, user_id))


@bp.post("/users")
@login_required
@endpoint(
    summary="Create a user with a membership",
    tag="accounts",
    body=UserCreateSchema,
    response=UserSchema,
    status=201,
    errors=(403, 404),
)
def create_user():
    data = load_json(UserCreateSchema())
    org = policies.get_visible_or_404(current_user, Organization, data.pop("organization_id"))
    policies.require(policies.can_manage_members(current_user, org))
    created = ops.create_user(organization=org, **data)
    db.session.commit()
    return UserSchema().dump(created), 201


@bp.patch("/users/<int:user_id>")
@login_required
@endpoint(
    summary="Change a user (deactivating ends their sessions and tokens)",
    tag="accounts",
    body=UserUpdateSchema,
    response=UserSchema,
    errors=(403, 404),
)
def update_user(user_id: int):
    target = policies.get_visible_or_404(current_user, User, user_id)
    data = load_json(UserUpdateSchema())
    policies.require(policies.can_manage_user(current_user, target))
    ops.update_user(target, **data)
    db.session.commit()
    return UserSchema().dump(target)
