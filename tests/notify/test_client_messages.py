"""Text messages to clients: each kind once, in the client's language, no case details,
quiet hours, no SMS without consent, and a link minted only when the message is sent."""

from __future__ import annotations

import re
from datetime import UTC, datetime, time, timedelta
from functools import cache
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import pytest
from babel.dates import format_skeleton, format_time
from babel.messages.pofile import read_po
from sqlalchemy import select

from referral_hub.accounts.models import User
from referral_hub.core.db import utcnow
from referral_hub.core.security import token_hash
from referral_hub.directory.models import Program
from referral_hub.extensions import db
from referral_hub.notify import client_messages as cm
from referral_hub.notify.models import Message, MessageStatus
from referral_hub.notify.worker import jobs as worker_jobs
from referral_hub.portal.models import ClientLink
from referral_hub.referrals import operations as referral_ops
from referral_hub.referrals.models import Client, Referral, ReferralEvent
from referral_hub.transport import booking as booking_ops
from referral_hub.transport import operations as rides
from referral_hub.transport.models import Ride
from tests.referrals.conftest import provider, referrer, send, world  # noqa: F401 (fixtures)
from tests.transport.conftest import dispatcher_actor, fleet, next_weekday_at  # noqa: F401

from .helpers import deliver

CHICAGO = ZoneInfo("America/Chicago")


@pytest.fixture(autouse=True)
def sms_gateway_configured(app, monkeypatch):
    """These tests are about texts sent by SMS (the embedded default logs them instead)."""
    monkeypatch.setitem(app.config, "NOTIFY_CLIENT_CHANNEL", "sms")


PICKUP = "44.9483,-93.2348"  # a few km south of the test site
PHONE = "+16125550123"  # the world's client, normalised
KINDS_ALL = [
    cm.LINK_SENT,
    cm.APPOINTMENT,
    cm.REMINDER,
    cm.RIDE_BOOKED,
    cm.RIDE_ON_THE_WAY,
    cm.CANCELLED,
]
# What every_trigger() queues, in order: the reminders 24 hours and 2 hours ahead.
QUEUED = [
    cm.LINK_SENT,
    cm.APPOINTMENT,
    cm.REMINDER,
    cm.REMINDER,
    cm.RIDE_BOOKED,
    cm.RIDE_ON_THE_WAY,
    cm.CANCELLED,
]
TRANSLATIONS = Path(__file__).resolve().parents[2] / "translations"


def set_client(app, w, **fields) -> None:
    with app.test_request_context():
        client = db.session.get(Client, w.client.id)
        for name, value in fields.items():
            setattr(client, name, value)
        db.session.commit()


def set_program(app, w, **fields) -> None:
    with app.test_request_context():
        program = db.session.get(Program, w.program.id)
        for name, value in fields.items():
            setattr(program, name, value)
        db.session.commit()


def run(app, job, now=None) -> int:
    """One of the worker's client-message jobs, committed."""
    with app.app_context():
        count = job(now)
        db.session.commit()
        return count


def client_messages(app, referral_id: int | None = None) -> list[Message]:
    with app.app_context():
        stmt = select(Message).where(Message.template.like("client\\_%", escape="\\"))
        if referral_id is not None:
            stmt = stmt.where(Message.referral_id == referral_id)
        messages = list(db.session.scalars(stmt.order_by(Message.id)))
        for message in messages:
            db.session.expunge(message)
        return messages


def accept(app, w, referral_id: int, appointment: datetime | None) -> None:
    with app.test_request_context():
        referral = db.session.get(Referral, referral_id)
        referral_ops.perform(referral, "accept", provider(w), appointment_at=appointment)
        db.session.commit()


