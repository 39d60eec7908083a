"""The connector contract against the in-memory provider."""

from __future__ import annotations

import itertools

import pytest

from connectors.base import Credentials, Event
from connectors.memory import MemoryConnector, MemoryServer, serve
from tests.connectors.contract import START, ConnectorContract, Side

_names = itertools.count()


@pytest.fixture
def side() -> Side:
    server = MemoryServer(password="pw")
    server.add_calendar("work")
    url = f"memory://contract-{next(_names)}"
    serve(url, server)

    async def put_foreign(event: Event) -> str:
        href = f"{event.uid}-other.ics"
        server.put("work", href, event)
        return href

    async def remove(href: str) -> None:
        server.remove("work", href)

    async def expired_cursor() -> str:
        cursor = str(server._last)
        server.put("work", "x.ics", Event("x@y", START, START))
        server.expire_cursors()
        return cursor

    return Side(
        MemoryConnector(Credentials(url, "u", "pw")),
        "work",
        put_foreign,
        remove,
        expired_cursor,
        lambda: MemoryConnector(Credentials(url, "u", "wrong")),
    )


class TestMemoryConnector(ConnectorContract):
    pass
