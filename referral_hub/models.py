"""Every domain's models, imported once so the metadata (and Alembic) knows all tables."""

from referral_hub.accounts.models import ApiToken, Membership, Organization, User, UserSession
from referral_hub.directory.models import (
    Category,
    HoursException,
    Program,
    ProgramLanguage,
    ProgramSite,
    ServiceArea,
    Site,
    WeeklyHours,
)
from referral_hub.geo.models import Landmark

__all__ = [
    "ApiToken",
    "Category",
    "HoursException",
    "Landmark",
    "Membership",
    "Organization",
    "Program",
    "ProgramLanguage",
    "ProgramSite",
    "ServiceArea",
    "Site",
    "User",
    "UserSession",
    "WeeklyHours",
]
