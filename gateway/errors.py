"""One error tree for calgate.

The API renders `CalgateError`s through one handler (gateway/api/errors.py) and the CLI through
another (gateway/cli.py); nothing below the API raises HTTP exceptions.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FieldProblem:
    """One problem with one named field of a request or a setting."""

    field: str
    problem: str


class CalgateError(Exception):
    """Base of every error calgate raises on purpose."""

    status_code = 500
    code = "internal_error"

    def __init__(self, message: str, problems: list[FieldProblem] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.problems: list[FieldProblem] = problems or []


class UserError(CalgateError):
    """Something the caller can fix; shown without a traceback."""

    status_code = 400
    code = "invalid_request"


class ValidationFailed(UserError):
    """A request field is malformed or breaks a rule (end before start, unknown zone, ...)."""

    status_code = 422
    code = "validation_failed"

    @classmethod
    def one(cls, field_name: str, problem: str) -> ValidationFailed:
        """Shortcut for a single problem with a single field."""
        return cls(f"{field_name}: {problem}", [FieldProblem(field_name, problem)])


class NotFound(UserError):
    """Missing, or belonging to another account: deliberately indistinguishable."""

    status_code = 404
    code = "not_found"


class Conflict(UserError):
    """The request conflicts with the current state (cancelled appointment, reused key, ...)."""

    status_code = 409
    code = "conflict"


class PreconditionFailed(UserError):
    """An If-Match precondition did not hold."""

    status_code = 412
    code = "precondition_failed"


class Unauthorized(UserError):
    """No API key, or an unknown or revoked one."""

    status_code = 401
    code = "unauthorized"


class PayloadTooLarge(UserError):
    """The request body exceeds the configured limit."""

    status_code = 413
    code = "payload_too_large"


class ConfigError(CalgateError):
    """A setting is unknown or invalid; start-up stops with one line naming it."""

    code = "config_error"
