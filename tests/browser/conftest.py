"""Real-browser fixtures: the app served on a throw-away database, and Debian's Chromium.

The live server never shares the database of the session `app` fixture: on SQLite it uses
its own file, on PostgreSQL its own `rh_browser_<hex>` database, dropped at the end. Mark
browser tests with `no_transaction` so the per-test rolled-back transaction stays out of it.
"""

from __future__ import annotations

import http.client
import secrets
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import sqlalchemy as sa
from flask import Flask
from flask_babel import gettext
from flask_migrate import upgrade
from playwright.sync_api import Browser, Page, sync_playwright
from werkzeug.serving import make_server

from referral_hub.demo import load_demo
from referral_hub.extensions import db
from referral_hub.web.i18n import language
from tests.conftest import ON_POSTGRES, PASSWORD, TEST_DATABASE_URL, make_test_app

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PHONE_VIEWPORT = {"width": 390, "height": 844}


@dataclass(frozen=True)
class LiveServer:
    url: str
    app: Flask

    def gettext(self, lang: str, message: str) -> str:
        """`message` as the app shows it in `lang` (the English text when not translated)."""
        with self.app.test_request_context(), language(lang):
            return gettext(message)

    def page_language(self, locale: str | None) -> str:
        """The language a signed-in user with this locale sees (the browser asks for en-US)."""
        return locale if locale in self.app.config["LANGUAGES"] else "en"


@pytest.fixture(scope="session")
def _browser_database_url(tmp_path_factory) -> Iterator[str]:
    """A database of its own for the live server, removed afterwards."""
    if not ON_POSTGRES:
        yield f"sqlite:///{tmp_path_factory.mktemp('browser-db') / 'live.sqlite3'}"
        return
    name = f"rh_browser_{secrets.token_hex(6)}"
    admin = sa.create_engine(TEST_DATABASE_URL, isolation_level="AUTOCOMMIT", pool_pre_ping=True)
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        yield (
            sa.engine.make_url(TEST_DATABASE_URL)
            .set(database=name)
            .render_as_string(hide_password=False)
        )
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@pytest.fixture(scope="session")
def live_server(_browser_database_url, tmp_path_factory) -> Iterator[LiveServer]:
    """The app with the demo data, served by werkzeug on 127.0.0.1 in a daemon thread."""
    app = make_test_app(
        _browser_database_url,
        str(tmp_path_factory.mktemp("browser-instance")),
        # Every browser signs in from 127.0.0.1; the limit itself is tested in tests/accounts.
        LOGIN_RATE_LIMIT="1000 per minute",
    )
    try:
        with app.app_context():
            upgrade()
            load_demo(PASSWORD)
            db.session.commit()
            db.session.remove()

        server = make_server("127.0.0.1", 0, app, threaded=True)
        thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
        thread.start()
        try:
            url = f"http://127.0.0.1:{server.server_port}"
            # The socket listens already: this blocks until serve_forever answers.
            conn = http.client.HTTPConnection("127.0.0.1", server.server_port, timeout=10)
            try:
                conn.request("GET", "/healthz")
                response = conn.getresponse()
                response.read()
            finally:
                conn.close()
            assert response.status == 200, f"live server answered {response.status}"
            yield LiveServer(url=url, app=app)
        finally:
            server.shutdown()
            server.server_close()
            thread.join(timeout=10)
    finally:
        # Close pooled connections so the throw-away database can be dropped.
        with app.app_context():
            db.engine.dispose()


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    executable = shutil.which("chromium")
    if executable is None:
        pytest.skip("Chromium is not installed (apt-get install chromium)")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser, live_server) -> Iterator[Page]:
    """A fresh phone-sized tab (no cookies, English browser) with paths relative to the server."""
    context = browser.new_context(base_url=live_server.url, viewport=PHONE_VIEWPORT, locale="en-US")
    try:
        yield context.new_page()
    finally:
        context.close()
