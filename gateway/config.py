"""Settings: defaults here, overridden by a TOML file, overridden by CALGATE_* variables.

`Settings` composes the per-feature setting groups of `gateway/settings/` (each group holds its
fields, their descriptions and validators); `gateway/settings/loading.py` reads the file and the
environment. This module is the one import path for both: ``from gateway.config import
Settings, load_settings``.
"""

from __future__ import annotations

from pathlib import Path

from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from gateway.settings.core import CoreSettings
from gateway.settings.feeds import FeedSettings
from gateway.settings.loading import (
    DEFAULT_CONFIG_FILE,
    ENV_PREFIX,
    default_config_file,
    describe_source,
    load,
)
from gateway.settings.notify import NotifySettings
from gateway.settings.providers import GoogleSettings, MicrosoftSettings
from gateway.settings.security import SecuritySettings
from gateway.settings.service import ServiceSettings, WebSettings
from gateway.settings.sync import SyncSettings
from gateway.settings.webhooks import WebhookSettings

__all__ = [
    "DEFAULT_CONFIG_FILE",
    "ENV_PREFIX",
    "Settings",
    "default_config_file",
    "describe_source",
    "load_settings",
]


# pydantic orders fields from the last base to the first, so the groups are listed last-first:
# the fields (and the first bad setting reported) keep the order of config/calgate.toml.
class Settings(
    MicrosoftSettings,
    WebSettings,
    GoogleSettings,
    SecuritySettings,
    WebhookSettings,
    SyncSettings,
    NotifySettings,
    FeedSettings,
    ServiceSettings,
    CoreSettings,
):
    """Every setting of the daemon. The description of each field is its documentation."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid", frozen=True)

    @property
    def is_sqlite(self) -> bool:
        """True when the store is the embedded SQLite file."""
        return self.database_url.startswith("sqlite")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The environment beats the file (passed as init kwargs), which beats the defaults.
        return (env_settings, init_settings)


def load_settings(config_file: Path | None = None) -> Settings:
    """Read settings from `config_file` (or config/calgate.toml if present) and the environment.

    Raises ConfigError with one line naming the first bad setting and its source.
    """
    return load(Settings, config_file)
