"""Reading settings: defaults, overridden by a TOML file, overridden by CALGATE_* variables.

The TOML file groups settings in sections (``[database] url = ...``); each key maps to the flat
setting ``<section>_<key>`` (``database_url``), whose environment variable is
``CALGATE_<SECTION>_<KEY>`` (``CALGATE_DATABASE_URL``). Top-level keys map to themselves
(``public_url`` ← ``CALGATE_PUBLIC_URL``). An unknown key or a bad value stops start-up with one
line naming the setting and where it came from.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Collection
from pathlib import Path
from typing import Any, TypeVar

from pydantic import ValidationError
from pydantic_settings import BaseSettings

from gateway.errors import ConfigError

ENV_PREFIX = "CALGATE_"
DEFAULT_CONFIG_FILE = Path("config/calgate.toml")
# Top-level TOML keys that are settings by themselves rather than sections.
_TOP_LEVEL = {"public_url", "data_dir", "default_timezone", "default_country"}

SettingsT = TypeVar("SettingsT", bound=BaseSettings)


def flatten_toml(data: dict[str, Any], source: str, fields: Collection[str]) -> dict[str, Any]:
    """Turn ``{"database": {"url": ...}}`` into ``{"database_url": ...}``; reject keys that are
    not in `fields`."""
    flat: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            for sub, subvalue in value.items():
                name = f"{key}_{sub}"
                if name not in fields or name in _TOP_LEVEL:
                    raise ConfigError(f"unknown setting [{key}] {sub} in {source}")
                flat[name] = subvalue
        elif key in _TOP_LEVEL:
            flat[key] = value
        else:
            raise ConfigError(f"unknown setting {key} in {source}")
    return flat


def describe_source(name: str, config_file: Path | None) -> str:
    """Where setting `name` came from: its environment variable, else `config_file`."""
    env = ENV_PREFIX + name.upper()
    if env in os.environ:
        return env
    return str(config_file) if config_file else "defaults"


def default_config_file() -> Path | None:
    """The file settings are read from when none is given: CALGATE_CONFIG, else
    config/calgate.toml if present."""
    env_file = os.environ.get(ENV_PREFIX + "CONFIG")
    if env_file:
        return Path(env_file)
    return DEFAULT_CONFIG_FILE if DEFAULT_CONFIG_FILE.is_file() else None


def load(model: type[SettingsT], config_file: Path | None = None) -> SettingsT:
    """Build `model` from `config_file` (or config/calgate.toml if present) and the environment.

    Raises ConfigError with one line naming the first bad setting and its source.
    """
    if config_file is None:
        config_file = default_config_file()
    fields = model.model_fields
    values: dict[str, Any] = {}
    if config_file is not None:
        try:
            raw = tomllib.loads(config_file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"config file {config_file} does not exist") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {config_file} is not valid TOML: {exc}") from None
        values = flatten_toml(raw, str(config_file), fields)
    unknown_env = sorted(
        key
        for key in os.environ
        if key.startswith(ENV_PREFIX)
        and key != ENV_PREFIX + "CONFIG"
        and key[len(ENV_PREFIX) :].lower() not in fields
    )
    if unknown_env:
        raise ConfigError(f"unknown setting {unknown_env[0]} in the environment")
    try:
        return model(**values)
    except ValidationError as exc:
        first = exc.errors()[0]
        name = str(first["loc"][0]) if first["loc"] else "?"
        message = str(first["msg"]).removeprefix("Value error, ")
        raise ConfigError(
            f"bad setting {name} (from {describe_source(name, config_file)}): {message}"
        ) from None
