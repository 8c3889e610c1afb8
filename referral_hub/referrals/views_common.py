"""What a viewer may see of a referral: one function used by pages and the API."""

from __future__ import annotations

from typing import Any

from referral_hub import policies
from referral_hub.accounts.models import User
from referral_hub.referrals.lifecycle import Side, available
from referral_hub.referrals.models import Referral

# Fields only the provider sees (its internal notes) ...
PROVIDER_ONLY = ("provider_notes",)
# ... and fields withheld from everyone but the provider when the program is sensitive: the
# referring side learns whether and when the handoff happened, never notes or outcome.
SENSITIVE = ("reason_note", "outcome", "appointment_at", "note")


def referral_view(user: User, referral: Referral) -> dict[str, Any]:
    """The referral as a dict for this viewer, with withheld fields nulled and listed."""
    sides = policies.referral_sides(user, referral)
    withheld: list[str] = []
    if Side.PROVIDER not in sides:
        withheld.extend(PROVIDER_ONLY)
        if referral.program.sensitive:
            withheld.extend(SENSITIVE)
    if Side.REFERRER not in sides and Side.PROVIDER not in sides:
        withheld.append("handoff_code")
    elif Side.PROVIDER in sides and Side.REFERRER not in sides:
        # The provider checks the client's code; it must not be shown to them.
        withheld.append("handoff_code")
    view = {
        column: getattr(referral, column)
        for column in (
            "id",
            "uuid",
            "status",
            "version",
            "priority",
            "program_id",
            "site_id",
            "client_id",
            "provider_org_id",
            "referring_org_id",
            "referring_user_id",
            "rerouted_from_id",
            "sent_at",
            "response_due_at",
            "accepted_at",
            "appointment_at",
            "arrived_at",
            "handed_off_at",
            "closed_at",
            "escalated_at",
            "note",
            "reason_code",
            "reason_note",
            "outcome",
            "provider_notes",
            "handoff_code",
        )
    }
    view["program_name"] = referral.program.name
    for name in withheld:
        view[name] = None
    view["withheld"] = withheld
    view["actions"] = [t.action for t in available(referral.status, sides)]
    return view
