"""Random tokens, their hashes, and password hashing."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from argon2 import PasswordHasher, profiles
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher.from_parameters(profiles.RFC_9106_LOW_MEMORY)


def configure_password_hashing(profile: str) -> None:
    """Choose the Argon2id parameters by argon2.profiles name (tests use CHEAPEST)."""
    global _hasher
    _hasher = PasswordHasher.from_parameters(getattr(profiles, profile))


def new_token(prefix: str = "") -> str:
    """Return a URL-safe random token carrying 256 bits of entropy."""
    return prefix + secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    """Return the SHA-256 hex digest under which a high-entropy token is stored."""
    # A fast hash is right here: the token is random, so there is nothing to brute-force.
    return hashlib.sha256(token.encode()).hexdigest()


def tokens_equal(a: str, b: str) -> bool:
    """Compare two secrets in constant time."""
    return hmac.compare_digest(a.encode(), b.encode())


def hash_password(password: str) -> str:
    """Hash a password with Argon2id."""
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """Check a password against its hash; a missing or malformed hash never matches."""
    if not password_hash:
        # Spend the same time as a real check so a missing account is not revealed by timing.
        _hasher.hash(password)
        return False
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def password_needs_rehash(password_hash: str) -> bool:
    """Tell whether a hash was made with weaker parameters than today's."""
    return _hasher.check_needs_rehash(password_hash)
