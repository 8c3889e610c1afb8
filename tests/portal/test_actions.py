"""The client's answers on /c/<token>: confirm, ask for another time, cancel. Each is a POST
with CSRF and the referral's version; a replayed, stale or altered form answers 400 and
changes nothing; only answers that fit the referral's state are offered; staff see them."""

import re
from datetime import timedelta

from sqlalchemy import func, select

from referral_hub.core.db import utcnow
from referral_hub.extensions import db
from referral_hub.notify.models import Message
from referral_hub.portal import operations as ops
from referral_hub.portal.models import ClientLink
from referral_hub.referrals import operations as referral_ops
from referral_hub.referrals.models import Referral, ReferralEvent, Status
from tests.conftest import counting_selects
from tests.portal.conftest import APPOINTMENT, form_fields
from tests.referrals.conftest import provider


def body(response) -> str:
    return response.get_data(as_text=True)


def open_page(client, token: str, lang: str = "en") -> tuple[str, dict[str, str]]:
    html = body(client.get(f"/c/{token}?lang={lang}"))
    return html, form_fields(html)


def answer(client, token: str, action: str, fields: dict, **data):
    return client.post(f"/c/{token}/{action}?lang=en", data={**fields, **data})


def state(referral_id: int) -> tuple:
    """What an answer could change: the referral row, its events, its messages, its links."""
    referral = db.session.get(Referral, referral_id)
    db.session.refresh(referral)
    events = db.session.scalars(
        select(ReferralEvent.action).where(ReferralEvent.referral_id == referral_id)
    ).all()
    messages = db.session.scalar(
        select(func.count(Message.id)).where(Message.referral_id == referral_id)
    )
    revoked = db.session.scalars(
        select(ClientLink.revoked_at).where(ClientLink.referral_id == referral_id)
    ).all()
    return referral.status, referral.version, referral.reason_code, events, messages, revoked


def events_of(referral_id: int, action: str) -> list[ReferralEvent]:
    return list(
        db.session.scalars(
            select(ReferralEvent).where(
                ReferralEvent.referral_id == referral_id, ReferralEvent.action == action
            )
        )
    )


# --- what the page offers --------------------------------------------------------------------


def test_an_accepted_referral_offers_every_answer_as_a_csrf_form(client, link):
    _, token = link()
    html, fields = open_page(client, token)
    for action in ("confirm", "reschedule", "cancel"):
        assert f'action="/c/{token}/{action}?lang=en"' in html
    assert html.count('name="csrf_token"') == 3 and html.count('name="version"') == 3
    assert fields["csrf_token"] and fields["version"]
    assert "I will be there" in html and "Ask for another time" in html
    assert 'value="client_declined"' in html and 'value="expired"' not in html
    assert "<script" not in html


def test_only_the_answers_that_fit_the_state(app, client, link, send):
    # Sent, not yet accepted: the client may only cancel.
    referral_id = send()
    with app.test_request_context():
        token = ops.create_link(db.session.get(Referral, referral_id), None)
        db.session.commit()
    html = body(client.get(f"/c/{token}?lang=en"))
    assert "/cancel?" in html and "/confirm?" not in html and "/reschedule?" not in html
    # An appointment in the past cannot be confirmed any more.
    _, past = link(appointment=utcnow() + timedelta(minutes=10))
    with app.test_request_context():
        db.session.get(ClientLink, ops.link_for_token(past).id).referral.appointment_at = (
            utcnow() - timedelta(hours=1)
        )
        db.session.commit()
    html = body(client.get(f"/c/{past}?lang=en"))
    assert "/confirm?" not in html and "/reschedule?" in html


def test_a_closed_referral_offers_nothing_and_sets_no_cookie(app, client, link, world):
    referral_id, token = link()
    with app.test_request_context():
        referral = db.session.get(Referral, referral_id)
        referral_ops.perform(referral, "no_show", provider(world))
        db.session.commit()
    response = client.get(f"/c/{token}?lang=en")
    html = body(response)
    assert response.status_code == 200
    assert "<form" not in html and "Add to my calendar" not in html
    assert "Set-Cookie" not in response.headers


