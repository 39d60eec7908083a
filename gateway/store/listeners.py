"""Listeners: what the features do, inside the same transaction, when the domain publishes.

The domain publishes a change (`publish(session, topic, event)`); each feature registers its
reaction when the app is built (gateway/features.py). The registry travels with the Store into
every session, as the settings do, so the lowest layers import no feature and no module global
is mutated. A store without registered listeners publishes to no one.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

Listener = Callable[[AsyncSession, Any], Awaitable[None]]
_KEY = "calgate.listeners"


class Listeners:
    """Listeners by topic, called in the order they were added."""

    def __init__(self) -> None:
        self._by_topic: dict[str, list[Listener]] = {}

    def add(self, topic: str, listener: Listener) -> None:
        """Call `listener(session, event)` for every event published on `topic`."""
        self._by_topic.setdefault(topic, []).append(listener)

    def of(self, topic: str) -> tuple[Listener, ...]:
        """The listeners of `topic`, in order."""
        return tuple(self._by_topic.get(topic, ()))


def attach(session: AsyncSession, listeners: Listeners) -> None:
    """Make `listeners` the ones this session publishes to."""
    session.info[_KEY] = listeners


async def publish(session: AsyncSession, topic: str, event: Any) -> None:
    """Run every listener of `topic` on `event`, in the caller's transaction."""
    listeners = session.info.get(_KEY)
    if isinstance(listeners, Listeners):
        for listener in listeners.of(topic):
            await listener(session, event)
