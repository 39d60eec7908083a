"""Graph's limits: Retry-After honoured (never sooner), at most 4 concurrent requests per
mailbox and a per-grant request budget, both shared by every process through the `SharedState`.

Graph throttles per app and mailbox: 4 concurrent requests, 10,000 requests per 10 minutes; a
throttled request answers 429 (or 503) with Retry-After in seconds.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
from contextlib import AbstractAsyncContextManager

from connectors.base import SharedState
from connectors.outlook.oauth import OutlookApp

CONCURRENT_PER_MAILBOX = 4
INLINE_RETRIES = 3  # throttled answers retried inside one call before giving up
BACKOFF_SECONDS = 0.5  # first backoff step without Retry-After, doubled each time, jittered
INLINE_MAX_WAIT = 8.0  # a longer Retry-After is handed to the engine instead of slept here


def grant_key(account_id: str) -> str:
    """A short stable name for one grant (never the token itself)."""
    return hashlib.sha256(account_id.encode()).hexdigest()[:24]


def retry_delay(attempt: int, hinted: float | None) -> float:
    """Exponential backoff with full jitter, never shorter than Retry-After."""
    delay = random.uniform(0, BACKOFF_SECONDS * 2**attempt)  # noqa: S311 - jitter, not crypto
    return max(delay, hinted) if hinted is not None else delay


class GrantLimits:
    """The shared budget and the shared concurrency cap of one grant (one mailbox)."""

    def __init__(self, shared: SharedState, account_id: str, app: OutlookApp) -> None:
        self.shared = shared
        self.key = grant_key(account_id)
        self.app = app

    def slot(self) -> AbstractAsyncContextManager[None]:
        """One of the mailbox's 4 places, held for one request, counted across every process
        sharing the state (the sync lease alone does not make one process the mailbox's only
        caller: channel ticks, erasures, discovery and a second integration of the same mailbox
        run beside it). A place whose holder died frees after twice the request timeout."""
        hold = 2 * self.app.timeout_seconds + 10
        return self.shared.slot(f"slots:{self.key}", CONCURRENT_PER_MAILBOX, hold)

    async def wait_for_budget(self) -> None:
        """Book one request in the grant's budget and wait until it may leave."""
        wait = await self.shared.book(
            f"budget:{self.key}", self.app.requests_per_window, self.app.budget_window_seconds
        )
        if wait > 0:
            await asyncio.sleep(wait)
