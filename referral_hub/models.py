"""Every domain's models, imported once so the metadata (and Alembic) knows all tables."""

from referral_hub.accounts.models import ApiToken, Membership, Organization, User, UserSession
from referral_hub.directory.models import Site

__all__ = ["ApiToken", "Membership", "Organization", "Site", "User", "UserSession"]
