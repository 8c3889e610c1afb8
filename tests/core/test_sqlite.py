"""The embedded SQLite default: writers queue for the lock instead of failing."""

import threading

import pytest
import sqlalchemy as sa

from ..conftest import ON_POSTGRES

pytestmark = pytest.mark.skipif(ON_POSTGRES, reason="SQLite behaviour")


@pytest.fixture
def engine(tmp_path):
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'w.sqlite3'}")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (n INTEGER)")
    yield engine
    engine.dispose()


def _read_then_write(engine, started, results, hold=None):
    with engine.connect() as conn, conn.begin():
        conn.exec_driver_sql("SELECT count(*) FROM t").scalar()
        started.set()
        if hold is not None:
            hold.wait(timeout=5)
        conn.exec_driver_sql("INSERT INTO t VALUES (1)")
    results.append("ok")


def test_two_writers_that_read_first_both_succeed(engine):
    results: list[str] = []
    first_started, second_started, release = (
        threading.Event(),
        threading.Event(),
        threading.Event(),
    )
    first = threading.Thread(
        target=_read_then_write, args=(engine, first_started, results, release)
    )
    first.start()
    assert first_started.wait(timeout=5)
    # The second writer would fail at once with a deferred BEGIN (it could not upgrade its
    # read snapshot); with BEGIN IMMEDIATE it waits for the first to commit.
    second = threading.Thread(target=_read_then_write, args=(engine, second_started, results))
    second.start()
    release.set()
    first.join(timeout=10)
    second.join(timeout=10)
    assert results == ["ok", "ok"]
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM t").scalar() == 2


def test_foreign_keys_and_wal_are_on(engine):
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