def test_the_lifecycle_decides_when_the_client_may_cancel(app, link):
    referral_id, _ = link()
    with app.test_request_context():
        referral = db.session.get(Referral, referral_id)
        referral.status = Status.HANDED_OFF  # the lifecycle has no client cancel from here
        assert ops.client_actions(referral, None) == ()
        db.session.rollback()


# --- confirm ---------------------------------------------------------------------------------


def test_confirm_notes_the_answer_tells_staff_and_thanks_the_client(app, client, link, world):
    referral_id, token = link()
    _, fields = open_page(client, token)
    response = answer(client, token, "confirm", fields)
    assert response.status_code == 303
    assert response.headers["Location"] == f"/c/{token}?lang=en&done=confirm"
    with app.app_context():
        (event,) = events_of(referral_id, "client_confirmed")
        assert event.actor_label == "client" and event.actor_user_id is None
        assert event.data == {"appointment_at": APPOINTMENT.isoformat()}
        assert db.session.get(Referral, referral_id).version == int(fields["version"]) + 1
        recipients = set(
            db.session.scalars(
                select(Message.recipient_user_id).where(
                    Message.referral_id == referral_id,
                    Message.template == "referral_client_confirmed",
                )
            )
        )
        assert recipients == {world.staff.id, world.responder.id}
        assert ops.link_for_token(token).last_used_at is not None
    html = body(client.get(response.headers["Location"]))
    assert "Thank you. We told the program." in html
    assert "You said you will be there." in html
    assert "/confirm?" not in html  # answered: the button is gone


def test_the_thank_you_is_in_the_clients_language(client, link):
    _, token = link()
    _, fields = open_page(client, token, "es")
    response = client.post(f"/c/{token}/confirm?lang=es", data=fields)
    assert response.headers["Location"] == f"/c/{token}?lang=es&done=confirm"
    html = body(client.get(response.headers["Location"]))
    assert '<html lang="es"' in html and '<p class="notice" role="status">' in html


def test_a_replayed_confirm_answers_400_and_changes_nothing(app, client, link):
    referral_id, token = link()
    _, fields = open_page(client, token)
    assert answer(client, token, "confirm", fields).status_code == 303
    with app.app_context():
        before = state(referral_id)
    replay = answer(client, token, "confirm", fields)
    assert replay.status_code == 400
    html = body(replay)
    assert "Nothing was changed" in html and "out of date" in html
    assert "portal.css" in html and "app.css" not in html  # the client's small layout
    assert f'href="/c/{token}?lang=en"' in html
    assert replay.headers["Cache-Control"] == "no-store"
    with app.app_context():
        assert state(referral_id) == before


def test_a_form_from_before_another_answer_is_refused(app, client, link):
    """The page shown before an answer is out of date: its other forms no longer count."""
    referral_id, token = link()
    _, fields = open_page(client, token)
    assert answer(client, token, "confirm", fields).status_code == 303
    with app.app_context():
        before = state(referral_id)
    stale = answer(client, token, "cancel", fields, reason="client_declined")
    assert stale.status_code == 400
    with app.app_context():
        assert state(referral_id) == before


def test_a_tampered_version_answers_400_and_changes_nothing(app, client, link):
    referral_id, token = link()
    _, fields = open_page(client, token)
    with app.app_context():
        before = state(referral_id)
    for version in (str(int(fields["version"]) + 1), "0", "x", ""):
        response = answer(client, token, "confirm", {**fields, "version": version})
        assert response.status_code == 400, version
    with app.app_context():
        assert state(referral_id) == before