def every_trigger(app, w, f, send_referral) -> tuple[int, datetime, int]:
    """Send, accept with an appointment, both reminders, a ride assigned and on its way, then
    cancel; each job and trigger twice. Returns (referral id, appointment, ride id)."""
    appointment = next_weekday_at(11, days_ahead=3)
    referral_id = send_referral()
    accept(app, w, referral_id, appointment)
    for _ in range(2):
        run(app, cm.appointment_notices)
        run(app, cm.appointment_reminders, appointment - timedelta(hours=23))
        run(app, cm.appointment_reminders, appointment - timedelta(minutes=90))
    with app.test_request_context():
        result = booking_ops.book_ride(
            db.session.get(Referral, referral_id),
            db.session.get(User, w.responder.id),
            booking_ops.Booking(place=PICKUP),
            now=next_weekday_at(10, days_ahead=3),
        )
        ride = result.ride
        dispatcher = dispatcher_actor(f)
        rides.perform_ride(ride, "assign", dispatcher, driver_id=f.driver.id)
        # Assigning again (another vehicle) must not text the client again.
        rides.perform_ride(ride, "assign", dispatcher, driver_id=f.driver.id, vehicle_id=f.car.id)
        rides.perform_ride(ride, "depart", dispatcher)
        db.session.commit()
        ride_id = ride.id
    with app.test_request_context():
        referral = db.session.get(Referral, referral_id)
        referral_ops.perform(referral, "cancel", referrer(w), reason_code="client_declined")
        db.session.commit()
    return referral_id, appointment, ride_id


# --- which messages, how often, in which language -------------------------------------------


def test_without_a_gateway_client_texts_go_to_the_console_log(app, world, fleet, send, monkeypatch):  # noqa: F811
    monkeypatch.setitem(app.config, "NOTIFY_CLIENT_CHANNEL", "console")
    set_client(app, world, sms_ok=True)
    referral_id = send()
    assert {m.channel for m in client_messages(app, referral_id)} == {"console"}


@pytest.mark.parametrize("lang", ["en", "es", "so", "hmn"])
def test_each_kind_is_queued_once_in_the_clients_language(app, world, fleet, send, lang):  # noqa: F811
    set_client(app, world, sms_ok=True, preferred_language=lang)
    referral_id, appointment, ride_id = every_trigger(app, world, fleet, send)
    messages = client_messages(app, referral_id)
    assert [m.template for m in messages] == QUEUED
    assert {m.language for m in messages} == {lang}
    assert {m.recipient for m in messages} == {PHONE}
    assert {m.channel for m in messages} == {"sms"}
    by_kind = {m.template: m for m in messages}
    # Dates and times in the client's language (Hmong: the fallback locale), city time.
    locale = "en_US" if lang in ("en", "hmn") else lang
    day = format_skeleton("MMMEd", appointment, tzinfo=CHICAGO, locale=locale)
    at = format_time(appointment, "short", tzinfo=CHICAGO, locale=locale)
    assert day in by_kind[cm.APPOINTMENT].body and at in by_kind[cm.APPOINTMENT].body
    assert day in by_kind[cm.REMINDER].body and at in by_kind[cm.REMINDER].body
    with app.app_context():
        ride = db.session.get(Ride, ride_id)
        start = format_time(ride.window_start_at, "short", tzinfo=CHICAGO, locale=locale)
        end = format_time(ride.window_end_at, "short", tzinfo=CHICAGO, locale=locale)
    assert start in by_kind[cm.RIDE_BOOKED].body and end in by_kind[cm.RIDE_BOOKED].body
    if lang == "en":
        assert f"Your ride is booked, pickup between {start} and {end}." in (
            by_kind[cm.RIDE_BOOKED].body
        )
    # Both reminders went out, each once, with its own key.
    with app.app_context():
        keys = db.session.scalars(
            select(Message.dedupe_key).where(
                Message.referral_id == referral_id, Message.template == cm.REMINDER
            )
        ).all()
    assert sorted(k.split(":")[3] for k in keys) == ["24h", "2h"]


@cache
def catalog(lang: str):
    with open(TRANSLATIONS / lang / "LC_MESSAGES" / "messages.po", "rb") as fh:
        return read_po(fh)


# Each kind as the program-named client reads it, and the sentence it is made of.
SAMPLES = {
    cm.LINK_SENT: ({}, "Your referral to %(program)s was sent. Follow it here: %(link)s"),
    cm.APPOINTMENT: (
        {"appointment_at": datetime(2031, 3, 4, 16, 30, tzinfo=UTC)},
        "%(program)s expects you on %(day)s at %(time)s. Details: %(link)s",
    ),
    cm.REMINDER: (
        {"appointment_at": datetime(2031, 3, 4, 16, 30, tzinfo=UTC)},
        "Reminder: %(program)s expects you on %(day)s at %(time)s. Details: %(link)s",
    ),
    cm.RIDE_BOOKED: (
        {
            "window_start": datetime(2031, 3, 4, 16, 5, tzinfo=UTC),
            "window_end": datetime(2031, 3, 4, 16, 25, tzinfo=UTC),
        },
        "Your ride is booked, pickup between %(start)s and %(end)s. Details: %(link)s",
    ),
    cm.RIDE_ON_THE_WAY: ({}, "Your driver is on the way. Details: %(link)s"),
    cm.CANCELLED: (
        {},
        "Your referral to %(program)s was cancelled. "
        "Contact the person who referred you with any questions.",
    ),
}


