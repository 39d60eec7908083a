"""The embedded store's remembered token lookups see every commit of every process at once.

The feed endpoint remembers token answers until anything commits (gateway/feeds/sqlite_lookup.py):
in WAL mode it watches the wal-index header (gateway/store/wal_signal.py), otherwise it asks
``PRAGMA data_version``. Here another OS process commits with its own SQLite connection, as a
second `calgate serve` or an operator's ``sqlite3`` shell would, and the very next lookup must
answer from the new state.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.domain.account_states import ACTIVE
from gateway.feeds import tokens
from gateway.feeds.sqlite_lookup import Found, SqliteLookup

SQL = "SELECT id, version, status FROM feeds WHERE token_hash = ?"


def _commit_elsewhere(path: Path, statement: str, *params: object) -> None:
    """Run `statement` in a separate Python process on its own connection, and wait."""
    code = (
        "import sqlite3, sys, json\n"
        "c = sqlite3.connect(sys.argv[1])\n"
        "c.execute(sys.argv[2], json.loads(sys.argv[3]))\n"
        "c.commit()\n"
        "c.close()\n"
    )

    subprocess.run(
        [sys.executable, "-c", code, str(path), statement, json.dumps(list(params))],
        check=True,
        timeout=60,
    )


@pytest.fixture(params=["wal", "delete"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Path, str]:
    path = tmp_path / "calgate.db"
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA journal_mode={request.param}")
    conn.execute("CREATE TABLE feeds (id TEXT, version INTEGER, status TEXT, token_hash TEXT)")
    token = tokens.new_token()
    conn.execute("INSERT INTO feeds VALUES ('fed_1', 1, ?, ?)", (ACTIVE, tokens.lookup_hash(token)))
    conn.commit()
    conn.close()  # only the other processes and the lookup hold it open from here on
    return path, token


def test_a_commit_in_another_process_is_seen_by_the_next_lookup(
    database: tuple[Path, str],
) -> None:
    path, token = database
    lookup = SqliteLookup(str(path), SQL)
    seen: list[str] = []
    lookup.trace = seen.append
    try:
        assert lookup(token) == Found("fed_1", 1, True)
        seen.clear()
        for _ in range(5):
            assert lookup(token) == Found("fed_1", 1, True)
        # Nothing committed: no query, at most the change check itself.
        assert not [s for s in seen if s.startswith("SELECT")], seen

        _commit_elsewhere(path, "UPDATE feeds SET version = 2")
        assert lookup(token) == Found("fed_1", 2, True)

        _commit_elsewhere(path, "UPDATE feeds SET status = 'suspended'")
        assert lookup(token) == Found("fed_1", 2, False)

        other = tokens.new_token()  # a rotation: the old token stops at once, the new one works
        _commit_elsewhere(path, "UPDATE feeds SET token_hash = ?", tokens.lookup_hash(other))
        assert lookup(token) is None
        assert lookup(other) == Found("fed_1", 2, False)

        _commit_elsewhere(path, "DELETE FROM feeds")
        assert lookup(other) is None
    finally:
        lookup.close()


def test_wal_lookups_run_no_statement_while_nothing_commits(tmp_path: Path) -> None:
    path = tmp_path / "calgate.db"
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=wal")
    conn.execute("CREATE TABLE feeds (id TEXT, version INTEGER, status TEXT, token_hash TEXT)")
    token = tokens.new_token()
    conn.execute("INSERT INTO feeds VALUES ('fed_1', 1, ?, ?)", (ACTIVE, tokens.lookup_hash(token)))
    conn.commit()
    lookup = SqliteLookup(str(path), SQL)
    seen: list[str] = []
    try:
        assert lookup(token) == Found("fed_1", 1, True)
        lookup.trace = seen.append
        for _ in range(5):
            assert lookup(token) == Found("fed_1", 1, True)
        assert seen == []  # the wal-index header said nothing changed
        # A commit on a connection of this same process counts too.
        conn.execute("UPDATE feeds SET version = 3")
        conn.commit()
        assert lookup(token) == Found("fed_1", 3, True)
        assert [s for s in seen if s.startswith("SELECT")], seen
    finally:
        lookup.close()
        conn.close()


def test_the_generation_moves_with_every_commit_of_any_process(
    database: tuple[Path, str],
) -> None:
    """Warm answers (gateway/feeds/runtime.py `Warm`) hold while the generation does: it must move
    on each commit elsewhere, stay put otherwise, and the lookup must agree with it."""
    path, token = database
    lookup = SqliteLookup(str(path), SQL)
    try:
        assert lookup.generation() == -1  # nothing looked up yet: nothing to hold
        assert lookup(token) == Found("fed_1", 1, True)
        first = lookup.generation()
        assert first >= 0
        assert [lookup.generation() for _ in range(3)] == [first] * 3
        _commit_elsewhere(path, "UPDATE feeds SET version = 2")
        second = lookup.generation()
        assert second != first
        # The generation saw the commit first; the lookup still answers the new state.
        assert lookup(token) == Found("fed_1", 2, True)
        assert lookup.generation() == second
        lookup.close()
        assert lookup.generation() == -1  # closed: nothing is held
    finally:
        lookup.close()
