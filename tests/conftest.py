"""Shared fixtures: the app on a migrated database, a per-test rolled-back transaction,
factories, and a client that signs in through the real login form."""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from flask_migrate import upgrade
from flask_sqlalchemy.session import _app_ctx_id
from sqlalchemy import orm

from referral_hub import create_app
from referral_hub.accounts import operations as accounts
from referral_hub.accounts.models import Organization, OrgKind, Role, User
from referral_hub.extensions import db, limiter
from referral_hub.geo.service import invalidate_gazetteer

PASSWORD = "correct horse battery staple"
TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL")
ON_POSTGRES = bool(TEST_DATABASE_URL and TEST_DATABASE_URL.startswith("postgresql"))

# Each role's natural kind of organization, for the factories.
ROLE_ORG_KIND = {
    Role.RESPONDER: OrgKind.RESPONDER_TEAM,
    Role.PROVIDER_STAFF: OrgKind.PROVIDER,
    Role.PROVIDER_ADMIN: OrgKind.PROVIDER,
    Role.DISPATCHER: OrgKind.TRANSPORT_VENDOR,
    Role.COORDINATOR: OrgKind.CITY_DEPARTMENT,
    Role.ADMIN: OrgKind.CITY_DEPARTMENT,
}


def pytest_collection_modifyitems(config, items):
    skip_pg = pytest.mark.skip(reason="needs PostgreSQL: set TEST_DATABASE_URL")
    for item in items:
        if "postgres" in item.keywords and not ON_POSTGRES:
            item.add_marker(skip_pg)


def reset_database(url: str) -> None:
    """Empty the database so migrations build it from nothing."""
    if url.startswith("postgresql"):
        engine = sa.create_engine(url)
        with engine.begin() as conn:
            conn.exec_driver_sql("DROP SCHEMA IF EXISTS public CASCADE")
            conn.exec_driver_sql("CREATE SCHEMA public")
        engine.dispose()


def make_test_app(database_url: str, instance_path: str, **overrides) -> Flask:
    """An app configured for tests: fixed secret, real CSRF, real rate limits."""
    os.environ["INSTANCE_PATH"] = instance_path
    config = {
        "TESTING": True,
        "SECRET_KEY": "test-secret-key",
        "SQLALCHEMY_DATABASE_URI": database_url,
        "RATELIMIT_STORAGE_URI": "memory://",
        "DEMO_PASSWORD": PASSWORD,
        # Real Argon2id, cheapest parameters: the suite signs in hundreds of times.
        "ARGON2_PROFILE": "CHEAPEST",
        "SERVER_NAME": None,
    }
    config.update(overrides)
    return create_app(config)


@pytest.fixture(scope="session")
def database_url(tmp_path_factory) -> str:
    if TEST_DATABASE_URL:
        return TEST_DATABASE_URL
    return f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.sqlite3'}"


@pytest.fixture(scope="session")
def app(database_url, tmp_path_factory) -> Iterator[Flask]:
    reset_database(database_url)
    application = make_test_app(database_url, str(tmp_path_factory.mktemp("instance")))
    with application.app_context():
        upgrade()
    yield application
    with application.app_context():
        db.engine.dispose()


@pytest.fixture(autouse=True)
def _transaction(request, app) -> Iterator[None]:
    """Run each test inside one outer transaction that is rolled back afterwards.

    Requests commit as usual; with join_transaction_mode="create_savepoint" those commits
    only release savepoints, so nothing a test writes survives it. No app context stays
    pushed during the test: each request must get its own `g`, as in production.
    """
    if "no_transaction" in request.keywords:
        yield
        return
    with app.app_context():
        # Deferred: the test's outer transaction must not hold SQLite's write lock while it
        # only reads (tests may open a second connection).
        connection = db.engine.connect().execution_options(sqlite_begin="deferred")
        limiter.reset()
        invalidate_gazetteer()  # cached places may come from a rolled-back test
    outer = connection.begin()
    original = db.session
    # A plain SQLAlchemy session: Flask-SQLAlchemy's own Session.get_bind() would ignore
    # `bind` and go straight to the engine, outside the transaction.
    factory = orm.sessionmaker(bind=connection, join_transaction_mode="create_savepoint")
    db.session = orm.scoped_session(factory, scopefunc=_app_ctx_id)
    try:
        yield
    finally:
        db.session = original
        outer.rollback()
        connection.close()


