"""Who may see and do what: the one place that decides, and the query helper that applies it.

Every list and every lookup of a tenant-owned record goes through `visible()` or
`get_visible_or_404()`. A record outside the user's reach answers 404, the same as a record
that does not exist, so ids reveal nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import Select, false, select

from referral_hub.accounts.models import Membership, Organization, Role, User
from referral_hub.core.errors import Forbidden, NotFound
from referral_hub.directory.models import Program
from referral_hub.extensions import db
from referral_hub.referrals.lifecycle import Side
from referral_hub.referrals.models import Client, Referral
from referral_hub.transport.models import Driver, FollowUp, Ride, Vehicle

M = TypeVar("M")

CITY_WIDE_READ = {Role.ADMIN, Role.COORDINATOR}


def has_role(user: User, *roles: Role) -> bool:
    """Tell whether the user holds any of these roles in any organization."""
    return bool(user.roles.intersection(roles))


def is_admin(user: User) -> bool:
    return Role.ADMIN in user.roles


def admin_org_ids(user: User) -> set[int]:
    """Organizations whose members this user manages (provider admins manage their own)."""
    return {
        m.organization_id for m in user.memberships if m.role in {Role.PROVIDER_ADMIN, Role.ADMIN}
    }


# --- scopes: one function per model, returning the select of what the user may see ---------

_SCOPES: dict[type, Callable[[User, Select], Select]] = {}


def scope(model: type) -> Callable:
    """Register the visibility rule of a model."""

    def register(fn: Callable[[User, Select], Select]) -> Callable[[User, Select], Select]:
        _SCOPES[model] = fn
        return fn

    return register


@scope(Organization)
def _organizations(user: User, stmt: Select) -> Select:
    if has_role(user, *CITY_WIDE_READ):
        return stmt
    return stmt.where(Organization.id.in_(user.organization_ids or {-1}))


@scope(User)
def _users(user: User, stmt: Select) -> Select:
    if is_admin(user):
        return stmt
    # Colleagues only: members of an organization the user belongs to.
    colleagues = select(Membership.user_id).where(
        Membership.organization_id.in_(user.organization_ids or {-1})
    )
    return stmt.where(User.id.in_(colleagues))


@scope(Membership)
def _memberships(user: User, stmt: Select) -> Select:
    if is_admin(user):
        return stmt
    return stmt.where(Membership.organization_id.in_(user.organization_ids or {-1}))


PROVIDER_ROLES = {Role.PROVIDER_STAFF, Role.PROVIDER_ADMIN}


def provider_org_ids(user: User) -> set[int]:
    return {m.organization_id for m in user.memberships if m.role in PROVIDER_ROLES}


@scope(Referral)
def _referrals(user: User, stmt: Select) -> Select:
    # Coordinators see every referral (sensitive fields are withheld at display); providers
    # see those sent to them; the referring organization sees those it sent.
    if has_role(user, *CITY_WIDE_READ):
        return stmt
    orgs = user.organization_ids or {-1}
    return stmt.where(
        (Referral.provider_org_id.in_(provider_org_ids(user) or {-1}))
        | (Referral.referring_org_id.in_(orgs))
    )


@scope(Client)
def _clients(user: User, stmt: Select) -> Select:
    if has_role(user, *CITY_WIDE_READ):
        return stmt
    orgs = user.organization_ids or {-1}
    referred_to_me = select(Referral.client_id).where(
        Referral.provider_org_id.in_(provider_org_ids(user) or {-1})
    )
    return stmt.where(Client.organization_id.in_(orgs) | Client.id.in_(referred_to_me))


def dispatcher_org_ids(user: User) -> set[int]:
    return {m.organization_id for m in user.memberships if m.role == Role.DISPATCHER}


@scope(Ride)
def _rides(user: User, stmt: Select) -> Select:
    # A ride is seen by whoever sees its referral, and by its transport vendor's dispatchers
    # (who see the ride, not the referral behind it).
    if has_role(user, *CITY_WIDE_READ):
        return stmt
    on_referral = visible(user, Referral, select(Referral.id))
    return stmt.where(
        Ride.vendor_org_id.in_(dispatcher_org_ids(user) or {-1}) | Ride.referral_id.in_(on_referral)
    )


@scope(Driver)
def _drivers(user: User, stmt: Select) -> Select:
    return stmt.where(Driver.organization_id.in_(dispatcher_org_ids(user) or {-1}))


@scope(Vehicle)
def _vehicles(user: User, stmt: Select) -> Select:
    return stmt.where(Vehicle.organization_id.in_(dispatcher_org_ids(user) or {-1}))


@scope(FollowUp)
def _follow_ups(user: User, stmt: Select) -> Select:
    # The referring organization acts on them; coordinators see them all.
    if has_role(user, *CITY_WIDE_READ):
        return stmt
    return stmt.where(FollowUp.organization_id.in_(user.organization_ids or {-1}))


def referral_sides(user: User, referral: Referral) -> set[Side]:
    """How this user stands to this referral: provider, referrer, coordinator (or none)."""
    sides: set[Side] = set()
    if referral.provider_org_id in provider_org_ids(user):
        sides.add(Side.PROVIDER)
    if referral.referring_org_id in user.organization_ids:
        sides.add(Side.REFERRER)
    if has_role(user, *CITY_WIDE_READ):
        sides.add(Side.COORDINATOR)
    return sides


def sees_provider_details(user: User, referral: Referral) -> bool:
    """Provider notes, outcome details and reasons in words: the provider and, unless the
    program is sensitive, coordinators and the referring side (never provider notes)."""
    sides = referral_sides(user, referral)
    if Side.PROVIDER in sides:
        return True
    return not referral.program.sensitive


def visible(user: User | None, model: type[M], stmt: Select | None = None) -> Select:
    """Return a select of the rows of `model` the user may see (nothing for anonymous)."""
    stmt = stmt if stmt is not None else select(model)
    if user is None or not getattr(user, "is_authenticated", False):
        return stmt.where(false())
    try:
        rule = _SCOPES[model]
    except KeyError:
        raise LookupError(f"no visibility rule declared for {model.__name__}") from None
    return rule(user, stmt)


def get_visible_or_404(user: User | None, model: type[M], ident: Any) -> M:
    """Load one record the user may see, or raise NotFound (also for records of others)."""
    pk = model.__mapper__.primary_key[0]  # type: ignore[attr-defined]
    record = db.session.scalar(visible(user, model).where(pk == ident))
    if record is None:
        raise NotFound("Not found.")
    return record


# --- actions --------------------------------------------------------------------------------


def can_manage_organizations(user: User) -> bool:
    """Create organizations and edit any listing: administrators only."""
    return is_admin(user)


def can_manage_members(user: User, org: Organization) -> bool:
    """Add, change and deactivate the members of an organization."""
    return is_admin(user) or org.id in admin_org_ids(user)


def can_manage_user(user: User, target: User) -> bool:
    """Edit another user: an administrator, or the admin of every organization they belong to."""
    if is_admin(user):
        return True
    managed = admin_org_ids(user)
    return bool(target.organization_ids) and target.organization_ids <= managed


def require(allowed: bool) -> None:
    """Raise Forbidden unless allowed; used after the record was found visible."""
    if not allowed:
        raise Forbidden("You are not allowed to do this.")


# --- who manages the directory --------------------------------


def managed_org_ids(user: User) -> set[int] | None:
    """Organizations whose programs the user manages; None means all (administrators)."""
    if is_admin(user):
        return None
    return {m.organization_id for m in user.memberships if m.role == Role.PROVIDER_ADMIN}


def require_manager(user: User) -> None:
    """Only provider administrators and administrators reach /manage; the rest get 403."""
    require(has_role(user, Role.PROVIDER_ADMIN, Role.ADMIN))


def managed(user: User, model: type, stmt: Select | None = None) -> Select:
    """Rows of an organization-owned model (Program, Site, Organization) the user manages."""
    stmt = stmt if stmt is not None else select(model)
    org_ids = managed_org_ids(user)
    column = model.id if model is Organization else model.organization_id
    return stmt if org_ids is None else stmt.where(column.in_(org_ids or {-1}))


def can_manage_program(user: User, program: Program) -> bool:
    org_ids = managed_org_ids(user)
    return org_ids is None or program.organization_id in org_ids


def managed_program_or_404(user: User, program_id: int) -> Program:
    """403 for non-managers, then 404 for a program of another organization."""
    require_manager(user)
    program = db.session.scalar(managed(user, Program).where(Program.id == program_id))
    if program is None:
        raise NotFound("Not found.")
    return program
