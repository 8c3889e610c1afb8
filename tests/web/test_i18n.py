"""Languages: selection order, Hmong without Babel locale data, complete catalogs."""

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from babel.messages.pofile import read_po
from flask_babel import format_datetime, format_decimal, gettext, ngettext

from referral_hub.accounts.models import Role
from referral_hub.web.i18n import babel_locale_for, language

TRANSLATIONS = Path(__file__).resolve().parents[2] / "translations"
LANGUAGES = ["es", "so", "hmn"]


def catalog(lang):
    with open(TRANSLATIONS / lang / "LC_MESSAGES" / "messages.po", "rb") as fh:
        return read_po(fh, locale=None)


def translated(lang, msgid):
    return catalog(lang)[msgid].string


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_string_is_translated(lang):
    with open(TRANSLATIONS / "messages.pot", "rb") as fh:
        template = read_po(fh)
    entries = catalog(lang)
    missing = [m.id for m in template if m.id and not (entries.get(m.id) and entries[m.id].string)]
    fuzzy = [m.id for m in entries if m.id and m.fuzzy]
    assert not missing, f"{lang}: untranslated: {missing[:10]} (run make i18n-update)"
    assert not fuzzy, f"{lang}: fuzzy entries need review: {fuzzy[:10]}"


@pytest.mark.parametrize("lang", LANGUAGES)
def test_catalog_header_marks_machine_drafts(lang):
    assert catalog(lang).mime_headers  # parsed
    # The header comment survives `pybabel update` (unknown header fields do not).
    header = (TRANSLATIONS / lang / "LC_MESSAGES" / "messages.po").read_text().split('msgid ""')[0]
    assert "MACHINE-DRAFTED" in header
    assert "qualified translator" in header


@pytest.mark.parametrize("lang", ["en", *LANGUAGES])
def test_accept_language_picks_the_page_language(client, lang):
    html = client.get("/login", headers={"Accept-Language": f"{lang},en;q=0.5"}).get_data(
        as_text=True
    )
    assert f'<html lang="{lang}" dir="ltr">' in html
    expected = "Sign in" if lang == "en" else translated(lang, "Sign in")
    assert f"<h1>{expected}</h1>" in html


def test_hmong_is_served_although_babel_has_no_locale_for_it(client):
    html = client.get("/login", headers={"Accept-Language": "hmn"}).get_data(as_text=True)
    assert translated("hmn", "Sign in") != "Sign in"
    assert f"<h1>{translated('hmn', 'Sign in')}</h1>" in html


def test_hmong_dates_and_numbers_use_the_fallback_locale(app):
    moment = datetime(2026, 3, 5, 15, 30, tzinfo=UTC)
    with app.test_request_context():
        assert str(babel_locale_for("hmn")) == app.config["FORMAT_FALLBACK_LOCALE"]
        with language("hmn"):
            assert gettext("Sign in") == translated("hmn", "Sign in")
            assert "2026" in format_datetime(moment, "medium")
            assert format_decimal(1234.5) == "1,234.5"
        with language("es"):
            assert format_decimal(1234.5) == "1.234,5"
            assert "mar" in format_datetime(moment, "medium")


def test_hmong_plurals_use_its_one_form(app):
    # The first plural entry whose only placeholders are the number itself.
    plural = next(
        m
        for m in catalog("hmn")
        if isinstance(m.id, tuple | list)
        and set(re.findall(r"%\((\w+)\)", m.id[1])) <= {"num", "count"}
    )
    singular, plural_id = plural.id
    expected = plural.string[0] if isinstance(plural.string, tuple | list) else plural.string
    with app.test_request_context(), language("hmn"):
        for n in (1, 5):
            assert ngettext(singular, plural_id, n, count=n) == expected % {"num": n, "count": n}


def test_regional_variant_falls_back_to_the_language(client):
    html = client.get("/login", headers={"Accept-Language": "es-MX"}).get_data(as_text=True)
    assert '<html lang="es"' in html


def test_unsupported_language_falls_back_to_english(client):
    html = client.get("/login", headers={"Accept-Language": "fr-FR"}).get_data(as_text=True)
    assert '<html lang="en"' in html


def test_user_preference_beats_the_browser(client, login_as):
    login_as(Role.RESPONDER, locale="so")
    html = client.get("/", headers={"Accept-Language": "es"}).get_data(as_text=True)
    assert '<html lang="so"' in html


def test_switcher_sets_the_language_and_returns_to_the_page(client):
    token = client.csrf("/login")
    response = client.post("/language", data={"lang": "hmn", "next": "/login", "csrf_token": token})
    assert response.status_code == 302 and response.headers["Location"] == "/login"
    html = client.get("/login", headers={"Accept-Language": "es"}).get_data(as_text=True)
    assert '<html lang="hmn"' in html


def test_switcher_refuses_unknown_languages_and_off_site_targets(client):
    token = client.csrf("/login")
    response = client.post(
        "/language", data={"lang": "xx", "next": "https://evil.example/", "csrf_token": token}
    )
    assert response.headers["Location"] == "/"
    assert '<html lang="en"' in client.get("/login").get_data(as_text=True)
