"""Feed token lookups remembered per process on PostgreSQL, forgotten on a change's NOTIFY.

Migration 0009scale adds triggers that send ``NOTIFY calgate_feeds, '<token hash>'`` in every
transaction that changes what a token resolves to (a feed created, rotated, deleted, its
version bumped; ``'*'`` when an account's state changes). PostgreSQL delivers a notification
at the commit of the transaction that sent it, to every listening connection of every process.
This module keeps one such connection per store (asyncpg ``add_listener``) and answers a
remembered token from memory, so a warm fetch costs no query; a notification forgets the
token's answer.

It only remembers while it is sure to hear: before the listener is up, after its connection
is lost (``add_termination_listener``, or a ping that fails), or when the triggers are
missing (a database not migrated to 0009scale), every fetch queries, as before. An answer read
by a query that was running when a notification arrived is not remembered (the generation
counter), so no stale answer outlives the notification that corrected it.

The window: PostgreSQL signals the listening sessions during the commit, before the
committing client hears back, and each writes the notification to its connection at once. A
remembered answer is only used while nothing waits unread on the listening socket (one
``poll`` with no timeout, the price of SQLite's ``data_version`` pragma): a notification that
has arrived but not been handled sends the fetch to the query. What remains is the time
PostgreSQL takes to write the notification after the commit (microseconds on one host, a
network hop between hosts), during which another process may still serve the old answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import select
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import text

from gateway.store.db import Store

log = logging.getLogger("calgate.feeds")
CHANNEL = "calgate_feeds"
_PING_SECONDS = 10.0  # a connection that died silently (no FIN) is noticed within this
_RETRY_SECONDS = 5.0  # after a failed start, fetches query for this long before a retry
_TRIGGERS = text(
    "SELECT count(*) FROM pg_trigger WHERE tgname = 'calgate_feed_signal'"
    " AND tgrelid IN (to_regclass('feeds'), to_regclass('accounts'))"
)


def socket_of(conn: Any) -> Any:
    """The socket under asyncpg connection `conn` (to see whether a notification waits
    unread), or None when it cannot be found.

    asyncpg (0.29 to 0.32 read) offers no public way to it: its public surface (`add_listener`,
    `add_termination_listener`, `add_log_listener`, `is_closed`, `terminate`, `get_server_pid`,
    `get_settings`) never exposes the transport, `connect()` takes no socket of ours, and its one
    extension point, `connect(connection_class=...)`, hands the transport only to a constructor
    whose signature is private too. So this one place reads asyncpg's private `_transport` (then
    asyncio's public `get_extra_info`). Should a later asyncpg drop it, None: the lookups are
    never remembered and every fetch queries, as with `feeds.remember_tokens_postgres` off.
    """
    transport = getattr(conn, "_transport", None)
    get_extra_info = getattr(transport, "get_extra_info", None)
    sock = get_extra_info("socket") if callable(get_extra_info) else None
    return sock if callable(getattr(sock, "fileno", None)) else None


class PgLookups:
    """Answers of `query(digest)` remembered while this process listens for feed changes."""

    def __init__(self, store: Store, query: Callable[[str], Awaitable[Any]], limit: int) -> None:
        self.store = store
        self.query = query
        self.limit = limit
        self.listening = False
        self._known: dict[str, Any] = {}
        self._generation = 0
        self._conn: Any = None  # the asyncpg connection that listens
        self._task: asyncio.Task[None] | None = None
        self._retry_at = 0.0
        self._unread: select.poll | None = None  # the listening socket, polled before a hit
        store.on_close(self.close)

    async def __call__(self, digest: str) -> Any:
        if self.listening:
            if digest in self._known and not self._waiting():
                return self._known[digest]
        else:
            self._start()
        generation = self._generation
        found = await self.query(digest)
        if self.listening and generation == self._generation:
            if len(self._known) >= self.limit:  # unknown digests too: bounded, then forgotten
                self._known.clear()
            self._known[digest] = found
        return found

    def generation(self) -> int:
        """A number that changes with every notification heard, -1 while not listening or
        while a notification may wait unread (answers derived from a lookup are current while it
        stays the same)."""
        if not self.listening or self._waiting():
            return -1
        return self._generation

    def _start(self) -> None:
        loop = asyncio.get_running_loop()
        if self._task is None and loop.time() >= self._retry_at:
            self._retry_at = loop.time() + _RETRY_SECONDS
            self._task = loop.create_task(self._listen())

    async def _listen(self) -> None:
        """Open the listening connection, then ping it until it fails or the store closes."""
        try:
            async with self.store.engine.connect() as conn:
                if int((await conn.execute(_TRIGGERS)).scalar_one()) < 2:
                    log.warning("feed change triggers missing: token lookups are not remembered")
                    return
            raw = await self.store.engine.raw_connection()
            self._conn = raw.driver_connection
            raw.detach()  # ours until closed: the pool neither reuses nor resets it
            self._conn.add_termination_listener(self._lost)
            await self._conn.add_listener(CHANNEL, self._notified)
            sock = socket_of(self._conn)
            if sock is None:
                log.warning("feed change listener has no socket: token lookups not remembered")
                self._retry_at = math.inf  # the driver will not change while we run
                return
            self._unread = select.poll()
            self._unread.register(sock.fileno(), select.POLLIN)
            self._forget()
            self.listening = True
            while True:
                await asyncio.sleep(_PING_SECONDS)
                await asyncio.wait_for(self._conn.fetchval("SELECT 1"), _PING_SECONDS)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the fetches go on querying; a later fetch retries
            log.warning("feed change listener stopped: %s", type(exc).__name__)
        finally:
            self._stop_listening()
            self._task = None

    def _waiting(self) -> bool:
        """True when bytes wait unread on the listening socket (maybe a notification)."""
        return self._unread is None or bool(self._unread.poll(0))

    def _notified(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        if payload == "*" or not payload:
            self._forget()
        else:
            self._known.pop(payload, None)
            self._generation += 1

    def _lost(self, _conn: Any) -> None:
        self._stop_listening()
        if self._task is not None:
            self._task.cancel()

    def _forget(self) -> None:
        self._known.clear()
        self._generation += 1

    def _stop_listening(self) -> None:
        self.listening = False
        self._unread = None
        self._forget()
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
            conn.terminate()

    async def close(self) -> None:
        """Stop listening and close the connection (with the store)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._stop_listening()
