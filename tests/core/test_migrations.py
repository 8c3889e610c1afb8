"""The schema comes only from migrations, and the migrations match the models."""

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade

from referral_hub.extensions import db

from ..conftest import make_test_app


def _diff(connection):
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return compare_metadata(context, db.metadata)


def test_migrated_schema_matches_the_models(app):
    with app.app_context(), db.engine.connect() as connection:
        diff = _diff(connection)
    assert diff == [], f"models and migrations differ; run `make migrate m=...`: {diff}"


@pytest.mark.no_transaction  # it drops every table: no open transaction may hold a lock
def test_migrations_downgrade_and_upgrade_again(app, tmp_path):
    """Every revision's downgrade works, so a bad deploy can be rolled back."""
    url = app.config["SQLALCHEMY_DATABASE_URI"]
    if url.startswith("sqlite"):
        url = f"sqlite:///{tmp_path / 'roundtrip.sqlite3'}"
        other = make_test_app(url, str(tmp_path))
    else:
        other = app  # PostgreSQL: one database; restore it by upgrading again
    try:
        with other.app_context():
            upgrade()
            downgrade(revision="base")
            with db.engine.connect() as connection:
                tables = db.inspect(connection).get_table_names()
            assert set(tables) <= {"alembic_version"}
            upgrade()
            with db.engine.connect() as connection:
                assert _diff(connection) == []
    finally:
        if other is not app:
            with other.app_context():
                db.engine.dispose()


@pytest.mark.no_transaction
def test_the_tallies_migration_counts_the_referrals_already_there(app, tmp_path):
    """0009 fills the daily tallies from the referrals it finds: what a rewrite gives."""
    from referral_hub.demo import load_demo
    from tests.insights.test_tallies import rebuilt, snapshot

    if not app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        pytest.skip("runs on its own SQLite file; PostgreSQL shares the test database")
    other = make_test_app(f"sqlite:///{tmp_path / 'tallies.sqlite3'}", str(tmp_path))
    try:
        with other.app_context():
            upgrade()
            with other.test_request_context():
                load_demo("demo-password-for-tests")
                db.session.commit()
                expected = rebuilt()
                db.session.rollback()
            assert len(expected) > 50
            downgrade(revision="0008")
            upgrade()
            with other.test_request_context():
                assert snapshot() == expected
    finally:
        with other.app_context():
            db.engine.dispose()
