"""Language selection: the language of the text, kept apart from the locale that formats.

Babel has no locale data for some languages we serve (Hmong, `hmn`). Text comes from the
`translations/<language>` catalog whatever Babel knows; dates and numbers are formatted with
the language's Babel locale when there is one, otherwise with FORMAT_FALLBACK_LOCALE.
"""

from __future__ import annotations

from contextlib import contextmanager
from functools import cached_property

from babel import Locale, UnknownLocaleError
from babel.support import NullTranslations, Translations
from flask import current_app, g, has_app_context, has_request_context, request, session
from flask_babel import Babel, Domain, refresh
from flask_login import current_user

# Plural rules of languages Babel has no locale data for: `pybabel compile` then writes the
# default two-form rule into the .mo, and gettext would look for a second form that Hmong
# (one form) does not have, falling back to English.
PLURAL_RULES = {"hmn": lambda n: 0}

# Names shown in the language switcher, each in its own language.
LANGUAGE_NAMES = {
    "en": "English",
    "es": "Español",
    "so": "Soomaali",
    "hmn": "Hmoob",
}


def supported_languages() -> tuple[str, ...]:
    return tuple(current_app.config["LANGUAGES"])


def select_language() -> str:
    """Pick the request's language: explicit choice, user preference, then Accept-Language."""
    languages = supported_languages()
    if has_request_context():
        chosen = session.get("lang")
        if chosen in languages:
            return chosen
        if getattr(current_user, "is_authenticated", False) and current_user.locale in languages:
            return current_user.locale
        match = request.accept_languages.best_match(languages)
        if match:
            return match
    return current_app.config["BABEL_DEFAULT_LOCALE"]


def current_language() -> str:
    """The language of the text in this context (request, CLI or worker)."""
    if not has_app_context():
        return "en"
    if "language" not in g:
        g.language = select_language()
    return g.language


def babel_locale_for(language: str) -> Locale:
    """Babel locale that formats dates and numbers for a language, with a fallback."""
    try:
        return Locale.parse(language)
    except (UnknownLocaleError, ValueError):
        return Locale.parse(current_app.config["FORMAT_FALLBACK_LOCALE"])


def text_direction(language: str) -> str:
    """'rtl' or 'ltr' for the page's dir attribute."""
    try:
        return Locale.parse(language).text_direction
    except (UnknownLocaleError, ValueError):
        return "ltr"


@contextmanager
def language(code: str):
    """Use one language for text and formatting inside the block (messages, CLI output)."""
    previous = g.get("language")
    g.language = code
    refresh()
    try:
        yield
    finally:
        if previous is None:
            g.pop("language", None)
        else:
            g.language = previous
        refresh()


class LanguageDomain(Domain):
    """A translation domain that loads catalogs by language code, known to Babel or not."""

    def get_translations(self):
        if not has_app_context():
            return NullTranslations()
        lang = current_language()
        cache = self.get_translations_cache(None)
        key = (lang, self.domain[0])
        if key not in cache:
            translations = Translations()
            for dirname in self.translation_directories:
                catalog = Translations.load(dirname, [lang], self.domain[0])
                translations.merge(catalog)
                # merge() does not carry the plural rule over (as flask-babel notes too).
                if hasattr(catalog, "plural"):
                    translations.plural = catalog.plural
            if lang in PLURAL_RULES:
                translations.plural = PLURAL_RULES[lang]
            cache[key] = translations
        return cache[key]


class LanguageBabel(Babel):
    """flask-babel wired to LanguageDomain and to the formatting fallback."""

    @cached_property
    def domain_instance(self):
        return LanguageDomain(domain=self.domain)


def formatting_locale() -> str:
    """flask-babel's locale selector: the Babel locale that formats for this language."""
    return str(babel_locale_for(current_language()))
