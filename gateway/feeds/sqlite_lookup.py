"""Token lookups on the embedded SQLite store, remembered until anything commits.

Used by the feed endpoint (gateway/feeds/http.py); the PostgreSQL counterpart is
gateway/feeds/pg_signal.py.
"""

from __future__ import annotations

import sqlite3
import weakref
from collections.abc import Callable
from typing import NamedTuple

from gateway.domain.account_states import ACTIVE
from gateway.feeds import tokens
from gateway.store.wal_signal import WalSignal, open_signal

KNOWN_MAX = 100_000  # remembered token lookups per process (about 200 bytes each)


class Found(NamedTuple):
    """A token's feed: its id, version, and whether its account is active."""

    feed_id: str
    version: int
    active: bool


_UNKNOWN = object()  # not remembered (None is a remembered miss)


class SqliteLookup:
    """The token lookup on the embedded store, run in the event loop on a connection of its own.

    An indexed point read on SQLite takes microseconds, far less than handing it to a thread
    and back (what the async driver does), and in WAL mode a reader never waits for writers.
    Answers are remembered until any connection, in this process or another, commits: seen in
    the wal-index header (gateway/store/wal_signal.py), or where that cannot be mapped, by
    ``PRAGMA data_version``, which SQLite changes on this connection whenever another commits. So
    a rotated or revoked token, or a bumped version, is seen from the commit on, in every
    process, for the price of comparing 96 bytes per fetch instead of the query. Answers are
    remembered by token, so that a warm fetch does not hash it again; malformed tokens still run
    the query with the decoy hash, as a miss of any shape costs the same.
    """

    def __init__(self, path: str, sql: str) -> None:
        self.path = path
        self.sql = sql
        self._trace: Callable[[str], None] | None = None
        self._conn: sqlite3.Connection | None = None
        self._cursor: sqlite3.Cursor | None = None  # kept: cheaper than one per fetch
        self._seen = -1
        self._signal: WalSignal | None = None
        self._known: dict[str, Found | None] = {}
        self._generation = 0

    @property
    def trace(self) -> Callable[[str], None] | None:
        """A callback given every statement run (tests count statements with it)."""
        return self._trace

    @trace.setter
    def trace(self, callback: Callable[[str], None] | None) -> None:
        self._trace = callback
        if self._conn is not None:
            self._conn.set_trace_callback(callback)

    def __call__(self, token: str) -> Found | None:
        """The feed of `token` (None for a malformed one)."""
        if self._conn is None:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA query_only=ON")
            # Never hold the loop long: a locked database falls back to the async path.
            conn.execute("PRAGMA busy_timeout=50")
            self._conn = conn
            self._cursor = conn.cursor()
            self._signal = open_signal(self.path, conn)
            conn.set_trace_callback(self._trace)
            weakref.finalize(self, conn.close)  # closed with the runtime, not left to GC
            if self._signal is not None:
                weakref.finalize(self, self._signal.close)
        self._observe()
        found = self._known.get(token, _UNKNOWN)
        if found is not _UNKNOWN:
            return found  # type: ignore[return-value]
        assert self._cursor is not None
        # fetchall: the statement runs to its end, so no read transaction stays open.
        rows = self._cursor.execute(self.sql, (tokens.lookup_hash(token),)).fetchall()
        found = (
            Found(str(rows[0][0]), int(rows[0][1]), rows[0][2] == ACTIVE)
            if rows and tokens.is_well_formed(token)
            else None
        )
        if len(self._known) >= KNOWN_MAX:
            # Unknown tokens are remembered too (a guessing client): bounded, then forgotten.
            self._known.clear()
        self._known[token] = found
        return found

    def generation(self) -> int:
        """A number that changes whenever anything was committed since the last look, -1 before
        the first lookup (answers derived from a lookup are current while it stays the same)."""
        if self._conn is None:
            return -1
        self._observe()
        return self._generation

    def _observe(self) -> None:
        """Forget every remembered answer when anything was committed since the last look."""
        signal = self._signal
        if signal is not None:
            changed = signal.changed()
        else:
            # fetchone reads the pragma's only row, which ends (and resets) the statement.
            assert self._cursor is not None
            version = self._cursor.execute("PRAGMA data_version").fetchone()[0]
            changed, self._seen = version != self._seen, version
        if changed:
            self._forget()

    def _forget(self) -> None:
        self._known.clear()
        self._generation += 1

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
            self._cursor = None
        if self._signal is not None:
            self._signal.close()
            self._signal = None
        self._known.clear()
        self._generation += 1
        self._seen = -1
