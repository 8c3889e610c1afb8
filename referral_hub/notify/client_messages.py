"""Text messages to clients: what each one says, in the client's language, and the rules that
put them in the outbox (DESIGN.md sections 8 and 9).

What triggers each message:
- the referral is sent: its link (signal `referral_sent`);
- the program accepts or sets the appointment: the appointment (the worker job
  `queue_client_messages` reads the referral's "accept" and "schedule" events, because the
  referral rules send no signal for those and must not import notify's client rules);
- CLIENT_REMINDER_HOURS before the appointment: a reminder (the same job);
- a dispatched ride to the program gets a driver, then the driver sets off (signal
  `ride_changed`);
- the referral is cancelled (signal `referral_closed`).

A client gets text messages only with a phone number and `sms_ok`. Bodies carry no case
details: never the client's name, notes or address; no program name for a sensitive program
or a client who asked for a neutral sender, and the neutral sender's messages only say that
there is an update. A message due inside the client's quiet hours waits for their end.

The client's link exists only at send time: the stored body holds LINK, and `fill_link`
mints a fresh token and puts its address into the copy handed to the gateway.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from babel.dates import format_skeleton, format_time
from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import func, or_, select

from referral_hub.core.db import city_tz, utcnow
from referral_hub.core.errors import Conflict
from referral_hub.extensions import db
from referral_hub.notify.channels import PermanentFailure
from referral_hub.notify.models import Channel, Message
from referral_hub.notify.operations import E164, enqueue
from referral_hub.notify.worker import Outgoing, register_renderer
from referral_hub.portal.operations import client_url, issue_link
from referral_hub.referrals.models import Client, Referral, ReferralEvent, Status
from referral_hub.referrals.operations import referral_closed, referral_sent
from referral_hub.transport.models import Leg, Ride
from referral_hub.transport.operations import ride_changed
from referral_hub.web.i18n import babel_locale_for, language

log = logging.getLogger(__name__)

# Stands for the client's link in stored bodies; replaced only in what goes to the gateway.
LINK = "{link}"

LINK_SENT = "client_link"
APPOINTMENT = "client_appointment"
REMINDER = "client_reminder"
RIDE_BOOKED = "client_ride_booked"
RIDE_ON_THE_WAY = "client_ride_on_the_way"
CANCELLED = "client_cancelled"

# Referral events that tell the client about their appointment, and how far back the job
# looks for them (a worker stopped for longer misses those notices; reminders still go).
NOTICE_ACTIONS = ("accept", "schedule")
NOTICE_LOOKBACK = timedelta(hours=24)
DEFAULT_REMINDER_HOURS = "24,2"


# --- what the messages say -------------------------------------------------------------------


@dataclass(frozen=True)
class Facts:
    """Everything a client message may show; nothing else reaches a body."""

    program: str | None  # None: not named (sensitive program, or a neutral sender asked for)
    neutral: bool  # the client asked for a neutral sender: "you have an update" only
    appointment_at: datetime | None = None
    window_start: datetime | None = None
    window_end: datetime | None = None

    @classmethod
    def of(cls, referral: Referral, **moments: datetime | None) -> Facts:
        client = referral.client
        named = not (referral.program.sensitive or client.neutral_sender)
        return cls(
            program=referral.program.name if named else None,
            neutral=client.neutral_sender,
            **moments,
        )


class Moments:
    """Days and times in the city's time zone, formatted for a language (the fallback locale
    for languages Babel has no data for, such as Hmong)."""

    def __init__(self, language_code: str) -> None:
        self.locale = babel_locale_for(language_code)
        self.tz = city_tz()

    def day(self, moment: datetime) -> str:
        return format_skeleton("MMMEd", moment, tzinfo=self.tz, locale=self.locale)

    def time(self, moment: datetime) -> str:
        return format_time(moment, "short", tzinfo=self.tz, locale=self.locale)


def _update() -> str:
    return _("You have an update. Open your link: %(link)s", link=LINK)


def link_sent(f: Facts, m: Moments) -> str:
    """The referral was sent: the client's page."""
    if f.neutral:
        return _update()
    if f.program:
        return _(
            "Your referral to %(program)s was sent. Follow it here: %(link)s",
            program=f.program,
            link=LINK,
        )
    return _("Your referral was sent. Follow it here: %(link)s", link=LINK)


