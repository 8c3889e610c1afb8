"""Navigation per role: each entry names its endpoint and the roles that see it."""

from __future__ import annotations

from dataclasses import dataclass

from flask_babel import lazy_gettext as _l

from referral_hub.accounts.models import Role

ALL_ROLES = frozenset(Role)


@dataclass(frozen=True)
class NavItem:
    endpoint: str
    label: object
    roles: frozenset[Role]


NAV: list[NavItem] = [
    NavItem("web.home", _l("Home"), ALL_ROLES),
    NavItem(
        "matching.screen",
        _l("Find programs"),
        frozenset({Role.RESPONDER, Role.COORDINATOR, Role.ADMIN}),
    ),
    NavItem(
        "referrals.index",
        _l("Referrals"),
        frozenset(
            {Role.RESPONDER, Role.PROVIDER_STAFF, Role.PROVIDER_ADMIN, Role.COORDINATOR, Role.ADMIN}
        ),
    ),
    NavItem(
        "insights.dashboard",
        _l("Insights"),
        frozenset({Role.RESPONDER, Role.PROVIDER_ADMIN, Role.COORDINATOR, Role.ADMIN}),
    ),
    NavItem("transport.dispatch", _l("Dispatch"), frozenset({Role.DISPATCHER})),
    NavItem("directory.browse", _l("Directory"), ALL_ROLES),
    NavItem(
        "directory.manage_programs", _l("Programs"), frozenset({Role.PROVIDER_ADMIN, Role.ADMIN})
    ),
    NavItem("admin.organizations", _l("Organizations"), frozenset({Role.ADMIN, Role.COORDINATOR})),
    NavItem("admin.users", _l("Users"), frozenset({Role.ADMIN, Role.PROVIDER_ADMIN})),
    NavItem("accounts.account", _l("My account"), ALL_ROLES),
]


def nav_for(roles: set[Role]) -> list[NavItem]:
    """Entries a user with these roles sees, in declared order."""
    return [item for item in NAV if item.roles & roles]
