"""Referral work the background worker does on every pass."""

from __future__ import annotations

from flask import current_app

from referral_hub.referrals.operations import SweepReport, escalate_overdue


def escalate() -> SweepReport:
    """Escalate referrals past their response deadline; expire long-unanswered ones."""
    return escalate_overdue(expire_after_hours=current_app.config["REFERRAL_EXPIRE_AFTER_HOURS"])
