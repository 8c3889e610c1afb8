"""Organizations, users, memberships, sessions and API tokens."""

from __future__ import annotations

import enum
from datetime import datetime

from flask_babel import lazy_gettext as _l
from sqlalchemy import CheckConstraint, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from referral_hub.core.db import Base, StrEnumType, TimestampMixin


class OrgKind(enum.StrEnum):
    CITY_DEPARTMENT = "city_department"
    RESPONDER_TEAM = "responder_team"
    PROVIDER = "provider"
    TRANSPORT_VENDOR = "transport_vendor"

    @property
    def title(self) -> str:
        return str(ORG_KIND_TITLES[self])


ORG_KIND_TITLES = {
    OrgKind.CITY_DEPARTMENT: _l("City department"),
    OrgKind.RESPONDER_TEAM: _l("Responder team"),
    OrgKind.PROVIDER: _l("Service provider"),
    OrgKind.TRANSPORT_VENDOR: _l("Transport vendor"),
}


class Role(enum.StrEnum):
    RESPONDER = "responder"
    PROVIDER_STAFF = "provider_staff"
    PROVIDER_ADMIN = "provider_admin"
    DISPATCHER = "dispatcher"
    COORDINATOR = "coordinator"
    ADMIN = "admin"

    @property
    def title(self) -> str:
        return str(ROLE_TITLES[self])


ROLE_TITLES = {
    Role.RESPONDER: _l("Responder"),
    Role.PROVIDER_STAFF: _l("Provider staff"),
    Role.PROVIDER_ADMIN: _l("Provider administrator"),
    Role.DISPATCHER: _l("Dispatcher"),
    Role.COORDINATOR: _l("Coordinator"),
    Role.ADMIN: _l("Administrator"),
}


class Organization(TimestampMixin, Base):
    """A city department, responder team, service provider or transport vendor."""

    __tablename__ = "organizations"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(80), unique=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[OrgKind] = mapped_column(StrEnumType(OrgKind))
    phone: Mapped[str | None] = mapped_column(String(40))
    website: Mapped[str | None] = mapped_column(String(300))
    description: Mapped[str | None] = mapped_column(String(2000))
    is_active: Mapped[bool] = mapped_column(default=True)

    memberships: Mapped[list[Membership]] = relationship(
        back_populates="organization", cascade="all, delete-orphan"
    )

    def __repr__(self) -> str:
        return f"<Organization {self.slug}>"


class User(TimestampMixin, Base):
    """A staff member who signs in; clients never have accounts."""

    __tablename__ = "users"
    __table_args__ = (CheckConstraint("email = lower(email)", name="email_lowercase"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    password_hash: Mapped[str | None] = mapped_column(String(200))
    locale: Mapped[str | None] = mapped_column(String(10))
    is_active: Mapped[bool] = mapped_column(default=True)
    last_login_at: Mapped[datetime | None]

    memberships: Mapped[list[Membership]] = relationship(
        back_populates="user", cascade="all, delete-orphan", lazy="selectin"
    )

    # Flask-Login: the session key this request was authenticated with, if any.
    session_key = None

    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def is_anonymous(self) -> bool:
        return False

    def get_id(self) -> str | None:
        """Flask-Login stores this in the cookie: the server-side session key, never the id."""
        return self.session_key

    @property
    def roles(self) -> set[Role]:
        return {m.role for m in self.memberships}

    @property
    def organization_ids(self) -> set[int]:
        return {m.organization_id for m in self.memberships}

    @property
    def primary_membership(self) -> Membership | None:
        return min(self.memberships, key=lambda m: m.id) if self.memberships else None

    def __repr__(self) -> str:
        return f"<User {self.email}>"


class Membership(TimestampMixin, Base):
    """A user's role in one organization."""

    __tablename__ = "memberships"
    __table_args__ = (UniqueConstraint("user_id", "organization_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    organization_id: Mapped[int] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    role: Mapped[Role] = mapped_column(StrEnumType(Role))

    user: Mapped[User] = relationship(back_populates="memberships")
    organization: Mapped[Organization] = relationship(back_populates="memberships", lazy="joined")


class UserSession(TimestampMixin, Base):
    """A server-side login session; revoking the row ends the session at once."""

    __tablename__ = "user_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_agent: Mapped[str | None] = mapped_column(String(200))
    last_seen_at: Mapped[datetime | None]
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]

    user: Mapped[User] = relationship()


class ApiToken(TimestampMixin, Base):
    """A personal API token, sent as `Authorization: Bearer`; only its hash is stored."""

    __tablename__ = "api_tokens"
    __table_args__ = (Index("ix_api_tokens_user_id_revoked_at", "user_id", "revoked_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(12))
    last_used_at: Mapped[datetime | None]
    expires_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]

    user: Mapped[User] = relationship()
