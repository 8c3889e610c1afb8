"""Account rules: organizations, users, memberships, sessions and API tokens."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from email_validator import EmailNotValidError, validate_email
from flask_babel import gettext as _
from sqlalchemy import func, select, update

from referral_hub.accounts.models import (
    ApiToken,
    Membership,
    Organization,
    OrgKind,
    Role,
    User,
    UserSession,
)
from referral_hub.core.db import utcnow
from referral_hub.core.errors import Conflict, NotFound, ValidationFailed
from referral_hub.core.security import (
    hash_password,
    new_token,
    password_needs_rehash,
    token_hash,
    verify_password,
)
from referral_hub.extensions import db

MIN_PASSWORD_LENGTH = 12
SLUG_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
# Bookkeeping writes (last seen / last used) happen at most this often per session or token.
TOUCH_INTERVAL = timedelta(minutes=5)

# Which organization kinds a role belongs to: a dispatcher works for a transport vendor, etc.
ROLE_ORG_KINDS: dict[Role, set[OrgKind]] = {
    Role.RESPONDER: {OrgKind.RESPONDER_TEAM, OrgKind.CITY_DEPARTMENT},
    Role.PROVIDER_STAFF: {OrgKind.PROVIDER},
    Role.PROVIDER_ADMIN: {OrgKind.PROVIDER},
    Role.DISPATCHER: {OrgKind.TRANSPORT_VENDOR},
    Role.COORDINATOR: {OrgKind.CITY_DEPARTMENT},
    Role.ADMIN: {OrgKind.CITY_DEPARTMENT},
}


def normalize_email(email: str) -> str:
    """Validate an address and return its normalized lower-case form."""
    try:
        info = validate_email(email.strip(), check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValidationFailed(
            _("Enter a valid e-mail address."),
            fields={"email": [_("Enter a valid e-mail address.")]},
        ) from exc
    return info.normalized.lower()


def check_password_strength(password: str, field: str = "password") -> None:
    """Refuse passwords that are too short to resist guessing."""
    if len(password) < MIN_PASSWORD_LENGTH:
        message = _("Use at least %(n)d characters.", n=MIN_PASSWORD_LENGTH)
        raise ValidationFailed(message, fields={field: [message]})


# --- organizations -------------------------------------------------------------------------


def create_organization(
    *,
    name: str,
    slug: str,
    kind: OrgKind | str,
    phone: str | None = None,
    website: str | None = None,
    description: str | None = None,
) -> Organization:
    """Create an organization with a unique name and slug."""
    org = Organization(kind=OrgKind(kind), is_active=True)
    _apply_organization(
        org, name=name, slug=slug, phone=phone, website=website, description=description
    )
    db.session.add(org)
    db.session.flush()
    return org


def update_organization(org: Organization, **changes) -> Organization:
    """Change an organization's listing; kind changes only when no membership contradicts it."""
    if "kind" in changes and changes["kind"] is not None:
        kind = OrgKind(changes.pop("kind"))
        clashing = [m for m in org.memberships if kind not in ROLE_ORG_KINDS[m.role]]
        if clashing:
            message = _("Members hold roles that do not fit this kind of organization.")
            raise ValidationFailed(message, fields={"kind": [message]})
        org.kind = kind
    _apply_organization(org, **changes)
    db.session.flush()
    return org


def _apply_organization(org: Organization, **values) -> None:
    errors: dict[str, list[str]] = {}
    if "name" in values:
        name = (values["name"] or "").strip()
        if not name:
            errors["name"] = [_("A name is required.")]
        elif db.session.scalar(
            select(Organization.id).where(
                func.lower(Organization.name) == name.lower(), Organization.id != (org.id or 0)
            )
        ):
            errors["name"] = [_("Another organization already has this name.")]
        org.name = name
    if "slug" in values:
        slug = (values["slug"] or "").strip().lower()
        if not SLUG_RE.match(slug):
            errors["slug"] = [_("Use lower-case letters, digits and single hyphens.")]
        elif db.session.scalar(
            select(Organization.id).where(
                Organization.slug == slug, Organization.id != (org.id or 0)
            )
        ):
            errors["slug"] = [_("Another organization already uses this short name.")]
        org.slug = slug
    for key in ("phone", "website", "description"):
        if key in values:
            setattr(org, key, (values[key] or "").strip() or None)
    if "is_active" in values and values["is_active"] is not None:
        org.is_active = bool(values["is_active"])
    if errors:
        raise ValidationFailed(_("Please correct the marked fields."), fields=errors)


# --- users and memberships -----------------------------------------------------------------