def appointment(f: Facts, m: Moments) -> str:
    """The program accepted, with the appointment when one is set."""
    if f.neutral:
        return _update()
    if f.appointment_at is None:
        if f.program:
            return _(
                "%(program)s accepted your referral and will contact you about a time. "
                "Details: %(link)s",
                program=f.program,
                link=LINK,
            )
        return _(
            "Your referral was accepted. The program will contact you about a time. "
            "Details: %(link)s",
            link=LINK,
        )
    day, time = m.day(f.appointment_at), m.time(f.appointment_at)
    if f.program:
        return _(
            "%(program)s expects you on %(day)s at %(time)s. Details: %(link)s",
            program=f.program,
            day=day,
            time=time,
            link=LINK,
        )
    return _(
        "Your appointment is on %(day)s at %(time)s. Details: %(link)s",
        day=day,
        time=time,
        link=LINK,
    )


def reminder(f: Facts, m: Moments) -> str:
    """Some hours before the appointment."""
    if f.neutral or f.appointment_at is None:
        return _update()
    day, time = m.day(f.appointment_at), m.time(f.appointment_at)
    if f.program:
        return _(
            "Reminder: %(program)s expects you on %(day)s at %(time)s. Details: %(link)s",
            program=f.program,
            day=day,
            time=time,
            link=LINK,
        )
    return _(
        "Reminder: your appointment is on %(day)s at %(time)s. Details: %(link)s",
        day=day,
        time=time,
        link=LINK,
    )


def ride_booked(f: Facts, m: Moments) -> str:
    """A driver was assigned to the ride to the program."""
    if f.neutral:
        return _update()
    if f.window_start is None:
        return _(
            "Your ride is booked. Open your link when you are ready to be picked up: %(link)s",
            link=LINK,
        )
    return _(
        "Your ride is booked, pickup between %(start)s and %(end)s. Details: %(link)s",
        start=m.time(f.window_start),
        end=m.time(f.window_end or f.window_start),
        link=LINK,
    )


def ride_on_the_way(f: Facts, m: Moments) -> str:
    """The driver set off to the pickup."""
    if f.neutral:
        return _update()
    return _("Your driver is on the way. Details: %(link)s", link=LINK)


def cancelled(f: Facts, m: Moments) -> str:
    """The referral was cancelled; its link no longer works, so there is none."""
    if f.neutral:
        return _("Your appointment was cancelled.")
    if f.program:
        return _(
            "Your referral to %(program)s was cancelled. "
            "Contact the person who referred you with any questions.",
            program=f.program,
        )
    return _("Your referral was cancelled. Contact the person who referred you with any questions.")


TEMPLATES: dict[str, Callable[[Facts, Moments], str]] = {
    LINK_SENT: link_sent,
    APPOINTMENT: appointment,
    REMINDER: reminder,
    RIDE_BOOKED: ride_booked,
    RIDE_ON_THE_WAY: ride_on_the_way,
    CANCELLED: cancelled,
}


def render(template: str, language_code: str, facts: Facts) -> str:
    """A client message's body in a language, with LINK where the link goes."""
    with language(language_code):
        return str(TEMPLATES[template](facts, Moments(language_code)))


# --- whom, when, once ------------------------------------------------------------------------


def client_channel() -> Channel:
    """Where client texts go: the SMS gateway, or the console log in the embedded demo."""
    channel = Channel(current_app.config.get("NOTIFY_CLIENT_CHANNEL", Channel.SMS))
    if channel not in (Channel.SMS, Channel.CONSOLE):
        raise ValueError("NOTIFY_CLIENT_CHANNEL must be sms or console")
    return channel


def reachable(client: Client) -> bool:
    """The client agreed to text messages and has a number they can go to."""
    return bool(
        client.sms_ok and client.anonymized_at is None and client.phone and E164.match(client.phone)
    )


def client_language(client: Client) -> str:
    if client.preferred_language in current_app.config.get("LANGUAGES", ("en",)):
        return client.preferred_language
    return current_app.config.get("BABEL_DEFAULT_LOCALE", "en")