@pytest.mark.parametrize("lang", ["es", "so", "hmn"])
@pytest.mark.parametrize("kind", KINDS_ALL)
def test_every_kind_reads_differently_from_english(app, kind, lang):
    moments, msgid = SAMPLES[kind]
    facts = cm.Facts(program="Youth Housing", neutral=False, **moments)
    with app.test_request_context():
        english = cm.render(kind, "en", facts)
        body = cm.render(kind, lang, facts)
    rides_only = kind in (cm.RIDE_BOOKED, cm.RIDE_ON_THE_WAY)
    assert ("Youth Housing" in body) is not rides_only  # a ride's messages never name it
    assert (cm.LINK in body) is (kind != cm.CANCELLED)  # a cancelled referral has no page
    entry = catalog(lang).get(msgid)
    assert entry and entry.string, f"{lang}: not translated: {msgid!r} (make i18n-update)"
    assert body != english


def test_ride_times_are_city_time_and_hmong_uses_the_fallback_locale(app):
    facts = cm.Facts(
        program=None,
        neutral=False,
        window_start=datetime(2031, 3, 4, 16, 5, tzinfo=UTC),  # 10:05 in Minneapolis
        window_end=datetime(2031, 3, 4, 16, 25, tzinfo=UTC),
    )
    with app.test_request_context():
        english = cm.render(cm.RIDE_BOOKED, "en", facts)
        hmong = cm.render(cm.RIDE_BOOKED, "hmn", facts)
        spanish = cm.render(cm.RIDE_BOOKED, "es", facts)
    assert "Your ride is booked, pickup between 10:05\u202fAM and 10:25\u202fAM." in english
    assert "10:05\u202fAM" in hmong and "10:25\u202fAM" in hmong
    assert "10:05" in spanish and "AM" not in spanish


# --- privacy ----------------------------------------------------------------------------------


def test_no_case_details_for_a_sensitive_program(app, world, fleet, send):  # noqa: F811
    set_program(app, world, name="Safe Harbor Victim Advocacy", sensitive=True)
    set_client(app, world, sms_ok=True, preferred_language="en", display_name="Amina Warsame")
    referral_id, _, _ = every_trigger(app, world, fleet, send)
    messages = client_messages(app, referral_id)
    assert [m.template for m in messages] == QUEUED
    for message in messages:
        assert "Safe Harbor" not in message.body
        assert "Victim" not in message.body
        assert "Amina" not in message.body and "Warsame" not in message.body
        assert "Main St" not in message.body  # nor the site's address
    by_kind = {m.template: m.body for m in messages}
    assert by_kind[cm.APPOINTMENT].startswith("Your appointment is on ")


def test_a_neutral_sender_reads_only_that_there_is_an_update(app, world, fleet, send):  # noqa: F811
    set_program(app, world, name="Youth Housing Program")
    set_client(app, world, sms_ok=True, preferred_language="en", neutral_sender=True)
    referral_id, _, _ = every_trigger(app, world, fleet, send)
    messages = client_messages(app, referral_id)
    assert [m.template for m in messages] == QUEUED
    for message in messages:
        assert "Youth Housing" not in message.body and "Amina" not in message.body
        if message.template == cm.CANCELLED:
            assert message.body == "Your appointment was cancelled."
        else:
            assert message.body == f"You have an update. Open your link: {cm.LINK}"


def test_a_named_program_is_named(app, world, fleet, send):  # noqa: F811
    set_client(app, world, sms_ok=True, preferred_language="en")
    referral_id, _, _ = every_trigger(app, world, fleet, send)
    by_kind = {m.template: m.body for m in client_messages(app, referral_id)}
    assert (
        by_kind[cm.LINK_SENT]
        == f"Your referral to Youth Housing was sent. Follow it here: {cm.LINK}"
    )
    assert "Amina" not in "".join(by_kind.values())


