"""About 150 demo referrals over the past 90 days, in every state, with realistic timings.

Built through the referral operations (so every invariant and event is real), then moved
back in time: each referral's steps get plausible delays from its sending moment.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select

from referral_hub.accounts.models import Membership, Role, User
from referral_hub.core.db import utcnow
from referral_hub.directory.models import Program, ProgramSite, Site
from referral_hub.extensions import db
from referral_hub.notify.models import Message
from referral_hub.referrals import operations as ops
from referral_hub.referrals.lifecycle import Side
from referral_hub.referrals.models import Client, Referral, ReferralEvent, Status

NAMES = [
    "Amina",
    "Hodan",
    "Kou",
    "Mai",
    "Tou",
    "Ana",
    "José",
    "Lupe",
    "Marcus",
    "DeShawn",
    "Keisha",
    "Tyrone",
    "Dakota",
    "Winona",
    "Shirley",
    "Bob",
    "Fartun",
    "Abdi",
    "Nhia",
    "Pa Houa",
    "Rosa",
    "Miguel",
    "Jasmine",
    "Andre",
    "Layla",
    "Omar",
    "Yer",
    "Chue",
    "Leticia",
    "Kevin",
]
LANGUAGES = ["en", "en", "en", "es", "so", "hmn"]
# Where each demo referral ends up, with weights: most reach a handoff, some do not.
PATHS = [
    (["accept", "hand_off", "complete"], 40),
    (["accept", "hand_off"], 15),
    (["accept", "depart", "arrive"], 6),
    (["accept", "depart"], 4),
    (["accept"], 12),
    (["decline"], 14),
    (["accept", "no_show"], 8),
    (["cancel"], 8),
    (["hold"], 4),
    ([], 12),  # still waiting for an answer: some escalate, old ones expire
    (["enter_in_error"], 1),
]
FIELDS = {
    "decline": lambda rng: {
        "reason_code": rng.choice(
            ["no_capacity", "not_eligible", "unable_to_contact", "client_declined"]
        )
    },
    "hand_off": lambda rng: {
        "handed_off_to": rng.choice(["Kou Vang", "Hodan Ali", "Ana Flores", "Marcus Green"])
    },
    "complete": lambda rng: {
        "outcome": rng.choice(
            ["enrolled", "services_delivered", "housed", "employed", "referred_elsewhere"]
        )
    },
    "cancel": lambda rng: {"reason_code": rng.choice(["client_declined", "client_unreachable"])},
    "hold": lambda rng: {"reason_code": "client_asked_to_wait"},
    "enter_in_error": lambda rng: {"reason_note": "duplicate entry"},
}
# Typical delay before each step, in hours (low, high).
DELAYS = {
    "accept": (0.3, 20),
    "decline": (0.5, 30),
    "depart": (2, 30),
    "arrive": (0.3, 1),
    "hand_off": (0.1, 48),
    "complete": (24, 240),
    "no_show": (24, 72),
    "cancel": (1, 48),
    "hold": (1, 24),
    "enter_in_error": (0.1, 2),
}


def load_history(count: int = 150, seed: int = 2026) -> int:
    """Create the demo history unless referrals exist already; returns how many it made."""
    if db.session.scalar(select(func.count()).select_from(Referral)):
        return 0
    rng = random.Random(seed)  # noqa: S311  (reproducible demo data, not secrets)
    responders = list(
        db.session.scalars(select(User).join(Membership).where(Membership.role == Role.RESPONDER))
    )
    programs = list(
        db.session.scalars(
            select(Program)
            .where(Program.is_active, Program.accepts_responder_referrals)
            .order_by(Program.id)
        )
    )
    if not responders or not programs:
        return 0
    sites = {
        row.program_id: row.site_id
        for row in db.session.execute(select(ProgramSite.program_id, ProgramSite.site_id))
    }
    now = utcnow()
    clients: list[Client] = []
    made: list[int] = []
    for n in range(count):
        responder = rng.choice(responders)
        org = responder.primary_membership.organization
        if len(clients) < 90 or rng.random() < 0.4:
            client = ops.create_client(
                org,
                responder,
                display_name=rng.choice(NAMES),
                preferred_language=rng.choice(LANGUAGES),
                birth_year=rng.randint(1950, 2007),
                phone=f"+1612555{rng.randint(1000, 9999)}",
                sms_ok=rng.random() < 0.6,
            )
            clients.append(client)
        else:
            client = rng.choice([c for c in clients if c.organization_id == org.id] or clients)
        program = rng.choice(programs)
        consent = ops.record_consent(client, program, responder, method="verbal")
        referral = ops.send_referral(
            client=client,
            program=program,
            user=responder,
            organization=org,
            consent=consent,
            site=db.session.get(Site, sites.get(program.id)),
            priority="urgent" if rng.random() < 0.25 else "routine",
            answers={"needs": [c.code for c in program.categories][:1]},
        )
        # Every path at least once, then by weight.
        path = (
            PATHS[n][0]
            if n < len(PATHS)
            else rng.choices([p for p, _ in PATHS], weights=[w for _, w in PATHS])[0]
        )
        actor = ops.Actor(frozenset(Side), label="demo")
        for action in path:
            ops.perform(referral, action, actor, **FIELDS.get(action, lambda r: {})(rng))
        # Unanswered ones are recent (older ones would have expired): some are overdue.
        age_days = rng.uniform(0.02, 1.5) if not path else rng.uniform(0.2, 90)
        _backdate(referral, now - timedelta(days=age_days, minutes=n), rng)
        made.append(referral.id)
    db.session.flush()
    # History is history: the demo does not leave hundreds of stale notifications queued.
    db.session.execute(delete(Message).where(Message.referral_id.in_(made)))
    ops.escalate_overdue(now)
    db.session.execute(
        delete(Message).where(
            Message.referral_id.in_(made), Message.template != "referral_escalated"
        )
    )
    db.session.flush()
    return len(made)


def _backdate(referral: Referral, sent: datetime, rng: random.Random) -> None:
    """Move a referral's steps back in time, keeping their order and plausible delays."""
    moment = sent
    events = db.session.scalars(
        select(ReferralEvent)
        .where(ReferralEvent.referral_id == referral.id)
        .order_by(ReferralEvent.id)
    ).all()
    for event in events:
        if event.action != "send":
            low, high = DELAYS.get(event.action, (0.5, 12))
            moment = moment + timedelta(hours=rng.uniform(low, high))
        event.created_at = moment
        stamp = {
            "send": "sent_at",
            "accept": "accepted_at",
            "arrive": "arrived_at",
            "hand_off": "handed_off_at",
        }.get(event.action)
        if stamp:
            setattr(referral, stamp, moment)
        if event.to_status is not None and event.to_status.terminal:
            referral.closed_at = moment
        if event.action == "hand_off" and referral.arrived_at is None:
            referral.arrived_at = moment
    referral.created_at = sent
    referral.updated_at = moment
    referral.response_due_at = sent + timedelta(hours=referral.program.response_target_hours)
    if referral.status == Status.ACCEPTED and referral.accepted_at:
        referral.appointment_at = referral.accepted_at + timedelta(days=rng.randint(1, 5))
    if referral.status in (Status.HANDED_OFF, Status.COMPLETED) and referral.handed_off_at:
        referral.arrived_at = min(
            referral.arrived_at or referral.handed_off_at, referral.handed_off_at
        )