def quiet_until(client: Client, moment: datetime) -> datetime | None:
    """The end of the client's quiet hours (city time) when `moment` falls inside them."""
    start, end = client.quiet_hours_start, client.quiet_hours_end
    if start is None or end is None or start == end:
        return None
    tz = city_tz()
    local = moment.astimezone(tz)
    now = local.time()
    # 21:00-08:00 wraps midnight; 13:00-15:00 does not.
    inside = start <= now < end if start < end else (now >= start or now < end)
    if not inside:
        return None
    day = local.date() if now < end else local.date() + timedelta(days=1)
    return datetime.combine(day, end, tzinfo=tz).astimezone(UTC)


def queue(
    referral: Referral,
    template: str,
    facts: Facts,
    *,
    dedupe_key: str,
    now: datetime | None = None,
    useful_until: datetime | None = None,
) -> Message | None:
    """Put a client message in the outbox (flush only); None when the client gets none.

    `useful_until`: a message that quiet hours would hold until then is not sent at all.
    """
    client = referral.client
    if not reachable(client):
        return None
    send_after = quiet_until(client, now or utcnow())
    if send_after is not None and useful_until is not None and send_after >= useful_until:
        return None
    lang = client_language(client)
    return enqueue(
        channel=client_channel(),
        recipient=client.phone,  # type: ignore[arg-type]  (reachable() checked it)
        template=template,
        language=lang,
        body=render(template, lang, facts),
        dedupe_key=dedupe_key,
        referral_id=referral.id,
        send_after=send_after,
    )


def _existing(keys: Iterable[str]) -> set[str]:
    keys = list(keys)
    if not keys:
        return set()
    return set(db.session.scalars(select(Message.dedupe_key).where(Message.dedupe_key.in_(keys))))


# --- triggers --------------------------------------------------------------------------------


@referral_sent.connect
def on_referral_sent(referral: Referral, **_extra: Any) -> Message | None:
    """The client's link, when the referral is sent."""
    return queue(referral, LINK_SENT, Facts.of(referral), dedupe_key=f"client:{referral.id}:sent")


@referral_closed.connect
def on_referral_closed(referral: Referral, **_extra: Any) -> Message | None:
    """A cancelled (or expired) referral the client was told about."""
    if referral.status is not Status.CANCELLED or referral.sent_at is None:
        return None
    return queue(
        referral, CANCELLED, Facts.of(referral), dedupe_key=f"client:{referral.id}:cancelled"
    )


@ride_changed.connect
def on_ride_changed(ride: Ride, action: str | None = None, **_extra: Any) -> Message | None:
    """A dispatched ride to the program: its driver assigned, then on the way."""
    if ride.leg is not Leg.OUTBOUND or not ride.mode.dispatched:
        return None
    referral = ride.referral
    if referral.status.terminal:
        return None
    facts = Facts.of(referral, window_start=ride.window_start_at, window_end=ride.window_end_at)
    if action == "assign":
        return queue(
            referral,
            RIDE_BOOKED,
            facts,
            dedupe_key=f"client:ride:{ride.id}:booked",
            useful_until=ride.window_start_at,
        )
    if action == "depart":
        return queue(
            referral,
            RIDE_ON_THE_WAY,
            facts,
            dedupe_key=f"client:ride:{ride.id}:on_the_way",
            useful_until=ride.window_end_at or utcnow() + timedelta(hours=1),
        )
    return None


def _reachable_accepted() -> Any:
    """Accepted referrals of clients who take text messages (a select to narrow further)."""
    return (
        select(Referral)
        .join(Client, Client.id == Referral.client_id)
        .where(
            Referral.status == Status.ACCEPTED,
            Client.sms_ok.is_(True),
            Client.phone.is_not(None),
            Client.anonymized_at.is_(None),
        )
    )


def appointment_notices(now: datetime | None = None) -> int:
    """Tell clients their referral was accepted or their appointment set (once per event)."""
    now = now or utcnow()
    latest = (
        select(
            ReferralEvent.referral_id.label("referral_id"),
            func.max(ReferralEvent.id).label("event_id"),
        )
        .where(
            ReferralEvent.action.in_(NOTICE_ACTIONS),
            ReferralEvent.created_at >= now - NOTICE_LOOKBACK,
        )
        .group_by(ReferralEvent.referral_id)
        .subquery()
    )
    stmt = (
        _reachable_accepted()
        .add_columns(latest.c.event_id)
        .join(latest, latest.c.referral_id == Referral.id)
        .where(or_(Referral.appointment_at.is_(None), Referral.appointment_at > now))
    )
    # Only the latest event counts: an acceptance and an appointment set in one pass make one
    # message, with the appointment.
    due = {f"client:{r.id}:appointment:{event_id}": r for r, event_id in db.session.execute(stmt)}
    queued = 0
    for key in due.keys() - _existing(due):
        referral = due[key]
        facts = Facts.of(referral, appointment_at=referral.appointment_at)
        message = queue(
            referral,
            APPOINTMENT,
            facts,
            dedupe_key=key,
            now=now,
            useful_until=referral.appointment_at,
        )
        queued += message is not None
    return queued