def create_user(
    *,
    email: str,
    name: str,
    password: str | None,
    organization: Organization,
    role: Role | str,
    locale: str | None = None,
) -> User:
    """Create a user with one membership; a user without a password cannot sign in yet."""
    errors: dict[str, list[str]] = {}
    try:
        email = normalize_email(email)
    except ValidationFailed as exc:
        errors.update(exc.fields)
    else:
        if db.session.scalar(select(User.id).where(User.email == email)):
            errors["email"] = [_("A user with this e-mail address already exists.")]
    if not (name or "").strip():
        errors["name"] = [_("A name is required.")]
    if password is not None:
        try:
            check_password_strength(password)
        except ValidationFailed as exc:
            errors.update(exc.fields)
    role = Role(role)
    if role not in ROLE_ORG_KINDS or organization.kind not in ROLE_ORG_KINDS[role]:
        errors["role"] = [_("This role does not fit this kind of organization.")]
    if errors:
        raise ValidationFailed(_("Please correct the marked fields."), fields=errors)
    user = User(
        email=email,
        name=name.strip(),
        locale=locale or None,
        is_active=True,
        password_hash=hash_password(password) if password else None,
    )
    user.memberships.append(Membership(organization=organization, role=role))
    db.session.add(user)
    db.session.flush()
    return user


def update_user(
    user: User,
    *,
    name: str | None = None,
    email: str | None = None,
    locale: str | None = None,
    is_active: bool | None = None,
) -> User:
    """Change a user's profile; deactivating ends every session and token at once."""
    if email is not None:
        email = normalize_email(email)
        if email != user.email and db.session.scalar(select(User.id).where(User.email == email)):
            message = _("A user with this e-mail address already exists.")
            raise ValidationFailed(message, fields={"email": [message]})
        user.email = email
    if name is not None:
        if not name.strip():
            message = _("A name is required.")
            raise ValidationFailed(message, fields={"name": [message]})
        user.name = name.strip()
    if locale is not None:
        user.locale = locale or None
    if is_active is not None and is_active != user.is_active:
        user.is_active = is_active
        if not is_active:
            revoke_sessions(user)
            revoke_api_tokens(user)
    db.session.flush()
    return user


def set_password(user: User, new_password: str, *, current_password: str | None = None) -> None:
    """Set a password (checking the current one when given) and end every session."""
    if current_password is not None and not verify_password(user.password_hash, current_password):
        message = _("The current password is not correct.")
        raise ValidationFailed(message, fields={"current_password": [message]})
    check_password_strength(new_password, field="new_password")
    user.password_hash = hash_password(new_password)
    revoke_sessions(user)
    db.session.flush()


def set_membership(user: User, organization: Organization, role: Role | str) -> Membership:
    """Give a user a role in an organization, replacing the role they had there."""
    role = Role(role)
    if organization.kind not in ROLE_ORG_KINDS[role]:
        message = _("This role does not fit this kind of organization.")
        raise ValidationFailed(message, fields={"role": [message]})
    membership = next((m for m in user.memberships if m.organization_id == organization.id), None)
    if membership is None:
        membership = Membership(organization=organization, role=role)
        user.memberships.append(membership)
    else:
        membership.role = role
    db.session.flush()
    return membership


def remove_membership(membership: Membership) -> None:
    """Take a role away; the last membership of a user cannot be removed (deactivate instead)."""
    user = membership.user
    if len(user.memberships) <= 1:
        raise Conflict(_("A user needs at least one organization; deactivate the user instead."))
    user.memberships.remove(membership)
    db.session.flush()


def authenticate(email: str, password: str) -> User | None:
    """Return the active user with these credentials, upgrading an old hash on the way."""
    user = db.session.scalar(select(User).where(User.email == (email or "").strip().lower()))
    if not verify_password(user.password_hash if user else None, password or ""):
        return None
    if not user.is_active:
        return None
    if password_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    user.last_login_at = utcnow()
    db.session.flush()
    return user


# --- sessions ------------------------------------------------------------------------------


def start_session(user: User, *, lifetime: timedelta, user_agent: str | None = None) -> str:
    """Open a server-side session and return its key (stored only as a hash)."""
    key = new_token()
    now = utcnow()
    db.session.add(
        UserSession(
            user_id=user.id,
            key_hash=token_hash(key),
            user_agent=(user_agent or "")[:200] or None,
            last_seen_at=now,
            expires_at=now + lifetime,
        )
    )
    db.session.flush()
    return key


