"""Files shipped inside the package: templates and the default config, found with importlib.

In a checkout, ``gateway/templates`` and ``gateway/calgate.toml`` are links to the top-level
``templates/`` and ``config/calgate.toml``; a wheel carries copies (package data). Either way
they are read through `importlib.resources`, never through a path relative to the source tree,
so an installed daemon finds them from any working directory.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import platformdirs

_PACKAGE = "gateway"
_CHECKOUT_MARKER = "pyproject.toml"


def _package_path(*parts: str) -> Path:
    # The package is installed as files (wheel or checkout), never zipped: a real path is stable.
    return Path(str(resources.files(_PACKAGE).joinpath(*parts)))


def templates_dir() -> Path:
    """The shipped Jinja2 templates (email/, sms/, web/)."""
    return _package_path("templates")


def default_config_text() -> str:
    """The shipped, commented configuration file (every setting at its default)."""
    return resources.files(_PACKAGE).joinpath("calgate.toml").read_text(encoding="utf-8")


def checkout_root() -> Path | None:
    """The source checkout the package runs from (editable install), or None when installed."""
    root = Path(__file__).resolve().parent.parent
    return root if (root / _CHECKOUT_MARKER).is_file() else None


def default_data_dir(environ: dict[str, str]) -> Path:
    """Where data lives when data_dir is not set.

    systemd's ``StateDirectory`` (``$STATE_DIRECTORY``) first, then ``var/`` relative to the
    working folder in a checkout (as the README's quick start expects), else the platform's
    per-user data folder (``~/.local/share/calgate`` on Linux), never inside site-packages.
    """
    state = environ.get("STATE_DIRECTORY", "").split(":")[0]
    if state:
        return Path(state)
    if checkout_root() is not None:
        return Path("var")
    return platformdirs.user_data_path("calgate")
