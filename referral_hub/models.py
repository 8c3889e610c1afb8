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
from referral_hub.insights import tallies  # noqa: F401  (keeps the daily tallies in step)
from referral_hub.insights.models import (
    Goal,
    ReferralDayCode,
    ReferralDayTally,
    ScreeningHourTally,
    ScreeningRecord,
)
from referral_hub.notify.models import InboundMessage, Message
from referral_hub.portal.models import ClientLink
from referral_hub.referrals.models import Client, Consent, RecordView, Referral, ReferralEvent
from referral_hub.transport.models import Driver, DriverLink, FollowUp, Ride, RideEvent, Vehicle

__all__ = [
    "ApiToken",
    "Category",
    "Client",
    "ClientLink",
    "Consent",
    "Driver",
    "DriverLink",
    "FollowUp",
    "Goal",
    "HoursException",
    "InboundMessage",
    "Landmark",
    "Membership",
    "Message",
    "Organization",
    "Program",
    "ProgramLanguage",
    "ProgramSite",
    "RecordView",
    "Referral",
    "ReferralDayCode",
    "ReferralDayTally",
    "ReferralEvent",
    "Ride",
    "RideEvent",
    "ScreeningHourTally",
    "ScreeningRecord",
    "ServiceArea",
    "Site",
    "User",
    "UserSession",
    "Vehicle",
    "WeeklyHours",
]
