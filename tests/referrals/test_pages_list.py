"""The referral list: a provider's inbox, a responder's referrals, a coordinator's view."""

import re
from datetime import timedelta

from referral_hub.accounts.models import Role
from referral_hub.core.db import utcnow
from referral_hub.extensions import db
from referral_hub.notify.models import Message, MessageStatus
from referral_hub.referrals import operations as ops
from tests.conftest import counting_selects

from .conftest import load, provider


def order(html):
    return [int(n) for n in re.findall(r'href="/referrals/(\d+)"', html)]


def test_provider_inbox_puts_overdue_then_new_first(client, world, send, login_as, app):
    accepted, fresh, overdue = send(), send(), send()
    with app.test_request_context():
        ops.perform(load(accepted), "accept", provider(world))
        load(overdue).response_due_at = utcnow() - timedelta(hours=1)
        db.session.commit()
    login_as(world.staff)
    html = client.get("/referrals").get_data(as_text=True)
    assert "Inbox" in html
    assert order(html) == [overdue, fresh, accepted]
    assert "Overdue" in html and "Amina" in html
    assert "Notification pending" in html  # staff notices wait for the worker

    only_new = client.get("/referrals?status=sent").get_data(as_text=True)
    assert order(only_new) == [overdue, fresh]


def test_responder_sees_their_referrals_newest_first(client, world, send, login_as, app, make_user):
    first, second = send(), send()
    login_as(world.responder)
    html = client.get("/referrals").get_data(as_text=True)
    assert "My referrals" in html and order(html) == [second, first]
    assert "Sent, awaiting answer" in html
    client.post_form("/logout", token_from="/referrals")
    login_as(make_user(Role.RESPONDER))  # another team sees none of them
    assert order(client.get("/referrals").get_data(as_text=True)) == []


def test_coordinator_filters_and_failed_notifications(client, world, send, login_as, app):
    escalated, plain = send(), send()
    with app.test_request_context():
        load(escalated).escalated_at = utcnow()
        for message in db.session.query(Message).filter_by(referral_id=plain):
            message.status = MessageStatus.FAILED
        db.session.commit()
    login_as(world.coordinator)
    html = client.get("/referrals").get_data(as_text=True)
    assert "All referrals" in html and set(order(html)) == {escalated, plain}
    assert "Notification failed" in html
    only = client.get("/referrals?escalated=y").get_data(as_text=True)
    assert order(only) == [escalated]
    by_program = client.get(f"/referrals?program_id={world.program.id}&status=sent")
    assert set(order(by_program.get_data(as_text=True))) == {escalated, plain}
    assert order(client.get("/referrals?program_id=999999").get_data(as_text=True)) == []


def test_list_paginates_by_25(client, world, send, login_as):
    ids = [send() for _ in range(26)]
    login_as(world.responder)
    first = client.get("/referrals").get_data(as_text=True)
    assert len(order(first)) == 25 and "Page 1 of 2" in first
    second = client.get("/referrals?page=2").get_data(as_text=True)
    assert order(second) == [ids[0]]


def test_list_queries_do_not_grow_with_the_page(client, world, send, login_as, app):
    for _ in range(3):
        send()
    login_as(world.staff)
    selects = []

    def measure():
        with counting_selects(app) as statements:
            response = client.get("/referrals")
        selects.append(len(statements))
        return order(response.get_data(as_text=True))

    assert len(measure()) == 3
    for _ in range(17):
        send()
    assert len(measure()) == 20
    assert selects[0] == selects[1], selects