def test_a_missing_or_wrong_csrf_token_answers_400_in_the_clients_layout(app, client, link):
    referral_id, token = link()
    _, fields = open_page(client, token)
    with app.app_context():
        before = state(referral_id)
    without = client.post(f"/c/{token}/confirm?lang=es", data={"version": fields["version"]})
    wrong = answer(client, token, "confirm", {**fields, "csrf_token": "forged"})
    for response in (without, wrong):
        assert response.status_code == 400
        html = body(response)
        assert "portal.css" in html and "app.css" not in html
        assert response.headers["Referrer-Policy"] == "no-referrer"
    assert '<html lang="es"' in body(without)
    # A fresh browser (no session) with a token copied from another one fails the same way.
    fresh = client.application.test_client()
    assert fresh.post(f"/c/{token}/confirm", data=fields).status_code == 400
    with app.app_context():
        assert state(referral_id) == before


def test_the_responders_screen_keeps_the_staff_error_page(client, world, send):
    referral_id = send()
    client.login(world.responder.email)
    response = client.post(f"/referrals/{referral_id}/client-link")
    assert response.status_code == 400 and "portal.css" not in body(response)


def test_unknown_tokens_and_actions_answer_the_same_404(client, link):
    _, token = link()
    _, fields = open_page(client, token)
    not_found = client.get("/c/c_nothing")
    for path in (f"/c/{token}/accept", "/c/c_nothing/confirm"):
        response = client.post(path, data=fields)
        assert response.status_code == 404 and response.data == not_found.data


# --- ask for another time --------------------------------------------------------------------


def test_ask_for_another_time_stores_structured_preferences(app, client, link, world):
    referral_id, token = link()
    html, fields = open_page(client, token)
    days = re.findall(r'<option value="(\d{4}-\d\d-\d\d)">', html)
    assert len(days) == 3 * ops.PREFERENCE_DAYS
    first, second = days[0], days[3]
    response = answer(
        client,
        token,
        "reschedule",
        fields,
        day_1=first,
        part_1="morning",
        day_2="",
        part_2="evening",
        day_3=second,
        part_3="",
    )
    assert response.status_code == 303
    assert response.headers["Location"].endswith("done=reschedule")
    with app.app_context():
        (event,) = events_of(referral_id, "client_reschedule_requested")
        assert event.data == {
            "preferences": [
                {"date": first, "part": "morning"},
                {"date": None, "part": "evening"},
                {"date": second, "part": None},
            ]
        }
        templates = db.session.scalars(
            select(Message.template).where(Message.referral_id == referral_id)
        ).all()
        assert templates.count("referral_client_reschedule") == 2
    html = body(client.get(response.headers["Location"]))
    assert "You asked for another time." in html
    assert "/reschedule?" not in html and "/confirm?" in html


def test_any_time_is_an_answer_too(app, client, link):
    referral_id, token = link()
    _, fields = open_page(client, token)
    assert answer(client, token, "reschedule", fields).status_code == 303
    with app.app_context():
        assert events_of(referral_id, "client_reschedule_requested")[0].data == {"preferences": []}


def test_a_day_or_time_not_offered_answers_400(app, client, link):
    referral_id, token = link()
    _, fields = open_page(client, token)
    with app.app_context():
        before = state(referral_id)
    far = (utcnow() + timedelta(days=60)).date().isoformat()
    for data in ({"day_1": far}, {"part_1": "midnight"}, {"day_2": "tomorrow"}):
        assert answer(client, token, "reschedule", fields, **data).status_code == 400, data
    with app.app_context():
        assert state(referral_id) == before


def test_preferences_are_checked_where_the_rule_lives(app):
    with app.app_context():
        days = ops.preference_days()
        assert len(days) == ops.PREFERENCE_DAYS and days[0] == ops.city_today() + timedelta(1)
        pairs = [(days[0].isoformat(), "morning"), (days[0].isoformat(), "morning"), (None, None)]
        assert ops.preferences_from(pairs) == [ops.Preference(days[0], "morning")]