# --- consent ---------------------------------------------------------------------------------


def test_no_sms_without_consent_or_without_a_phone(app, world, fleet, send):  # noqa: F811
    # The world's client has a phone but never agreed to text messages.
    referral_id, _, _ = every_trigger(app, world, fleet, send)
    assert client_messages(app, referral_id) == []
    set_client(app, world, sms_ok=True, phone=None)
    referral_id, _, _ = every_trigger(app, world, fleet, send)
    assert client_messages(app, referral_id) == []
    # Staff still hear about the referral.
    with app.app_context():
        assert db.session.scalar(select(Message.id).where(Message.referral_id == referral_id))


def test_a_draft_cancelled_before_sending_texts_nobody(app, world):  # noqa: F811
    set_client(app, world, sms_ok=True)
    with app.test_request_context():
        referral = Referral(
            client_id=world.client.id,
            program_id=world.program.id,
            provider_org_id=world.provider.id,
            referring_org_id=world.team.id,
            referring_user_id=world.responder.id,
        )
        db.session.add(referral)
        db.session.flush()
        referral_ops.perform(referral, "cancel", referrer(world), reason_code="other")
        db.session.commit()
        referral_id = referral.id
    assert client_messages(app, referral_id) == []


# --- when ------------------------------------------------------------------------------------


def test_quiet_hours_hold_a_message_until_they_end(app, world, send, sms_gateway):  # noqa: F811
    local_now = utcnow().astimezone(CHICAGO)
    start = (local_now - timedelta(hours=1)).time().replace(second=0, microsecond=0)
    end_at = (local_now + timedelta(hours=2)).replace(second=0, microsecond=0)
    set_client(app, world, sms_ok=True, quiet_hours_start=start, quiet_hours_end=end_at.time())
    referral_id = send()
    [message] = client_messages(app, referral_id)
    assert message.next_attempt_at == end_at.astimezone(UTC)
    deliver(app, now=utcnow())
    assert sms_gateway.posts == []
    deliver(app, now=end_at.astimezone(UTC))
    assert [p.form["To"] for p in sms_gateway.posts] == [PHONE]


@pytest.mark.parametrize(
    ("start", "end", "local", "until"),
    [
        (time(21), time(8), datetime(2031, 3, 4, 23, 30), datetime(2031, 3, 5, 8)),
        (time(21), time(8), datetime(2031, 3, 4, 6, 0), datetime(2031, 3, 4, 8)),
        (time(21), time(8), datetime(2031, 3, 4, 8, 0), None),
        (time(21), time(8), datetime(2031, 3, 4, 12, 0), None),
        (time(13), time(15), datetime(2031, 3, 4, 14, 0), datetime(2031, 3, 4, 15)),
        (time(13), time(15), datetime(2031, 3, 4, 16, 0), None),
        (None, time(8), datetime(2031, 3, 4, 6, 0), None),
    ],
)
def test_quiet_hours_end_in_city_time(app, start, end, local, until):
    client = Client(quiet_hours_start=start, quiet_hours_end=end)
    with app.app_context():
        got = cm.quiet_until(client, local.replace(tzinfo=CHICAGO))
    assert got == (until.replace(tzinfo=CHICAGO).astimezone(UTC) if until else None)


def test_a_reminder_quiet_hours_would_hold_past_the_appointment_is_dropped(app, world, send):  # noqa: F811
    appointment = next_weekday_at(11, days_ahead=3)  # 11:00 in Minneapolis
    set_client(app, world, sms_ok=True, quiet_hours_start=time(8), quiet_hours_end=time(12))
    referral_id = send()
    accept(app, world, referral_id, appointment)
    assert run(app, cm.appointment_reminders, appointment - timedelta(minutes=90)) == 0
    # 11:10 the day before: held until the quiet hours end at 12:00, still in time.
    assert run(app, cm.appointment_reminders, appointment - timedelta(hours=23, minutes=50)) == 1
    [reminder] = [m for m in client_messages(app, referral_id) if m.template == cm.REMINDER]
    assert reminder.next_attempt_at == appointment - timedelta(hours=23)


