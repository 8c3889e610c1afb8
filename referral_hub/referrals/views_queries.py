"""Read-only queries behind the referral pages: the role-aware list and its flags (messages
not delivered, the client's answer), the screening answers a results page posts, the programs
to re-route to, and who has seen a client record. No routes here (they all live in
views.py); nothing is written.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from flask_babel import gettext as _
from sqlalchemy import Select, case, func, select

from referral_hub import policies
from referral_hub.accounts.models import Organization, Role, User
from referral_hub.core.db import utcnow
from referral_hub.core.errors import ValidationFailed
from referral_hub.extensions import db
from referral_hub.matching.operations import MatchResult, clean_answers, match
from referral_hub.notify.models import Message, MessageStatus
from referral_hub.referrals.models import (
    OPEN,
    Priority,
    RecordView,
    Referral,
    ReferralEvent,
    Status,
)

CITY_WIDE = (Role.COORDINATOR, Role.ADMIN)


def list_mode(user: User) -> str:
    """'all' for coordinators, 'inbox' for provider staff, 'mine' for the referring side."""
    if policies.has_role(user, *CITY_WIDE):
        return "all"
    if policies.provider_org_ids(user):
        return "inbox"
    return "mine"


def list_query(
    user: User,
    mode: str,
    *,
    status: str | None,
    program_id: int | None = None,
    escalated: bool = False,
) -> Select:
    """The referrals of the list, filtered and ordered for the mode."""
    stmt = policies.visible(user, Referral)
    if mode == "inbox":
        stmt = stmt.where(Referral.provider_org_id.in_(policies.provider_org_ids(user)))
    elif mode == "mine":
        stmt = stmt.where(Referral.referring_org_id.in_(user.organization_ids or {-1}))
    if status == "open":
        stmt = stmt.where(Referral.status.in_(OPEN - {Status.DRAFT}))
    elif status in set(Status):
        stmt = stmt.where(Referral.status == Status(status))
    if mode == "all" and program_id:
        stmt = stmt.where(Referral.program_id == program_id)
    if mode == "all" and escalated:
        stmt = stmt.where(Referral.escalated_at.is_not(None))
    if mode == "inbox":
        # Overdue first, then new, then the rest; urgent before routine in each.
        sent = Referral.status == Status.SENT
        stmt = stmt.order_by(
            case((sent & (Referral.response_due_at < utcnow()), 0), (sent, 1), else_=2),
            case((Referral.priority == Priority.URGENT, 0), else_=1),
        )
    return stmt.order_by(Referral.created_at.desc(), Referral.id.desc())


# The client's answers through their page (portal), and the program's new appointment that
# answers them in turn: after it, the client's earlier answer no longer stands.
CLIENT_ANSWERS = ("client_confirmed", "client_reschedule_requested")
ANSWER_RESETS = ("schedule",)


@dataclass(frozen=True)
class ClientAnswer:
    """The client's standing answer: confirmed, or asked for another time (with when)."""

    action: str
    at: datetime
    preferences: list[tuple[date | None, str | None]] = field(default_factory=list)

    @property
    def confirmed(self) -> bool:
        return self.action == "client_confirmed"


def delivery_flags(referral_ids: list[int]) -> dict[int, str]:
    """'failed' or 'pending' per referral with undelivered messages, in one query.

    notify.operations.delivery_summary() answers for one referral at a time; a page of 25
    would cost 25 queries, so the same counting rule is applied here to the whole page.
    """
    if not referral_ids:
        return {}
    rows = db.session.execute(
        select(Message.referral_id, Message.status, func.count())
        .where(
            Message.referral_id.in_(referral_ids),
            Message.status.in_(
                [MessageStatus.PENDING, MessageStatus.SENDING, MessageStatus.FAILED]
            ),
        )
        .group_by(Message.referral_id, Message.status)
    ).all()
    flags: dict[int, str] = {}
    for referral_id, status, count in rows:
        if count and status == MessageStatus.FAILED:
            flags[referral_id] = "failed"
        elif count:
            flags.setdefault(referral_id, "pending")
    return flags


def client_answers(referral_ids: list[int]) -> dict[int, ClientAnswer]:
    """The client's standing answer per referral, in one query: the latest of their answers
    and the program's rescheduling, kept when it is the client's."""
    if not referral_ids:
        return {}
    latest = (
        select(func.max(ReferralEvent.id))
        .where(
            ReferralEvent.referral_id.in_(referral_ids),
            ReferralEvent.action.in_([*CLIENT_ANSWERS, *ANSWER_RESETS]),
        )
        .group_by(ReferralEvent.referral_id)
    )
    rows = db.session.execute(
        select(
            ReferralEvent.referral_id,
            ReferralEvent.action,
            ReferralEvent.created_at,
            ReferralEvent.data,
        ).where(ReferralEvent.id.in_(latest), ReferralEvent.action.in_(CLIENT_ANSWERS))
    ).all()
    return {
        referral_id: ClientAnswer(action, at, _preferences(data or {}))
        for referral_id, action, at, data in rows
    }


def _preferences(data: dict[str, Any]) -> list[tuple[date | None, str | None]]:
    found = []
    for item in data.get("preferences") or []:
        day = item.get("date")
        found.append((date.fromisoformat(day) if day else None, item.get("part")))
    return found


def screening_answers(text: str | None) -> dict[str, Any]:
    """The answers the results page carried as JSON, checked against the screener."""
    message = _("The screening answers were lost. Go back to the results and try again.")
    try:
        raw = json.loads(text or "{}")
    except ValueError:
        raw = None
    if not isinstance(raw, dict):
        raise ValidationFailed(message, fields={"answers": [message]})
    try:
        return clean_answers(raw)
    except ValidationFailed as exc:
        raise ValidationFailed(message, fields={"answers": [message]}) from exc


def next_programs(referral: Referral) -> list[MatchResult]:
    """Programs the stored answers qualify for (or might), the declined one left out."""
    result = match(referral.answers)
    return [m for m in (*result.eligible, *result.unknown) if m.program_id != referral.program_id]


def forward_id(user: User, referral: Referral) -> int | None:
    """The referral this one was re-routed to, if the user may see it."""
    stmt = policies.visible(user, Referral, select(Referral.id))
    return db.session.scalar(stmt.where(Referral.rerouted_from_id == referral.id).limit(1))


def record_views(client_id: int, limit: int = 200) -> tuple[list[Any], list[Any]]:
    """Who opened a client record: each opening (newest first) and a count per organization."""
    each = db.session.execute(
        select(RecordView.created_at, RecordView.context, User.name, Organization.name)
        .outerjoin(User, User.id == RecordView.user_id)
        .outerjoin(Organization, Organization.id == RecordView.organization_id)
        .where(RecordView.client_id == client_id)
        .order_by(RecordView.created_at.desc(), RecordView.id.desc())
        .limit(limit)
    ).all()
    per_org = db.session.execute(
        select(Organization.name, func.count(RecordView.id), func.max(RecordView.created_at))
        .select_from(RecordView)
        .outerjoin(Organization, Organization.id == RecordView.organization_id)
        .where(RecordView.client_id == client_id)
        .group_by(Organization.id, Organization.name)
        .order_by(Organization.name)
    ).all()
    return each, per_org
