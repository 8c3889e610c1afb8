"""Link security beyond the uniform 404: the second check on a sensitive program's page (birth
year, or the phone's last four digits), its lockout after failures with an event for staff,
and the rate limit per token beside the one per address."""

import pytest
from sqlalchemy import select

from referral_hub.core.security import token_hash
from referral_hub.directory.models import Program
from referral_hub.extensions import db
from referral_hub.notify.models import Message
from referral_hub.portal import operations as ops
from referral_hub.portal import views
from referral_hub.portal.models import ClientLink
from referral_hub.referrals.models import ReferralEvent
from tests.portal.conftest import form_fields, pass_check


def body(response) -> str:
    return response.get_data(as_text=True)


@pytest.fixture
def sensitive(app, world):
    with app.test_request_context():
        db.session.get(Program, world.program.id).sensitive = True
        db.session.commit()


def live_link(app, token: str) -> ClientLink:
    with app.app_context():
        return db.session.scalar(select(ClientLink).where(ClientLink.id == _link_id(token)))


def _link_id(token: str) -> int:
    return db.session.scalar(
        select(ClientLink.id).where(ClientLink.token_hash == token_hash(token))
    )


def session_of(app, client) -> dict:
    cookie = client.get_cookie(app.config["SESSION_COOKIE_NAME"])
    return app.session_interface.get_signing_serializer(app).loads(cookie.value)


# --- the check -------------------------------------------------------------------------------


def test_a_sensitive_program_asks_the_birth_year_first(app, client, link, sensitive):
    _, token = link()
    response = client.get(f"/c/{token}?lang=en")
    html = body(response)
    assert response.status_code == 200
    assert "The year you were born" in html
    for secret in ("Youth Housing", "1 Main St", "March 4", 'class="code"'):
        assert secret not in html
    # The calendar file and the answers wait for the check too.
    assert "BEGIN:VCALENDAR" not in body(client.get(f"/c/{token}/appointment.ics"))
    fields = form_fields(html)
    refused = client.post(f"/c/{token}/confirm", data={**fields, "version": "1"})
    assert refused.status_code == 400


def test_the_right_answer_opens_the_page_and_the_session_keeps_only_the_link_id(
    app, client, link, sensitive
):
    _, token = link()
    html = body(client.get(f"/c/{token}"))
    wrong = client.post(f"/c/{token}/check?lang=en", data={**form_fields(html), "answer": "1991"})
    assert wrong.status_code == 422 and "does not match" in body(wrong)
    assert live_link(app, token).failed_checks == 1
    right = pass_check(client, token, " 1990 ")
    assert right.status_code == 303 and right.headers["Location"].startswith(f"/c/{token}")
    assert "Youth Housing" in body(client.get(f"/c/{token}?lang=en"))
    assert live_link(app, token).failed_checks == 0
    kept = session_of(app, client)
    assert kept["client_checks"] == [live_link(app, token).id]
    assert "1990" not in str(kept)


def test_without_a_birth_year_it_asks_the_phones_last_four_digits(app, client, link, sensitive):
    _, token = link(birth_year=None, phone="+16125550123")
    assert "last four digits" in body(client.get(f"/c/{token}?lang=en"))
    assert pass_check(client, token, "0124").status_code == 422
    assert pass_check(client, token, "0123").status_code == 303
    assert "Youth Housing" in body(client.get(f"/c/{token}?lang=en"))


def test_nothing_to_ask_or_not_sensitive_means_no_check(app, client, link, world):
    _, plain = link()
    assert "Youth Housing" in body(client.get(f"/c/{plain}?lang=en"))
    with app.test_request_context():
        db.session.get(Program, world.program.id).sensitive = True
        db.session.commit()
    _, nothing_known = link(birth_year=None, phone=None)
    assert "Youth Housing" in body(client.get(f"/c/{nothing_known}?lang=en"))
    with app.app_context():
        assert ops.check_kind(ops.link_for_token(nothing_known)) is None


