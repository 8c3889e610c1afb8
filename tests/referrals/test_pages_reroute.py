"""Re-routing a declined referral, and the client record with who has seen it."""

from datetime import time

import pytest
from sqlalchemy import select

from referral_hub.accounts.models import Organization
from referral_hub.directory import operations as directory
from referral_hub.extensions import db
from referral_hub.referrals import operations as ops
from referral_hub.referrals.models import Consent, Referral, Status

from .conftest import load, provider


@pytest.fixture
def second_program(app, world):
    with app.test_request_context():
        org = db.session.get(Organization, world.provider.id)
        program = directory.create_program(org, name="Family Shelter", categories=["housing"])
        site = directory.create_site(
            org,
            name="East office",
            address_1="9 Lake St",
            postal_code="55407",
            latitude=44.95,
            longitude=-93.24,
        )
        directory.offer_at(program, site, weekly=[(d, time(9), time(17)) for d in range(7)])
        db.session.commit()
        return program.id, site.id


@pytest.fixture
def declined(app, world, send):
    rid = send(answers={"age": 20})
    with app.test_request_context():
        ops.perform(load(rid), "decline", provider(world), reason_code="no_capacity")
        db.session.commit()
    return rid


def test_reroute_after_a_decline(client, world, declined, second_program, login_as, app):
    program_id, site_id = second_program
    login_as(world.responder)
    page = client.get(f"/referrals/{declined}").get_data(as_text=True)
    assert f'href="/referrals/{declined}/reroute"' in page

    listing = client.get(f"/referrals/{declined}/reroute").get_data(as_text=True)
    assert "Family Shelter" in listing
    assert f"program_id={world.program.id}" not in listing  # not the one that declined

    ask = client.get(f"/referrals/{declined}/reroute?program_id={program_id}")
    html = ask.get_data(as_text=True)
    assert ask.status_code == 200
    assert f"with Family Shelter ({world.provider.name}) to get services" in html

    unticked = client.post_form(
        f"/referrals/{declined}/reroute",
        {"program_id": program_id, "consent_method": "verbal"},
        token_from=f"/referrals/{declined}/reroute",
    )
    assert unticked.status_code == 422
    with app.app_context():
        assert (
            db.session.scalar(select(Referral).where(Referral.rerouted_from_id == declined)) is None
        )

    sent = client.post_form(
        f"/referrals/{declined}/reroute",
        {"program_id": program_id, "consent_method": "signed", "consent": "y"},
        token_from=f"/referrals/{declined}/reroute",
    )
    assert sent.status_code == 302, sent.get_data(as_text=True)
    with app.app_context():
        new = db.session.scalar(select(Referral).where(Referral.rerouted_from_id == declined))
        assert sent.headers["Location"].endswith(f"/referrals/{new.id}")
        assert (new.program_id, new.site_id, new.client_id, new.status) == (
            program_id,
            site_id,
            world.client.id,
            Status.SENT,
        )
        assert db.session.get(Consent, new.consent_id).method == "signed"
        new_id = new.id
    forward = client.get(f"/referrals/{new_id}").get_data(as_text=True)
    assert f"Re-routed from #{declined}" in forward
    back = client.get(f"/referrals/{declined}").get_data(as_text=True)
    assert f"Re-routed to #{new_id}" in back
    assert f'href="/referrals/{declined}/reroute"' not in back
    again = client.get(f"/referrals/{declined}/reroute")
    assert again.status_code == 302 and again.headers["Location"].endswith(f"/{new_id}")


def test_reroute_needs_the_referring_side_and_a_closed_referral(
    client, world, send, declined, second_program, login_as
):
    login_as(world.staff)
    assert client.get(f"/referrals/{declined}/reroute").status_code == 403
    client.post_form("/logout", token_from="/referrals")
    login_as(world.responder)
    open_one = send()
    response = client.get(f"/referrals/{open_one}/reroute")
    assert response.status_code == 302
    assert client.get(f"/referrals/{declined}/reroute?program_id=999999").status_code == 404


def test_coordinator_sees_who_has_seen_the_record(client, world, send, login_as, app):
    rid = send()
    login_as(world.staff)
    client.get(f"/referrals/{rid}")
    client.post_form("/logout", token_from="/referrals")
    login_as(world.coordinator)
    page = client.get(f"/clients/{world.client.id}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "Who has seen this record" in html
    assert world.staff.name in html and world.provider.name in html
    assert world.coordinator.name in html  # this opening is logged too
    assert f'href="/referrals/{rid}"' in html and "Youth Housing" in html


def test_client_record_is_for_its_organization_and_coordinators(client, world, send, login_as):
    send()
    login_as(world.staff)  # sees the person through the referral, not the record
    assert client.get(f"/clients/{world.client.id}").status_code == 403
    client.post_form("/logout", token_from="/referrals")
    login_as(world.responder)
    html = client.get(f"/clients/{world.client.id}").get_data(as_text=True)
    assert "Amina" in html and "Who has seen this record" in html
