"""Declarative base, naming convention, UTC datetimes and engine hooks."""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import TypeVar
from zoneinfo import ZoneInfo

from flask import current_app, has_request_context, request
from sqlalchemy import DateTime, MetaData, String, event, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, registry
from sqlalchemy.types import TypeDecorator

# Stable constraint names, so Alembic can find and alter them on every backend.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


M = TypeVar("M")


def utcnow() -> datetime:
    """Return the current time as an aware UTC datetime."""
    return datetime.now(UTC)


def city_tz() -> ZoneInfo:
    """The city's time zone (TIMEZONE): opening hours, appointments and reports use it."""
    return ZoneInfo(current_app.config["TIMEZONE"])


def lock_row(session: Session, model: type[M], ident: int) -> M | None:
    """Load a row for change, holding its lock until the transaction ends.

    PostgreSQL takes a row lock (SELECT ... FOR UPDATE); SQLite has none, and writes are
    serialised by BEGIN IMMEDIATE, with the version column catching a stale writer.
    """
    pk = model.__mapper__.primary_key[0]  # type: ignore[attr-defined]
    stmt = select(model).where(pk == ident)
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    return session.scalar(stmt.execution_options(populate_existing=True))


class UTCDateTime(TypeDecorator):
    """An aware UTC datetime on every backend (SQLite stores it naive, we re-attach UTC)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given for a UTC column; use an aware datetime")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class StrEnumType(TypeDecorator):
    """Store a StrEnum as its string value (no native ENUM: adding a member needs no DDL)."""

    impl = String(40)
    cache_ok = True

    def __init__(self, enum_class: type[enum.StrEnum], length: int = 40):
        super().__init__(length)
        self.enum_class = enum_class

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        return self.enum_class(value).value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return self.enum_class(value)


class Base(DeclarativeBase):
    """Base of every model: naming convention and aware datetimes."""

    registry = registry(
        metadata=MetaData(naming_convention=NAMING_CONVENTION),
        type_annotation_map={datetime: UTCDateTime()},
    )


class TimestampMixin:
    """`created_at` and `updated_at`, set by the database session, in UTC."""

    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


@event.listens_for(Engine, "connect")
def _sqlite_on_connect(dbapi_connection, connection_record) -> None:
    """Foreign keys, WAL and a busy timeout for SQLite; hand transactions to SQLAlchemy."""
    module = type(dbapi_connection).__module__
    if not module.startswith("sqlite3"):
        return
    # pysqlite's own transaction handling breaks SAVEPOINT; SQLAlchemy emits BEGIN instead.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys = ON")
    cursor.execute("PRAGMA journal_mode = WAL")
    cursor.execute("PRAGMA busy_timeout = 5000")
    cursor.execute("PRAGMA synchronous = NORMAL")
    cursor.close()


@event.listens_for(Engine, "do_connect")
def _postgres_no_jit(dialect, conn_rec, cargs, cparams) -> None:
    """PostgreSQL without JIT: our queries are short aggregates, where compiling them costs
    more than it saves (a dashboard query spent a second in JIT for 300 ms of work)."""
    if dialect.name == "postgresql":
        options = cparams.get("options", "")
        if "jit=" not in options:
            cparams["options"] = f"{options} -c jit=off".strip()


READ_ONLY_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@event.listens_for(Engine, "begin")
def _sqlite_on_begin(conn) -> None:
    """On SQLite, writers take the write lock up front and queue on busy_timeout.

    A deferred transaction that reads first cannot always upgrade to a write while another
    process writes (SQLITE_BUSY, at once): a form post would fail instead of waiting. Page
    views stay deferred, so reads remain concurrent under WAL.
    """
    if conn.dialect.name != "sqlite":
        return
    requested = conn.get_execution_options().get("sqlite_begin")
    reading = has_request_context() and request.method in READ_ONLY_METHODS
    deferred = requested == "deferred" or (requested is None and reading)
    conn.exec_driver_sql("BEGIN" if deferred else "BEGIN IMMEDIATE")
