"""Google's limits, kept per grant in the state shared by every process (`SharedState`): the
request budget, write pauses after ``quotaExceeded``, and the cached access token.

- Every grant gets a budget of `GoogleApp.requests_per_minute` requests per
  `budget_window_seconds` (a minute in production); a request that does not fit waits. The
  budget lives in the database, so two processes on one PostgreSQL respect one budget.
- 403 ``quotaExceeded`` ("Calendar usage limits exceeded") pauses writes to that calendar for
  `quota_pause_seconds` (reads go on): `WritesPaused`, whose message and retry_after say until
  when. The pause is stored too, so a restart keeps it.
- 429 and 403 rateLimitExceeded / userRateLimitExceeded are retried inline a few times
  (`retry_delay`), then handed to the engine as Transient(retry_after).
"""

from __future__ import annotations

import hashlib
import json
import random
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from connectors import errors
from connectors.base import SharedState

if TYPE_CHECKING:
    from connectors.google.oauth import GoogleApp

INLINE_RETRIES = 3  # rate-limit answers retried inside one call before giving up
BACKOFF_SECONDS = 0.5  # first backoff step; doubled at each retry, with full jitter
INLINE_MAX_WAIT = 8.0  # a longer Retry-After is handed to the engine instead of slept here


class WritesPaused(errors.WritesPaused):
    """Google said the calendar's usage limits are exceeded: writes wait until `until`."""

    code = "provider_quota_exceeded"

    def __init__(self, until: datetime) -> None:
        super().__init__(
            "Google Calendar usage limits exceeded: writes to this calendar are paused until "
            f"{until:%Y-%m-%d %H:%M} UTC",
            until,
            max(1.0, (until - datetime.now(UTC)).total_seconds()),
        )


def grant_key(refresh_token: str) -> str:
    """A short stable name for one grant (never the token itself)."""
    return hashlib.sha256(refresh_token.encode()).hexdigest()[:24]


def retry_delay(attempt: int, hinted: float | None) -> float:
    """Exponential backoff with full jitter, never shorter than Retry-After."""
    delay = random.uniform(0, BACKOFF_SECONDS * 2**attempt)  # noqa: S311 - jitter, not crypto
    return max(delay, hinted) if hinted is not None else delay


class GrantLimits:
    """The shared limits and token of one grant."""

    def __init__(self, shared: SharedState, refresh_token: str, app: GoogleApp) -> None:
        self.shared = shared
        self.key = grant_key(refresh_token)
        self.app = app

    def _pause_key(self, calendar_id: str) -> str:
        return f"pause:{self.key}:{hashlib.sha256(calendar_id.encode()).hexdigest()[:24]}"

    async def wait_for_budget(self) -> float:
        """Book one request in the grant's budget: the seconds to wait before sending it."""
        window = self.app.budget_window_seconds
        # Google counts requests as they arrive, and a request leaves a little after its booked
        # time: a margin keeps the arrivals inside the budget too.
        return await self.shared.book(
            f"budget:{self.key}", self.app.requests_per_minute, window + min(1.0, window / 10)
        )

    async def paused_until(self, calendar_id: str) -> datetime | None:
        """When writes to that calendar resume after a quotaExceeded answer, or None."""
        value = await self.shared.read(self._pause_key(calendar_id))
        if value is None:
            return None
        until = datetime.fromisoformat(value)
        return until if until > datetime.now(UTC) else None

    async def pause(self, calendar_id: str) -> WritesPaused:
        """Pause writes to the calendar (Google said quotaExceeded); the error to raise."""
        until = datetime.now(UTC) + timedelta(seconds=self.app.quota_pause_seconds)
        await self.shared.write(self._pause_key(calendar_id), until.isoformat(), until)
        return WritesPaused(until)

    async def access_token(self) -> tuple[str, datetime] | None:
        """The cached access token of the grant and its (aware) expiry, or None."""
        value = await self.shared.read(f"access:{self.key}")
        if value is None:
            return None
        data = json.loads(value)
        return str(data["token"]), datetime.fromisoformat(data["expiry"])

    async def remember_token(self, token: str, expiry: datetime) -> None:
        """Share a fresh access token with the other processes until it expires."""
        value = json.dumps({"token": token, "expiry": expiry.isoformat()})
        await self.shared.write(f"access:{self.key}", value, expiry)

    async def forget_token(self) -> None:
        """Drop the cached access token (the grant was revoked)."""
        await self.shared.forget(f"access:{self.key}")
