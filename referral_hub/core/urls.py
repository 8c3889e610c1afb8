"""URL helpers."""

from __future__ import annotations

from urllib.parse import urlsplit


def is_local_path(target: str | None) -> bool:
    """Tell whether a redirect target stays on this site (a path, no scheme or host)."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return False
    if "\\" in target or any(ord(ch) < 32 for ch in target):
        return False
    parts = urlsplit(target)
    return not parts.scheme and not parts.netloc


def safe_next(target: str | None, fallback: str) -> str:
    """Return the target when it is a local path, else the fallback (no open redirect)."""
    return target if is_local_path(target) else fallback