def reminder_hours() -> list[int]:
    """CLIENT_REMINDER_HOURS as whole hours, largest first ("24,2" -> [24, 2])."""
    hours: set[int] = set()
    for part in str(current_app.config.get("CLIENT_REMINDER_HOURS", DEFAULT_REMINDER_HOURS)).split(
        ","
    ):
        try:
            value = int(part.strip())
        except ValueError:
            if part.strip():
                log.warning("CLIENT_REMINDER_HOURS: %r is not a whole number of hours", part)
            continue
        if value > 0:
            hours.add(value)
    return sorted(hours, reverse=True)


def appointment_reminders(now: datetime | None = None) -> int:
    """Remind clients of their appointment, once per reminder hour and appointment time.

    Only the latest reminder whose time has come goes out (an appointment set three hours
    ahead gets the 2-hour reminder, not also the 24-hour one), and none whose hour began
    before the client was told of the appointment.
    """
    now = now or utcnow()
    hours = reminder_hours()
    if not hours:
        return 0
    stmt = _reachable_accepted().where(
        Referral.appointment_at > now,
        Referral.appointment_at <= now + timedelta(hours=hours[0]),
    )
    due: dict[str, tuple[Referral, datetime]] = {}
    for referral in db.session.scalars(stmt):
        left = referral.appointment_at - now  # type: ignore[operator]
        hour = min(h for h in hours if left <= timedelta(hours=h))
        at = referral.appointment_at
        key = f"client:{referral.id}:reminder:{hour}h:{at:%Y%m%dT%H%MZ}"  # type: ignore[str-format]
        due[key] = (referral, at - timedelta(hours=hour))  # type: ignore[operator]
    missing = due.keys() - _existing(due)
    if not missing:
        return 0
    told_at = dict(
        db.session.execute(
            select(ReferralEvent.referral_id, func.max(ReferralEvent.created_at))
            .where(
                ReferralEvent.referral_id.in_({due[k][0].id for k in missing}),
                ReferralEvent.action.in_(NOTICE_ACTIONS),
            )
            .group_by(ReferralEvent.referral_id)
        ).all()
    )
    queued = 0
    for key in missing:
        referral, reminder_from = due[key]
        told = told_at.get(referral.id)
        if told is not None and told > reminder_from:
            continue  # the appointment notice came inside this reminder's hours
        facts = Facts.of(referral, appointment_at=referral.appointment_at)
        message = queue(
            referral, REMINDER, facts, dedupe_key=key, now=now, useful_until=referral.appointment_at
        )
        queued += message is not None
    return queued


def queue_client_messages() -> dict[str, int] | None:
    """The worker's job: appointment notices and reminders due now."""
    now = utcnow()
    counts = {
        "appointment_notices": appointment_notices(now),
        "reminders": appointment_reminders(now),
    }
    return counts if any(counts.values()) else None


# --- at send time ----------------------------------------------------------------------------


def fill_link(item: Outgoing) -> Outgoing:
    """What the gateway receives: a freshly minted link in place of LINK (flush only).

    Checks again what may have changed since the message was queued: a client who stopped
    text messages or changed number, a referral that closed.
    """
    referral = db.session.get(Referral, item.referral_id) if item.referral_id else None
    if referral is None:
        raise PermanentFailure("the message's referral no longer exists")
    client = referral.client
    if not reachable(client) or client.phone != item.recipient:
        raise PermanentFailure("the client no longer takes text messages at this number")
    if item.template != CANCELLED and referral.status.terminal:
        raise PermanentFailure("the referral closed before the message went out")
    if LINK not in item.body:
        return item
    try:
        token = issue_link(referral, None)
    except Conflict as exc:
        raise PermanentFailure(f"no client link: {exc.message}") from exc
    return dataclasses.replace(item, body=item.body.replace(LINK, client_url(token)))


for _template in TEMPLATES:
    register_renderer(_template, fill_link)
