"""One error tree for calgate.

The API renders `CalgateError`s through one handler (gateway/api/errors.py) and the CLI through
another (gateway/cli.py); nothing below the API raises HTTP exceptions.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from typing import Literal


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


# --- failures outside calgate ----------------------------------------------------------------


class ExternalError(CalgateError):
    """Something outside calgate failed: a calendar provider (connectors/errors.py), an email
    or SMS channel (`ChannelError`), or a stored secret the current key cannot read
    (`SecretUnreadable`). These carry no HTTP status: `describe` says what each means for the
    person, and the API maps that meaning to a status in one place (gateway/api/errors.py).

    `action` is what it takes to get going again: ``retry`` (a passing failure: later, by
    itself), ``reconnect`` (the person must sign in or connect again), ``conflict`` (the item
    changed; the caller re-reads it) or ``failed`` (the other side answered something we could
    not use; a retry may or may not help).
    """

    code = "external_error"
    action: Literal["retry", "reconnect", "conflict", "failed"] = "failed"

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class Trouble:
    """What an external failure means, in the words the person reads.

    `status` is the integration status it leads to (``reconnect_needed``, or ``active`` with a
    retry later); `words` the message shown as its last error.
    """

    code: str
    action: str
    status: str
    words: str
    retry_after: float | None


def describe(exc: ExternalError) -> Trouble:
    """The one place an external failure is turned into words and a next step."""
    words = exc.message
    if exc.action == "reconnect":
        return Trouble(exc.code, exc.action, "reconnect_needed", words, None)
    if exc.action == "retry":
        return Trouble(exc.code, exc.action, "active", words, exc.retry_after)
    return Trouble(exc.code, exc.action, "active", words, None)


def _chain(exc: BaseException) -> list[BaseException]:
    """`exc` and the errors it was raised from or wrapped (args too: some libraries keep the
    cause there), each once."""
    seen: list[BaseException] = []
    todo = [exc]
    while todo and len(seen) < 20:
        current = todo.pop(0)
        if any(current is s for s in seen):
            continue
        seen.append(current)
        todo.extend(e for e in (current.__cause__, current.__context__) if e is not None)
        todo.extend(a for a in current.args if isinstance(a, BaseException))
        reason = getattr(current, "reason", None)
        if isinstance(reason, BaseException):
            todo.append(reason)
    return seen


def network_words(exc: BaseException, timeout: float | None = None) -> str:
    """What went wrong on the way to a server, in words a person reads (never a class name):
    refused, cut off, too slow, a TLS certificate or handshake problem, or simply unreachable.
    Every HTTP and mail library raises its own classes for these; the standard library's are
    found among their causes, and the others by the words of their names and messages."""
    chain = _chain(exc)
    text = " ".join(f"{type(e).__name__} {e}" for e in chain).lower()
    if any(isinstance(e, ssl.SSLCertVerificationError) for e in chain) or (
        "certificate verify failed" in text
    ):
        return "its TLS certificate is not trusted (certificate verify failed)"
    if any(isinstance(e, ssl.SSLError) for e in chain) or "ssl" in text or "tls" in text:
        return "the TLS handshake failed"
    if any(isinstance(e, ConnectionRefusedError) for e in chain) or "refused" in text:
        return "the connection was refused (is the server running?)"
    if any(isinstance(e, TimeoutError) for e in chain) or "timeout" in text or "timed out" in text:
        within = f" within {timeout:g} s" if timeout else " in time"
        return f"the server did not answer{within}"
    if any(isinstance(e, ConnectionResetError | BrokenPipeError) for e in chain) or any(
        word in text
        for word in ("reset", "disconnected", "incomplete", "closed", "aborted", "eof", "broken")
    ):
        return "the connection was cut before the answer was complete"
    return "the server could not be reached"
