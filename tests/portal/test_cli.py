"""`flask portal link REFERRAL_ID`: a fresh link whose full URL is the last word printed."""

from sqlalchemy import select

from referral_hub.extensions import db
from referral_hub.portal import operations as ops
from referral_hub.referrals import operations as referral_ops
from referral_hub.referrals.models import Referral, ReferralEvent
from tests.referrals.conftest import referrer


def run(app, *args: str):
    return app.test_cli_runner().invoke(args=["portal", "link", *args])


def test_prints_a_url_that_opens_the_clients_page(app, client, send):
    referral_id = send()
    result = run(app, str(referral_id))
    assert result.exit_code == 0, result.output
    url = result.output.split()[-1]
    base = app.config["BASE_URL"]
    assert url.startswith(f"{base}/c/c_")
    page = client.get(url.removeprefix(base))
    assert page.status_code == 200
    assert "Youth Housing" in page.get_data(as_text=True)
    with app.app_context():
        actions = db.session.scalars(
            select(ReferralEvent.action).where(ReferralEvent.referral_id == referral_id)
        ).all()
        assert actions[-1] == "client_link"


def test_older_links_keep_working_unless_revoked(app, send):
    referral_id = send()
    first = run(app, str(referral_id)).output.split()[-1].rsplit("/", 1)[1]
    second = run(app, str(referral_id)).output.split()[-1].rsplit("/", 1)[1]
    with app.app_context():
        assert ops.link_for_token(first) and ops.link_for_token(second)
    third = run(app, str(referral_id), "--revoke").output.split()[-1].rsplit("/", 1)[1]
    with app.app_context():
        assert ops.link_for_token(first) is None and ops.link_for_token(second) is None
        assert ops.link_for_token(third) is not None


def test_unknown_referral_is_an_error(app):
    result = run(app, "999999")
    assert result.exit_code != 0
    assert "No referral #999999" in result.output
    assert "/c/" not in result.output


def test_cancelled_referral_gets_no_link(app, world, send):
    referral_id = send()
    with app.test_request_context():
        referral = db.session.get(Referral, referral_id)
        referral_ops.perform(referral, "cancel", referrer(world), reason_code="client_declined")
        db.session.commit()
    result = run(app, str(referral_id))
    assert result.exit_code != 0
    assert "/c/" not in result.output
