"""Garbage-collector settings of the long-running daemon."""

from __future__ import annotations

import gc


def settle_after_startup() -> None:
    """Keep what start-up built out of the collector's full passes (`gc.freeze`).

    The imported modules, the app, its templates and caches live as long as the process.
    Scanning them in every full collection paused the event loop for tens of milliseconds at a
    time, long enough to leave every SMTP connection of a delivery burst idle. Call once, after
    start-up and before serving.
    """
    gc.collect()
    gc.freeze()