def test_a_new_appointment_from_the_program_answers_the_client(app, client, link, world):
    referral_id, token = link()
    _, fields = open_page(client, token)
    answer(client, token, "reschedule", fields, part_1="afternoon")
    with app.test_request_context():
        referral = db.session.get(Referral, referral_id)
        new_time = APPOINTMENT + timedelta(days=1)
        referral_ops.perform(referral, "schedule", provider(world), appointment_at=new_time)
        db.session.commit()
    html = body(client.get(f"/c/{token}?lang=en"))
    assert "You asked for another time." not in html
    assert "/confirm?" in html and "/reschedule?" in html


# --- cancel ----------------------------------------------------------------------------------


def test_cancel_with_a_reason_cancels_and_thanks_the_client(app, client, link, world):
    referral_id, token = link()
    _, fields = open_page(client, token)
    response = answer(client, token, "cancel", fields, reason="referred_elsewhere")
    assert response.status_code == 303
    assert response.headers["Location"] == "/c/cancelled?lang=en"
    with app.app_context():
        referral = db.session.get(Referral, referral_id)
        assert referral.status == Status.CANCELLED
        assert referral.reason_code == "referred_elsewhere"
        (event,) = events_of(referral_id, "cancel")
        assert event.actor_label == "client"
        assert db.session.scalar(
            select(func.count(Message.id)).where(
                Message.referral_id == referral_id,
                Message.template == "referral_cancelled",
                Message.recipient_user_id == world.responder.id,
            )
        )
        before = state(referral_id)
    thanks = client.get(response.headers["Location"])
    assert thanks.status_code == 200 and "Thank you for telling us." in body(thanks)
    # The link is revoked: the page and a replay answer the uniform 404; nothing changes.
    assert client.get(f"/c/{token}").status_code == 404
    replay = answer(client, token, "cancel", fields, reason="referred_elsewhere")
    assert replay.status_code == 404
    with app.app_context():
        assert state(referral_id) == before


def test_cancel_without_a_reason_shows_the_form_again(app, client, link):
    referral_id, token = link()
    _, fields = open_page(client, token)
    with app.app_context():
        before = state(referral_id)
    response = answer(client, token, "cancel", fields)
    assert response.status_code == 422
    html = body(response)
    assert "Choose a reason." in html and "<details open>" in html
    with app.app_context():
        assert state(referral_id) == before


def test_cancel_with_a_reason_not_offered_to_clients_answers_400(app, client, link):
    referral_id, token = link()
    _, fields = open_page(client, token)
    with app.app_context():
        before = state(referral_id)
    assert answer(client, token, "cancel", fields, reason="expired").status_code == 400
    with app.app_context():
        assert state(referral_id) == before
        assert set(ops.CLIENT_CANCEL_REASONS) <= set(ops.CANCEL_REASONS)


# --- what staff see --------------------------------------------------------------------------


def test_the_inbox_and_the_responders_list_show_the_clients_answer(client, link, world):
    _, confirmed = link()
    _, asked = link()
    for token, action, data in (
        (confirmed, "confirm", {}),
        (asked, "reschedule", {"part_1": "evening"}),
    ):
        _, fields = open_page(client, token)
        assert answer(client, token, action, fields, **data).status_code == 303
    for user in (world.staff, world.responder):
        client.login(user.email)
        html = body(client.get("/referrals?status=all"))
        assert html.count("The client confirmed") == 1
        assert "The client asked for another time</strong>:" in html
        assert "any day (evening)" in html
        client.post("/logout", data={"csrf_token": client.csrf("/account")})


def test_client_answers_cost_one_query_for_the_whole_list(app, client, link, world):
    from referral_hub.referrals.views_queries import client_answers

    ids = [link()[0] for _ in range(3)]
    with app.app_context(), counting_selects(app) as statements:
        answers = client_answers(ids)
    assert answers == {} and len(statements) == 1