def test_an_appointment_set_late_gets_only_the_nearest_reminder(app, world, send):  # noqa: F811
    set_client(app, world, sms_ok=True)
    appointment = utcnow() + timedelta(hours=3)
    referral_id = send()
    accept(app, world, referral_id, appointment)
    assert run(app, cm.appointment_notices) == 1
    # The appointment notice has just said when: no 24-hour reminder on top of it.
    assert run(app, cm.appointment_reminders) == 0
    assert run(app, cm.appointment_reminders, appointment - timedelta(minutes=100)) == 1
    kinds = [m.template for m in client_messages(app, referral_id)]
    assert kinds == [cm.LINK_SENT, cm.APPOINTMENT, cm.REMINDER]


def test_accepting_without_a_time_then_scheduling_tells_both(app, world, send):  # noqa: F811
    set_client(app, world, sms_ok=True, preferred_language="en")
    referral_id = send()
    accept(app, world, referral_id, None)
    assert run(app, cm.appointment_notices) == 1
    appointment = next_weekday_at(11, days_ahead=3)
    with app.test_request_context():
        referral = db.session.get(Referral, referral_id)
        referral_ops.perform(referral, "schedule", provider(world), appointment_at=appointment)
        db.session.commit()
    assert run(app, cm.appointment_notices) == 1
    assert run(app, cm.appointment_notices) == 0
    bodies = [m.body for m in client_messages(app, referral_id) if m.template == cm.APPOINTMENT]
    assert "will contact you about a time" in bodies[0]
    assert bodies[1].startswith("Youth Housing expects you on ")


def test_the_worker_pass_runs_the_client_jobs(app, world, send):  # noqa: F811
    assert cm.queue_client_messages in worker_jobs()
    set_client(app, world, sms_ok=True)
    referral_id = send()
    accept(app, world, referral_id, next_weekday_at(11, days_ahead=3))
    with app.app_context():
        assert cm.queue_client_messages() == {"appointment_notices": 1, "reminders": 0}
        db.session.commit()


# --- the link, minted when the message is sent ------------------------------------------------


def test_the_link_is_minted_at_send_time_and_never_stored(app, client, world, send, sms_gateway):  # noqa: F811
    set_client(app, world, sms_ok=True, preferred_language="en")
    referral_id = send()
    assert deliver(app) >= 1
    [post] = [p for p in sms_gateway.posts if p.form["To"] == PHONE]
    match = re.search(r"(https?://\S+/c/([A-Za-z0-9_-]+))", post.form["Body"])
    assert match, post.form["Body"]
    url, token = match.groups()
    assert post.form["Body"] == f"Your referral to Youth Housing was sent. Follow it here: {url}"
    with app.app_context():
        bodies = db.session.scalars(select(Message.body)).all()
        assert not [b for b in bodies if token in b or token_hash(token) in b]
        [message] = db.session.scalars(
            select(Message).where(Message.referral_id == referral_id, Message.channel == "sms")
        ).all()
        assert message.status == MessageStatus.SENT and cm.LINK in message.body
        link = db.session.scalar(
            select(ClientLink).where(ClientLink.token_hash == token_hash(token))
        )
        assert link is not None and link.referral_id == referral_id
        events = db.session.scalars(
            select(ReferralEvent).where(
                ReferralEvent.referral_id == referral_id, ReferralEvent.action == "client_link"
            )
        ).all()
        assert [e.actor_label for e in events] == ["system"]
    page = client.get(urlsplit(url).path)
    assert page.status_code == 200
    assert "Youth Housing" in page.get_data(as_text=True)


def test_a_message_for_a_closed_referral_is_not_sent(app, world, send, sms_gateway):  # noqa: F811
    set_client(app, world, sms_ok=True, preferred_language="en")
    referral_id = send()
    with app.test_request_context():
        referral = db.session.get(Referral, referral_id)
        referral_ops.perform(referral, "cancel", referrer(world), reason_code="client_declined")
        db.session.commit()
    deliver(app)
    # Only the cancellation reached the phone; the link would point at a revoked page.
    assert [p.form["Body"] for p in sms_gateway.posts if p.form["To"] == PHONE] == [
        "Your referral to Youth Housing was cancelled. "
        "Contact the person who referred you with any questions."
    ]
    by_kind = {m.template: m for m in client_messages(app, referral_id)}
    assert by_kind[cm.LINK_SENT].status == MessageStatus.FAILED
    assert "closed" in by_kind[cm.LINK_SENT].last_error
    assert by_kind[cm.CANCELLED].status == MessageStatus.SENT
