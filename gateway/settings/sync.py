"""Calendar sync: which providers are offered, the window, polling and conflict rules."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings


class SyncSettings(BaseSettings):
    """The [sync] section."""

    sync_poll_minutes: float = Field(
        5.0, gt=0, description="How often each connected calendar is read for changes."
    )
    sync_tick_seconds: float = Field(
        2.0, gt=0, description="How often the daemon looks for integrations to push or pull."
    )
    sync_window_past_days: int = Field(
        30, ge=0, description="How far back appointments are pushed and busy time is read."
    )
    sync_window_future_days: int = Field(
        365, ge=1, description="How far ahead appointments are pushed and busy time is read."
    )
    sync_full_resync_hours: float = Field(
        24.0,
        gt=0,
        description="A full listing this often moves the window forward (recurring busy time).",
    )
    sync_conflict_policy: Literal["calgate", "remote"] = Field(
        "calgate",
        description="Changed on both sides since the last sync: calgate = our version is "
        "written back; remote = the calendar's time is taken. Either way it is recorded.",
    )
    sync_deleted_policy: Literal["cancel", "restore"] = Field(
        "cancel",
        description="Our event deleted in the calendar: cancel the appointment, or restore "
        "the event.",
    )
    sync_empty_guard_min: int = Field(
        3,
        ge=1,
        description="A calendar that suddenly lists none of our events while we hold at "
        "least this many stops the sync (status paused) instead of cancelling them all.",
    )
    sync_max_backoff_minutes: float = Field(
        60.0, gt=0, description="Longest wait between retries of a failing integration."
    )
    sync_log_runs: bool = Field(
        False,
        description="One log line per sync run (integration id, process, start and end; no "
        "personal data), written whatever log_level says: to audit that no integration is "
        "synced by two processes at once.",
    )
    sync_connectors: str = Field(
        "connectors.caldav, connectors.google, connectors.outlook",
        description="Calendar providers offered, as comma-separated Python modules, each with a "
        "provider(settings) function (connectors/registry.py).",
    )
    caldav_timeout_seconds: float = Field(
        30.0, gt=0, description="Timeout of each request to a CalDAV server."
    )
