"""Domain errors raised by operations and rendered by views and the API."""

from __future__ import annotations

from typing import Any


class AppError(Exception):
    """An error a user can act on; carries the HTTP status the API answers with."""

    status = 400
    code = "bad_request"

    def __init__(
        self,
        message: str,
        *,
        fields: dict[str, list[str]] | None = None,
        code: str | None = None,
        **extra: Any,
    ):
        super().__init__(message)
        self.message = message
        self.fields = fields or {}
        if code:
            self.code = code
        self.extra = extra


class ValidationFailed(AppError):
    """Input that breaks a rule; `fields` says which field and why."""

    status = 422
    code = "validation_failed"


class NotFound(AppError):
    """A record that does not exist or that the user may not see (the same answer for both)."""

    status = 404
    code = "not_found"


class Forbidden(AppError):
    """A visible record the user may not act on."""

    status = 403
    code = "forbidden"


class Conflict(AppError):
    """An action that lost a race or does not fit the record's current state."""

    status = 409
    code = "conflict"
