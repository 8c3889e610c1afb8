"""Referring a person from the results page, as a responder in the field meets it."""

import json

from sqlalchemy import func, select

from referral_hub.extensions import db
from referral_hub.referrals.models import Client, Consent, Referral, ReferralEvent, Status
from tests.conftest import csrf_from


def start(client, world, answers=None):
    """What the results page's "Refer" button posts."""
    return client.post_form(
        "/referrals/new",
        {
            "step": "start",
            "program_id": world.program.id,
            "site_id": world.site.id,
            "answers": json.dumps(
                answers if answers is not None else {"age": 20, "language": "es"}
            ),
        },
        token_from="/referrals",
    )


def person(world, html, **overrides):
    data = {
        "csrf_token": csrf_from(html),
        "step": "send",
        "program_id": world.program.id,
        "site_id": world.site.id,
        "answers": json.dumps({"age": 20, "language": "es"}),
        "display_name": "Marisol",
        "phone": "612 555 0199",
        "preferred_language": "es",
        "birth_year": "1985",
        "sms_ok": "y",
        "consent_method": "verbal",
        "consent": "y",
        "priority": "urgent",
        "note": "Needs a bed tonight",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def counts(app):
    with app.app_context():
        return (
            db.session.scalar(select(func.count(Client.id))),
            db.session.scalar(select(func.count(Referral.id))),
            db.session.scalar(select(func.count(Consent.id))),
        )


def test_refer_from_results_to_a_sent_referral(client, world, login_as, app):
    login_as(world.responder)
    page = start(client, world)
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "Youth Housing" in html and world.provider.name in html
    assert f"with Youth Housing ({world.provider.name}) to get services" in html
    assert '<option selected value="es">' in html  # the screened language is pre-filled
    assert "This is required" not in html  # start shows the form; it checks nothing

    response = client.post("/referrals/new", data=person(world, html))
    assert response.status_code == 302, response.get_data(as_text=True)
    with app.app_context():
        referral = db.session.scalar(select(Referral).order_by(Referral.id.desc()))
        assert response.headers["Location"].endswith(f"/referrals/{referral.id}")
        assert referral.status == Status.SENT and referral.priority == "urgent"
        assert referral.answers == {"age": 20, "language": "es"}
        assert referral.site_id == world.site.id and referral.note == "Needs a bed tonight"
        person_ = referral.client
        assert (
            person_.display_name,
            person_.phone,
            person_.preferred_language,
            person_.birth_year,
            person_.sms_ok,
        ) == ("Marisol", "+16125550199", "es", 1985, True)
        assert person_.organization_id == world.team.id
        assert referral.consent.method == "verbal" and referral.consent.client_id == person_.id
        events = db.session.scalars(
            select(ReferralEvent.action).where(ReferralEvent.referral_id == referral.id)
        ).all()
        assert events == ["send"]
    shown = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "The referral is sent to Youth Housing." in shown


def test_consent_unticked_keeps_input_and_creates_nothing(client, world, login_as, app):
    login_as(world.responder)
    html = start(client, world).get_data(as_text=True)
    before = counts(app)
    response = client.post("/referrals/new", data=person(world, html, consent=None))
    body = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "tick this box to record their consent" in body
    assert 'value="Marisol"' in body and 'value="612 555 0199"' in body
    assert counts(app) == before


def test_bad_phone_is_a_field_error_and_rolls_back(client, world, login_as, app):
    login_as(world.responder)
    html = start(client, world).get_data(as_text=True)
    before = counts(app)
    response = client.post("/referrals/new", data=person(world, html, phone="12"))
    body = response.get_data(as_text=True)
    assert response.status_code == 422
    assert 'id="phone-error"' in body and "area code" in body
    assert 'value="Marisol"' in body
    assert counts(app) == before


def test_duplicate_hint_offered_then_record_reused(client, world, login_as, app):
    login_as(world.responder)
    html = start(client, world).get_data(as_text=True)
    before = counts(app)
    hint = client.post(
        "/referrals/new",
        data=person(world, html, display_name="AMINA", birth_year="1990", phone=""),
    )
    body = hint.get_data(as_text=True)
    assert hint.status_code == 200
    assert "Possible match: Amina, born 1990 — use this record" in body
    assert "No, a new person" in body and 'value="AMINA"' in body
    assert counts(app) == before  # offered, nothing created yet

    response = client.post(
        "/referrals/new",
        data=person(
            world,
            body,
            display_name="AMINA",
            birth_year="1990",
            phone="",
            client_choice=str(world.client.id),
        ),
    )
    assert response.status_code == 302
    with app.app_context():
        referral = db.session.scalar(select(Referral).order_by(Referral.id.desc()))
        assert referral.client_id == world.client.id
    clients, referrals, _consents = counts(app)
    assert (clients, referrals) == (before[0], before[1] + 1)


def test_duplicate_hint_new_person_creates_one(client, world, login_as, app):
    login_as(world.responder)
    html = start(client, world).get_data(as_text=True)
    before = counts(app)
    response = client.post(
        "/referrals/new",
        data=person(world, html, display_name="Amina", birth_year="1990", client_choice="new"),
    )
    assert response.status_code == 302
    with app.app_context():
        referral = db.session.scalar(select(Referral).order_by(Referral.id.desc()))
        assert referral.client_id != world.client.id
    assert counts(app)[0] == before[0] + 1


def test_emergency_override_is_offered_to_coordinators_only(client, world, login_as):
    login_as(world.responder)
    assert "Emergency override" not in start(client, world).get_data(as_text=True)
    client.post_form("/logout", token_from="/referrals")
    login_as(world.coordinator)
    html = start(client, world).get_data(as_text=True)
    assert "Emergency override" in html
    missing = client.post(
        "/referrals/new",
        data=person(world, html, consent=None, consent_method="emergency_override"),
    )
    assert missing.status_code == 422 and "needs a reason" in missing.get_data(as_text=True)
    sent = client.post(
        "/referrals/new",
        data=person(
            world,
            html,
            consent=None,
            consent_method="emergency_override",
            override_reason="Unconscious, needs shelter bed",
        ),
    )
    assert sent.status_code == 302


def test_tampered_answers_and_unknown_program(client, world, login_as):
    login_as(world.responder)
    bad = start(client, world, answers={"age": "old"})
    assert bad.status_code == 422 and "screening answers" in bad.get_data(as_text=True)
    missing = client.post_form(
        "/referrals/new",
        {"step": "start", "program_id": 999999, "answers": "{}"},
        token_from="/referrals",
    )
    assert missing.status_code == 404


def test_providers_cannot_refer_and_csrf_is_required(client, world, login_as):
    login_as(world.responder)
    response = client.post("/referrals/new", data={"step": "start", "program_id": world.program.id})
    assert response.status_code == 400
    client.post_form("/logout", token_from="/referrals")
    login_as(world.staff)
    assert start(client, world).status_code == 403