def test_a_passed_check_holds_for_that_link_only(app, client, link, sensitive):
    _, first = link()
    _, second = link()
    assert pass_check(client, first, "1990").status_code == 303
    assert "The year you were born" in body(client.get(f"/c/{second}?lang=en"))


def test_five_failures_lock_the_link_with_an_event_and_a_message(
    app, client, link, sensitive, world
):
    referral_id, token = link()
    not_found = client.get("/c/c_unknown")
    answers = [pass_check(client, token, str(year)) for year in range(2000, 2005)]
    assert [r.status_code for r in answers] == [422, 422, 422, 422, 404]
    assert answers[-1].data == not_found.data
    locked = live_link(app, token)
    assert locked.locked_at is not None and locked.failed_checks == 5
    # Locked answers like any link that does not work, even to the right answer.
    assert client.get(f"/c/{token}").data == not_found.data
    assert client.post(f"/c/{token}/check", data={"answer": "1990"}).status_code in (400, 404)
    with app.app_context():
        events = db.session.scalars(
            select(ReferralEvent).where(
                ReferralEvent.referral_id == referral_id,
                ReferralEvent.action == "client_check_locked",
            )
        ).all()
        assert len(events) == 1 and events[0].actor_label == "system"
        messages = db.session.scalars(
            select(Message).where(
                Message.referral_id == referral_id, Message.template == "referral_client_locked"
            )
        ).all()
        assert [m.recipient_user_id for m in messages] == [world.responder.id]
        assert "1990" not in messages[0].body and "200" not in messages[0].body


def test_the_failure_limit_comes_from_config(app, client, link, sensitive, monkeypatch):
    monkeypatch.setitem(app.config, "CLIENT_CHECK_MAX_FAILURES", 2)
    _, token = link()
    assert pass_check(client, token, "1").status_code == 422
    assert pass_check(client, token, "2").status_code == 404


def test_a_locked_link_does_not_touch_other_links(app, client, link, sensitive, monkeypatch):
    monkeypatch.setitem(app.config, "CLIENT_CHECK_MAX_FAILURES", 1)
    _, locked = link()
    _, other = link()
    assert pass_check(client, locked, "1").status_code == 404
    assert pass_check(client, other, "1990").status_code == 303


# --- rate limits -----------------------------------------------------------------------------


def test_each_token_is_rate_limited_whatever_the_address(app, client, link, monkeypatch):
    monkeypatch.setitem(app.config, "CLIENT_TOKEN_RATE_LIMIT", "3 per minute")
    _, token = link()
    _, other = link()
    codes = [
        client.get(f"/c/{token}", environ_base={"REMOTE_ADDR": f"10.0.1.{n}"}).status_code
        for n in range(3)
    ]
    assert codes == [200, 200, 200]
    limited = client.get(f"/c/{token}", environ_base={"REMOTE_ADDR": "10.0.2.1"})
    assert limited.status_code == 429
    assert limited.headers["Cache-Control"] == "no-store"
    html = body(limited)
    assert "portal.css" in html and "app.css" not in html
    # The calendar file and the answers share the token's count.
    assert client.get(f"/c/{token}/appointment.ics").status_code == 429
    assert client.post(f"/c/{token}/confirm").status_code in (400, 429)
    # Another token from the same address is not held back.
    assert client.get(f"/c/{other}", environ_base={"REMOTE_ADDR": "10.0.2.1"}).status_code == 200


def test_page_calendar_and_answers_share_one_count_per_token(app, client, link, monkeypatch):
    monkeypatch.setitem(app.config, "CLIENT_TOKEN_RATE_LIMIT", "3 per minute")
    _, token = link()
    html = body(client.get(f"/c/{token}"))
    assert client.get(f"/c/{token}/appointment.ics").status_code == 200
    fields = form_fields(html)
    assert client.post(f"/c/{token}/confirm", data=fields).status_code == 303
    assert client.get(f"/c/{token}").status_code == 429


def test_the_limiter_keys_on_the_tokens_hash(app, link):
    _, token = link()
    with app.test_request_context(f"/c/{token}"):
        key = views._token_key()
    assert key == f"client-link:{token_hash(token)}"