_seq = itertools.count(1)


@pytest.fixture
def make_org(app) -> Callable[..., Organization]:
    def factory(
        kind: OrgKind | str = OrgKind.PROVIDER, name: str | None = None, slug: str | None = None
    ) -> Organization:
        n = next(_seq)
        with app.test_request_context():
            org = accounts.create_organization(
                name=name or f"Organization {n}", slug=slug or f"org-{n}", kind=kind
            )
            db.session.commit()
            return db.session.get(Organization, org.id)

    return factory


@pytest.fixture
def make_user(app, make_org) -> Callable[..., User]:
    def factory(
        role: Role | str = Role.RESPONDER,
        org: Organization | None = None,
        email: str | None = None,
        password: str = PASSWORD,
        **kwargs,
    ) -> User:
        role = Role(role)
        org = org or make_org(kind=ROLE_ORG_KIND[role])
        n = next(_seq)
        with app.test_request_context():
            user = accounts.create_user(
                email=email or f"user{n}@example.org",
                name=kwargs.pop("name", f"User {n}"),
                password=password,
                organization=db.session.merge(org),
                role=role,
                **kwargs,
            )
            db.session.commit()
            return db.session.get(User, user.id)

    return factory


@contextmanager
def counting_selects(app: Flask) -> Iterator[list[str]]:
    """The SELECT statements sent to the database while the block runs.

    Only SELECTs: the test transaction's SAVEPOINTs come and go on their own schedule.
    """
    with app.app_context():
        engine = db.engine
    statements: list[str] = []

    def record(conn, cursor, statement, *args) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            statements.append(statement)

    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)


CSRF_RE = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


def csrf_from(html: str) -> str:
    match = CSRF_RE.search(html)
    assert match, "page carries no CSRF token"
    return match.group(1)


class Client(FlaskClient):
    """A test client with helpers for CSRF-protected forms and signing in."""

    def csrf(self, path: str = "/login") -> str:
        return csrf_from(self.get(path).get_data(as_text=True))

    def post_form(
        self, path: str, data: dict | None = None, *, token_from: str | None = None, **kwargs
    ):
        data = dict(data or {})
        data.setdefault("csrf_token", self.csrf(token_from or path))
        return self.post(path, data=data, **kwargs)

    def login(self, email: str, password: str = PASSWORD, **kwargs):
        return self.post_form("/login", {"email": email, "password": password}, **kwargs)


@pytest.fixture
def client(app) -> Client:
    app.test_client_class = Client
    return app.test_client()


@pytest.fixture
def login_as(client, make_user) -> Callable[..., User]:
    """Sign in through the login form as a new user with this role (or as a given user)."""

    def do(role_or_user: Role | str | User = Role.RESPONDER, **kwargs) -> User:
        user = role_or_user if isinstance(role_or_user, User) else make_user(role_or_user, **kwargs)
        response = client.login(user.email)
        assert response.status_code == 302, response.get_data(as_text=True)
        return user

    return do


@pytest.fixture
def api_token(app) -> Callable[[User], str]:
    def issue(user: User) -> str:
        with app.test_request_context():
            _token, plain = accounts.create_api_token(db.session.merge(user), "test")
            db.session.commit()
            return plain

    return issue


def pytest_configure(config):
    config.addinivalue_line("markers", "no_transaction: manage database state yourself")


@pytest.fixture
def committed(app):
    """Real commits (threads need them, PostgreSQL); every table is emptied afterwards."""
    yield
    with app.app_context():
        tables = [t.name for t in reversed(db.metadata.sorted_tables)]
        db.session.execute(sa.text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        db.session.commit()
