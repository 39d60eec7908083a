"""Slowing down token guessing: misses from one address beyond a free allowance wait.

Each address may miss `free` times per window at full speed. Past that, every further miss is
held before its 404, twice as long as the one before (up to the configured maximum), and the
holds of one address queue behind each other, so opening more connections does not help a
guesser. An address with too many misses already waiting gets 429 at once. A hit is never
held. Kept in memory per process and bounded in size: it is a brake, not a record.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field

_FIRST_DELAY = 0.05  # seconds, doubled for each further miss
_MAX_WAITING = 16  # misses of one address held at once before it gets 429
_MAX_ADDRESSES = 50_000


@dataclass
class _Address:
    misses: deque[float] = field(default_factory=deque)
    next_free: float = 0.0
    waiting: int = 0


@dataclass(frozen=True)
class Verdict:
    """How to answer one miss: hold it `delay` seconds, or refuse it outright (429)."""

    delay: float
    refuse: bool = False
    first_held: bool = False  # the first miss of this address to be held in this window


class MissGuard:
    """Counts misses per address and says how long to hold the next one."""

    def __init__(self, free: int, window: float, max_delay: float) -> None:
        self.free = free
        self.window = window
        self.max_delay = max_delay
        self._addresses: OrderedDict[str, _Address] = OrderedDict()

    def miss(self, address: str, now: float | None = None) -> Verdict:
        """Record a miss by `address` and return how to answer it."""
        now = time.monotonic() if now is None else now
        state = self._addresses.pop(address, None) or _Address()
        self._addresses[address] = state  # most recent last
        while len(self._addresses) > _MAX_ADDRESSES:
            self._addresses.popitem(last=False)
        while state.misses and state.misses[0] <= now - self.window:
            state.misses.popleft()
        state.misses.append(now)
        excess = len(state.misses) - self.free
        if excess <= 0 or self.max_delay <= 0:
            return Verdict(0.0)
        if state.waiting >= _MAX_WAITING:
            return Verdict(self.max_delay, refuse=True)
        hold = min(self.max_delay, _FIRST_DELAY * 2 ** min(excess - 1, 30))
        release = max(now, state.next_free) + hold
        state.next_free = release
        return Verdict(min(release - now, self.max_delay), first_held=excess == 1)

    def waiting(self, address: str, delta: int) -> None:
        """Track misses of `address` being held right now (+1 when held, -1 when released)."""
        state = self._addresses.get(address)
        if state is not None:
            state.waiting = max(0, state.waiting + delta)