def resolve_session(key: str) -> tuple[User, UserSession] | None:
    """Return the user and session behind a key if the session is live and the user active."""
    row = db.session.execute(
        select(UserSession, User)
        .join(User, User.id == UserSession.user_id)
        .where(UserSession.key_hash == token_hash(key))
    ).first()
    if row is None:
        return None
    user_session, user = row
    if user_session.revoked_at is not None or user_session.expires_at <= utcnow():
        return None
    if not user.is_active:
        return None
    return user, user_session


def touch(record: UserSession | ApiToken, attribute: str, now: datetime | None = None) -> bool:
    """Record last use, at most once per TOUCH_INTERVAL; tell whether anything changed."""
    now = now or utcnow()
    last = getattr(record, attribute)
    if last is not None and now - last < TOUCH_INTERVAL:
        return False
    setattr(record, attribute, now)
    return True


def end_session(key: str) -> None:
    """Revoke the session behind a key (logout)."""
    db.session.execute(
        update(UserSession)
        .where(UserSession.key_hash == token_hash(key), UserSession.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )


def revoke_sessions(user: User, *, except_id: int | None = None) -> int:
    """Revoke every live session of a user; return how many were ended."""
    stmt = update(UserSession).where(
        UserSession.user_id == user.id, UserSession.revoked_at.is_(None)
    )
    if except_id is not None:
        stmt = stmt.where(UserSession.id != except_id)
    return db.session.execute(stmt.values(revoked_at=utcnow())).rowcount


def live_sessions(user: User) -> list[UserSession]:
    """List a user's sessions that are neither revoked nor expired, newest first."""
    return list(
        db.session.scalars(
            select(UserSession)
            .where(
                UserSession.user_id == user.id,
                UserSession.revoked_at.is_(None),
                UserSession.expires_at > utcnow(),
            )
            .order_by(UserSession.id.desc())
        )
    )


def revoke_session(user: User, session_id: int) -> None:
    """Revoke one of the user's own live sessions; anyone else's answers NotFound."""
    result = db.session.execute(
        update(UserSession)
        .where(
            UserSession.id == session_id,
            UserSession.user_id == user.id,
            UserSession.revoked_at.is_(None),
        )
        .values(revoked_at=utcnow())
    )
    if result.rowcount == 0:
        raise NotFound(_("Not found."))


# --- API tokens ----------------------------------------------------------------------------

TOKEN_PREFIX = "rh_"  # noqa: S105  (a public prefix that marks our tokens, not a secret)


def create_api_token(user: User, name: str, *, expires_in_days: int | None = None):
    """Create a personal API token; the plain token is returned once and never stored."""
    name = (name or "").strip()
    if not name:
        message = _("Give the token a name, so you can recognise it later.")
        raise ValidationFailed(message, fields={"name": [message]})
    if expires_in_days is not None and not 1 <= expires_in_days <= 3650:
        message = _("Choose between 1 and 3650 days.")
        raise ValidationFailed(message, fields={"expires_in_days": [message]})
    plain = new_token(TOKEN_PREFIX)
    token = ApiToken(
        user_id=user.id,
        name=name[:100],
        token_hash=token_hash(plain),
        prefix=plain[: len(TOKEN_PREFIX) + 6],
        expires_at=utcnow() + timedelta(days=expires_in_days) if expires_in_days else None,
    )
    db.session.add(token)
    db.session.flush()
    return token, plain


def resolve_api_token(plain: str) -> tuple[User, ApiToken] | None:
    """Return the active user and token for a presented bearer token, or None."""
    row = db.session.execute(
        select(ApiToken, User)
        .join(User, User.id == ApiToken.user_id)
        .where(ApiToken.token_hash == token_hash(plain))
    ).first()
    if row is None:
        return None
    token, user = row
    now = utcnow()
    if token.revoked_at is not None or (token.expires_at and token.expires_at <= now):
        return None
    if not user.is_active:
        return None
    return user, token


def user_api_tokens(user: User) -> list[ApiToken]:
    """List a user's tokens that are not revoked, newest first."""
    return list(
        db.session.scalars(
            select(ApiToken)
            .where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))
            .order_by(ApiToken.id.desc())
        )
    )


def revoke_api_token(user: User, token_id: int) -> None:
    """Revoke one of the user's own live tokens; anyone else's answers NotFound."""
    result = db.session.execute(
        update(ApiToken)
        .where(ApiToken.id == token_id, ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    if result.rowcount == 0:
        raise NotFound(_("Not found."))


def revoke_api_tokens(user: User) -> None:
    """Revoke every token of a user (deactivation)."""
    db.session.execute(
        update(ApiToken)
        .where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
