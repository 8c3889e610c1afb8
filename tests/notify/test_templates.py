"""Templates: every one renders in every language, only from whitelisted parameters."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from flask_babel import format_datetime
from sqlalchemy import func, select

from referral_hub.accounts.models import User
from referral_hub.extensions import db
from referral_hub.notify.models import Message
from referral_hub.notify.operations import notify_users
from referral_hub.notify.templates import TEMPLATES, UnknownTemplate, render
from referral_hub.referrals.lifecycle import REASON_TITLES
from referral_hub.web.i18n import language

DUE = datetime(2026, 3, 4, 19, 30, tzinfo=UTC)
PARAMS = {
    "program_name": "Northside Housing Navigation",
    "referral_id": 42,
    "due_at": DUE,
    "priority": "urgent",
    "reason": "no_capacity",
    "hours": 24,
}


@pytest.mark.parametrize("template", sorted(TEMPLATES))
@pytest.mark.parametrize("lang", ["en", "es", "so", "hmn"])
def test_every_template_renders_in_every_language(app, template, lang):
    with app.test_request_context():
        rendered = render(template, lang, PARAMS)
    assert rendered.subject and "#42" in rendered.subject
    assert "Northside Housing Navigation" in rendered.body
    assert rendered.body.endswith(f"{app.config['BASE_URL']}/referrals/42")


def test_new_referral_names_program_priority_deadline_and_link(app):
    with app.test_request_context():
        body = render("referral_new", "en", PARAMS).body
        due = format_datetime(DUE, "short")
    assert "A new referral for Northside Housing Navigation" in body
    assert "Priority: Urgent" in body
    assert f"Please respond by {due}." in body
    assert "/referrals/42" in body


def test_escalation_names_the_hours_and_the_reason_titles_are_translated(app):
    with app.test_request_context():
        escalated = render("referral_escalated", "en", PARAMS).body
        declined = render("referral_declined", "en", PARAMS).body
    assert "did not answer referral #42 within 24 hours" in escalated
    assert "Reason: No capacity" in declined


def test_a_reason_title_given_in_one_language_reaches_each_recipient_in_theirs(app):
    # Callers may pass a title rendered in the actor's language; it is mapped back to its
    # code. (Until the catalogs translate reason titles, the Spanish title is the English one.)
    with app.test_request_context():
        with language("es"):
            spanish_title = str(REASON_TITLES["no_capacity"])
        body = render("referral_declined", "en", {**PARAMS, "reason": spanish_title}).body
    assert "Reason: No capacity" in body


def test_client_data_passed_by_mistake_never_reaches_a_message(app):
    leaked = {
        **PARAMS,
        "client_name": "Maria Lopez",
        "display_name": "Maria Lopez",
        "phone": "+16125550199",
        "note": "lives under the 10th Ave bridge",
        # Free text where a reason code belongs is dropped too.
        "reason": "Maria Lopez said she would rather not",
    }
    with app.test_request_context():
        for template in TEMPLATES:
            rendered = render(template, "en", leaked)
            text = f"{rendered.subject}\n{rendered.body}"
            for secret in ("Maria", "Lopez", "5550199", "bridge"):
                assert secret not in text, (template, secret)


def test_unknown_template_and_missing_params_are_refused(app):
    with app.test_request_context():
        with pytest.raises(UnknownTemplate):
            render("referral_teleported", "en", PARAMS)
        with pytest.raises(ValueError, match="program_name"):
            render("referral_new", "en", {"referral_id": 1})
        with pytest.raises(ValueError, match="aware"):
            render("referral_new", "en", {**PARAMS, "due_at": datetime(2026, 3, 4, 19, 30)})


def test_each_user_reads_in_their_own_language(app, make_user):
    english = make_user("provider_staff", locale="en")
    spanish = make_user("provider_staff", locale="es")
    hmong = make_user("provider_staff", locale="hmn")
    nobody_knows = make_user("provider_staff", locale="xx")
    with app.test_request_context():
        messages = notify_users(
            [english, spanish, hmong, nobody_knows],
            "referral_new",
            params=PARAMS,
            referral_id=None,
            dedupe_key="t:lang",
        )
        db.session.commit()
        by_user = {m.recipient_user_id: m for m in messages}
        with language("es"):
            due_es = format_datetime(DUE, "short")
        with language("en"):
            due_en = format_datetime(DUE, "short")
    assert len(messages) == 4
    assert by_user[spanish.id].language == "es"
    assert by_user[english.id].language == "en"
    assert by_user[hmong.id].language == "hmn"
    assert by_user[nobody_knows.id].language == "en"  # the app's default
    for message in messages:
        assert "Northside Housing Navigation" in message.body
    # Dates are formatted for the reader's locale even before the text is translated.
    assert due_es != due_en
    assert due_es in by_user[spanish.id].body
    assert due_en in by_user[english.id].body
    # Hmong has no Babel locale data: the fallback locale formats its dates.
    assert due_en in by_user[hmong.id].body
    assert by_user[spanish.id].body != by_user[english.id].body


def test_inactive_users_are_skipped(app, make_user):
    active = make_user("coordinator")
    gone = make_user("coordinator")
    with app.test_request_context():
        db.session.get(User, gone.id).is_active = False
        db.session.commit()
        gone = db.session.get(User, gone.id)
        messages = notify_users(
            [active, gone],
            "referral_escalated",
            params=PARAMS,
            referral_id=None,
            dedupe_key="t:inactive",
        )
        recipients = [m.recipient_user_id for m in messages]
        db.session.commit()
        count = db.session.scalar(select(func.count()).select_from(Message))
    assert recipients == [active.id]
    assert count == 1
