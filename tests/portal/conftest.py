"""The referral world (see tests/referrals/conftest.py) and a helper that issues a client link
for an accepted referral with an appointment."""

import re
from datetime import UTC, datetime

import pytest

from referral_hub.extensions import db
from referral_hub.portal import operations as ops
from referral_hub.referrals import operations as referral_ops
from referral_hub.referrals.models import Referral
from tests.referrals.conftest import provider, send, world  # noqa: F401 (fixtures)

# A Tuesday morning in Minneapolis, far enough ahead to stay in the future.
APPOINTMENT = datetime(2031, 3, 4, 16, 30, tzinfo=UTC)  # 10:30 in Chicago (CST)


CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')
VERSION_RE = re.compile(r'name="version" value="(\d+)"')


def form_fields(html: str) -> dict[str, str]:
    """The hidden fields every form of the client's page carries."""
    fields = {"csrf_token": CSRF_RE.search(html).group(1)}
    version = VERSION_RE.search(html)
    if version:
        fields["version"] = version.group(1)
    return fields


def pass_check(client, token: str, answer: str):
    """Answer the second check of a sensitive program's page."""
    html = client.get(f"/c/{token}").get_data(as_text=True)
    return client.post(f"/c/{token}/check", data={**form_fields(html), "answer": answer})


def new_link(app, referral_id: int, **kwargs) -> str:
    """Issue a link outside any request and return its token."""
    with app.test_request_context():
        token = ops.create_link(db.session.get(Referral, referral_id), None, **kwargs)
        db.session.commit()
        return token


@pytest.fixture
def link(app, world, send):  # noqa: F811
    """link(appointment=..., **client_fields) -> (referral_id, token) of an accepted referral."""

    def do(appointment: datetime | None = APPOINTMENT, **client_fields) -> tuple[int, str]:
        referral_id = send()
        with app.test_request_context():
            referral = db.session.get(Referral, referral_id)
            for name, value in client_fields.items():
                setattr(referral.client, name, value)
            referral_ops.perform(referral, "accept", provider(world), appointment_at=appointment)
            db.session.commit()
        return referral_id, new_link(app, referral_id)

    return do
