"""The appointment as an iCalendar file (RFC 5545): behind the same link checks and headers as
the page, UTC times, CRLF line endings, lines folded at 75 octets, a neutral summary when the
page is neutral."""

from datetime import UTC, datetime

from referral_hub.directory.models import Program, Site
from referral_hub.extensions import db
from referral_hub.portal import operations as ops
from referral_hub.referrals.models import Referral
from tests.portal.conftest import pass_check


def ics_path(token: str, lang: str = "en") -> str:
    return f"/c/{token}/appointment.ics?lang={lang}"


def unfold(text: str) -> list[str]:
    return text.replace("\r\n ", "").split("\r\n")


def properties(text: str) -> dict[str, str]:
    found = {}
    for line in unfold(text):
        if ":" in line:
            name, value = line.split(":", 1)
            found.setdefault(name, value)
    return found


def test_the_calendar_file_holds_the_appointment_in_utc(client, link):
    referral_id, token = link()
    response = client.get(ics_path(token))
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/calendar; charset=utf-8"
    assert 'filename="appointment.ics"' in response.headers["Content-Disposition"]
    for name, value in (
        ("Referrer-Policy", "no-referrer"),
        ("Cache-Control", "no-store"),
        ("X-Robots-Tag", "noindex"),
    ):
        assert response.headers[name] == value
    text = response.get_data(as_text=True)
    assert text.startswith("BEGIN:VCALENDAR\r\n") and text.endswith("END:VCALENDAR\r\n")
    assert "\n" not in text.replace("\r\n", "")  # CRLF only
    found = properties(text)
    assert found["VERSION"] == "2.0" and found["PRODID"]
    assert found["BEGIN"] == "VCALENDAR" and "BEGIN:VEVENT" in unfold(text)
    assert found["UID"].startswith("referral-") and "@" in found["UID"]
    with client.application.app_context():
        uuid = db.session.get(Referral, referral_id).uuid
    assert found["UID"].startswith(f"referral-{uuid}@")  # no guessable number in it
    assert found["DTSTART"] == "20310304T163000Z"
    assert found["DTEND"] == "20310304T173000Z"
    assert datetime.strptime(found["DTSTAMP"], "%Y%m%dT%H%M%SZ")
    assert found["SUMMARY"] == "Youth Housing"
    assert found["LOCATION"] == "Main office\\, 1 Main St\\, Minneapolis MN 55415"


def test_the_page_links_to_the_calendar_file(client, link):
    _, token = link()
    html = client.get(f"/c/{token}?lang=es").get_data(as_text=True)
    assert f'href="{ics_path(token, "es")}"' in html


def test_a_neutral_page_gives_a_neutral_summary(app, client, link, world):
    with app.test_request_context():
        db.session.get(Program, world.program.id).sensitive = True
        db.session.commit()
    _, token = link(neutral_sender=True)
    assert pass_check(client, token, "1990").status_code == 303
    text = client.get(ics_path(token)).get_data(as_text=True)
    found = properties(text)
    assert found["SUMMARY"] == "Your appointment"
    assert "Youth Housing" not in text and "Main office" not in text
    assert found["LOCATION"] == "1 Main St\\, Minneapolis MN 55415"


def test_long_lines_fold_at_75_octets_without_splitting_a_character(app, client, link, world):
    with app.test_request_context():
        site = db.session.get(Site, world.site.id)
        site.address_1 = "Ĉambro 12; " + "Naĵa strato, " * 8 + "ĥ"
        db.session.get(Program, world.program.id).name = "Programa de viviendas — " * 4
        db.session.commit()
    _, token = link()
    raw = client.get(ics_path(token)).data
    lines = raw.split(b"\r\n")
    assert max(len(line) for line in lines) <= 75
    assert any(line.startswith(b" ") for line in lines)
    for line in lines:
        line.decode()  # each physical line is whole UTF-8
    found = properties(raw.decode())
    assert found["LOCATION"].startswith("Main office\\, Ĉambro 12\\; Naĵa strato\\, ")
    assert found["SUMMARY"].count("Programa de viviendas") == 4


def test_folding_and_escaping_rules(app):
    line = "SUMMARY:" + "é" * 80
    folded = ops.ics_fold(line)
    assert all(len(part.encode()) <= 75 for part in folded.split("\r\n"))
    assert folded.replace("\r\n ", "") == line
    assert ops.ics_fold("SHORT:x") == "SHORT:x"
    assert ops.ics_text("a,b;c\\d\ne") == "a\\,b\\;c\\\\d\\ne"


def test_no_appointment_or_no_link_answers_404(app, client, link):
    _, without = link(appointment=None)
    not_found = client.get("/c/c_unknown")
    for path in (ics_path(without), "/c/c_unknown/appointment.ics"):
        response = client.get(path)
        assert response.status_code == 404 and response.data == not_found.data


def test_the_calendar_file_changes_nothing_and_grows_its_sequence(app, client, link, world):
    referral_id, token = link()
    with app.app_context():
        version = db.session.get(Referral, referral_id).version
    first = properties(client.get(ics_path(token)).get_data(as_text=True))
    assert first["SEQUENCE"] == str(version)
    with app.app_context():
        assert db.session.get(Referral, referral_id).version == version
    with app.test_request_context():
        referral = db.session.get(Referral, referral_id)
        referral.appointment_at = datetime(2031, 3, 5, 15, 0, tzinfo=UTC)
        db.session.commit()
    second = properties(client.get(ics_path(token)).get_data(as_text=True))
    assert int(second["SEQUENCE"]) > int(first["SEQUENCE"])
    assert second["UID"] == first["UID"] and second["DTSTART"] == "20310305T150000Z"
