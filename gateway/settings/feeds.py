"""Calendar feeds: what they show, how often apps refresh, caching and leaked-link checks."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings


class FeedSettings(BaseSettings):
    """The [feeds] section."""

    feeds_refresh_minutes: int = Field(
        60,
        ge=5,
        le=10080,
        description="How often calendar apps are asked to refresh a feed (REFRESH-INTERVAL and "
        "X-PUBLISHED-TTL).",
    )
    feeds_past_days: int = Field(
        60, ge=0, le=3660, description="How far back a feed shows appointments."
    )
    feeds_future_days: int = Field(
        730, ge=1, le=3660, description="How far ahead a feed shows appointments."
    )
    feeds_cancelled_grace_days: float = Field(
        7.0,
        ge=0,
        description="How long a cancelled appointment stays in feeds as STATUS:CANCELLED, so "
        "that apps remove it, before it leaves the feed.",
    )
    feeds_ip_retention_days: float = Field(
        7.0,
        gt=0,
        le=7,
        description="How long the address of a feed fetch is kept (for spotting leaked links); "
        "after this only the app family and counts remain. At most 7 (the access record covers "
        "the last 7 days).",
    )
    feeds_cache_mb: int = Field(
        256, ge=1, description="Memory for rendered feed bodies per process (least used leave)."
    )
    feeds_miss_free: int = Field(
        20,
        ge=1,
        description="Unknown-token requests one address may make per window before its "
        "further misses are slowed down.",
    )
    feeds_miss_window_seconds: float = Field(
        600.0, gt=0, description="The window over which misses of one address are counted."
    )
    feeds_miss_delay_max_seconds: float = Field(
        10.0, ge=0, description="The longest a missed feed request is held before its 404."
    )
    feeds_remember_tokens_postgres: bool = Field(
        False,
        description="On PostgreSQL, answer warm feed fetches from memory, forgetting a link when "
        "PostgreSQL notifies its change (LISTEN/NOTIFY): no query per fetch, but another process "
        "may serve a rotated or revoked link until the notification reaches it (microseconds on "
        "one host, longer under load). Off: every fetch asks the database, so a link stops at "
        "the commit in every process.",
    )
    feeds_access_flush_seconds: float = Field(
        30.0,
        gt=0,
        description="How often each process writes its feed fetch counts to the database.",
    )
