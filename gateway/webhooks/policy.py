"""What an answer means (pure): delivered, retry later, give up, or the endpoint is gone; and how
long to wait before the next attempt."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import timedelta
from email.utils import parsedate_to_datetime

from gateway.store.types import utcnow

DELIVERED = "delivered"
RETRY = "retry"
FAILED = "failed"
GONE = "gone"

# The longest single wait between attempts; the whole retry period is webhooks.retry_hours.
MAX_WAIT = timedelta(hours=6)


@dataclass(frozen=True)
class Verdict:
    """An attempt's meaning, the error in words (None on success), and a wait the receiver
    asked for (Retry-After on 429 / 503)."""

    outcome: str
    error: str | None = None
    retry_after: float | None = None


def judge(status: int | None, error: str | None, retry_after: str | None = None) -> Verdict:
    """Judge an attempt from its HTTP status, or the transport error when there was no answer.

    Retried: no answer (timeout, connection refused or reset), 408, 429 and 5xx. 410 Gone means
    the receiver removed the endpoint: it is disabled. Any other answer (a redirect, 4xx) is
    a refusal that sending the same bytes again would not change.
    """
    if status is None:
        return Verdict(RETRY, error or "no answer")
    if 200 <= status < 300:
        return Verdict(DELIVERED)
    words = f"HTTP {status}"
    if status == 410:
        return Verdict(GONE, words)
    if status in (408, 429) or status >= 500:
        return Verdict(RETRY, words, _seconds(retry_after))
    return Verdict(FAILED, words)


def _seconds(value: str | None) -> float | None:
    """Retry-After as seconds (RFC 9110 §10.2.3: delay-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - utcnow()).total_seconds())


def next_wait(attempts: int, base_seconds: float, retry_after: float | None = None) -> timedelta:
    """The wait after `attempts` failed attempts: base * 4^(n-1), at most six hours, with jitter
    (between half and all of it, so that many deliveries failing together do not come back
    together), and never shorter than what the receiver asked for."""
    ceiling = min(base_seconds * 4.0 ** max(0, attempts - 1), MAX_WAIT.total_seconds())
    wait = random.uniform(ceiling / 2, ceiling)  # noqa: S311 - jitter, not crypto
    if retry_after is not None:
        wait = max(wait, min(retry_after, MAX_WAIT.total_seconds()))
    return timedelta(seconds=wait)
