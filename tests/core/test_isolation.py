"""The test harness itself: what one test writes, even through commits, the next never sees."""

from sqlalchemy import func, select

from referral_hub.accounts.models import User
from referral_hub.extensions import db


def _users(app):
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(User))


def test_a_writes_and_commits(app, make_user, client):
    make_user("responder")
    assert _users(app) == 1


def test_b_sees_nothing_of_a(app):
    assert _users(app) == 0
