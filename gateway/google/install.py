"""Plugging Google into the daemon: connector settings and the sync engine's provider hooks."""

from __future__ import annotations

from connectors import google
from gateway.config import Settings
from gateway.google import channels, consent
from gateway.sync import integrations, schedule


def install(settings: Settings) -> None:
    """Configure the Google connector from the settings and register with the provider-neutral
    engine: the consent flow, the pre-purge step (stop push channels), and the longer backstop
    poll while push channels work. Idempotent."""
    consent.configure(settings)
    integrations.CONSENT[google.GoogleConnector.name] = consent.begin
    if channels.stop_all not in integrations.BEFORE_PURGE:
        integrations.BEFORE_PURGE.append(channels.stop_all)
    if channels.poll_minutes not in schedule.POLL_MINUTES:
        schedule.POLL_MINUTES.append(channels.poll_minutes)
