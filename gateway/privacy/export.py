"""The raw dump of an account's data (or of one person's) as one JSON document, streamed.

Format (``calgate.export``, version 1; docs/data-map.md lists every table):

    {"format": "calgate.export", "version": 1, "scope": {"kind": "account", "id": "acc_..."},
     "exported_at": "...Z", "excluded": {table: reason}, "hidden_columns": {table: {col: reason}},
     "tables": {table: [row, ...], ...}}

Rows are read in primary-key order in batches of `BATCH`, each batch in a short transaction of
its own, and written out as they come: memory stays constant whatever the number of rows, and
no batch holds SQLite's write lock for long. The document is therefore not a snapshot: a change
made while it streams may or may not be in it.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Table, select

from gateway.privacy import datamap
from gateway.store.db import Store
from gateway.store.types import utcnow

FORMAT = "calgate.export"
VERSION = 1
BATCH = 2000


@dataclass(frozen=True)
class Section:
    """One list of the document: the rows of `table` matching `where`, under `name`."""

    name: str
    table: Table
    where: ColumnElement[bool]


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    return str(value)


def _dumps(value: Any) -> str:
    return json.dumps(value, default=_default, ensure_ascii=False, separators=(",", ":"))


def iso(value: datetime) -> str:
    """An instant as the export writes it (UTC, ``Z``)."""
    return str(_default(value))


async def _rows(store: Store, section: Section) -> AsyncIterator[dict[str, Any]]:
    hidden = (
        datamap.TABLES[section.table.name].hidden if section.table.name in datamap.TABLES else {}
    )
    columns = [c for c in section.table.columns if c.name not in hidden]
    (key,) = section.table.primary_key.columns
    last: Any = None
    while True:
        query = select(*columns).where(section.where).order_by(key).limit(BATCH)
        if last is not None:
            query = query.where(key > last)
        async with store.transaction() as session:
            batch = (await session.execute(query)).mappings().all()
        for row in batch:
            yield dict(row)
        if len(batch) < BATCH:
            return
        last = batch[-1][key.name]


async def stream_document(
    store: Store, scope: dict[str, str], sections: list[Section]
) -> AsyncIterator[bytes]:
    """The export document of `sections`, in pieces of bytes."""
    names = {s.table.name for s in sections}
    header = {
        "format": FORMAT,
        "version": VERSION,
        "scope": scope,
        "exported_at": iso(utcnow()),
        "excluded": {n: e.excluded for n, e in datamap.TABLES.items() if e.excluded},
        "hidden_columns": {
            n: e.hidden for n, e in datamap.TABLES.items() if e.hidden and n in names
        },
    }
    yield (_dumps(header)[:-1] + ',"tables":{').encode()
    for index, section in enumerate(sections):
        yield (("," if index else "") + _dumps(section.name) + ":[").encode()
        pieces: list[str] = []
        first = True
        async for row in _rows(store, section):
            pieces.append(("" if first else ",") + _dumps(row))
            first = False
            if len(pieces) >= BATCH:
                yield "".join(pieces).encode()
                pieces = []
        pieces.append("]")
        yield "".join(pieces).encode()
    yield b"}}\n"


def account_sections(account_id: str) -> list[Section]:
    """Every exported table, each limited to the account's rows."""
    return [
        Section(name, datamap.table(name), datamap.belongs_to(name, account_id))
        for name in datamap.exported_tables()
    ]


def account_export(store: Store, account_id: str) -> AsyncIterator[bytes]:
    """The whole account, as `GET /v1/export` and `calgate export` give it."""
    return stream_document(
        store, {"kind": "account", "id": account_id}, account_sections(account_id)
    )
