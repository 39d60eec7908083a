"""Arrows point down: the store and the domain import none of the features built on them,
and the sync engine, privacy and notifications do not know the webhook feature.

The features react to domain changes, integration status changes, notification outcomes, SMS
opt-outs and the retention sweep through listeners registered when the app is built
(gateway/features.py), so a walk of every import in those folders (at any depth, including
imports inside functions) must find none of them.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LOW = ("gateway/store", "gateway/domain")
ABOVE = ("gateway.feeds", "gateway.notify", "gateway.sync", "gateway.api", "gateway.privacy")


def imported(path: Path) -> list[str]:
    """Every module name `path` imports, wherever the import statement is."""
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
            names += [f"{node.module}.{alias.name}" for alias in node.names]
    return names


# Folders that publish to features they must not name: folder -> the forbidden packages.
UNAWARE = {
    "gateway/sync": ("gateway.webhooks",),
    "gateway/privacy": ("gateway.webhooks",),
    "gateway/notify": ("gateway.webhooks",),
}


def _upward(path: Path, above: tuple[str, ...] = ABOVE) -> list[str]:
    return [n for n in imported(path) if n in above or n.startswith(tuple(a + "." for a in above))]


def _found(folder: str, above: tuple[str, ...]) -> dict[str, list[str]]:
    files = sorted((ROOT / folder).rglob("*.py"))
    assert files
    return {str(f.relative_to(ROOT)): up for f in files if (up := _upward(f, above))}


@pytest.mark.parametrize("folder", LOW)
def test_lower_layers_import_no_feature(folder: str) -> None:
    assert _found(folder, ABOVE) == {}


@pytest.mark.parametrize("folder", sorted(UNAWARE))
def test_sync_privacy_and_notify_do_not_know_the_webhooks(folder: str) -> None:
    assert _found(folder, UNAWARE[folder]) == {}


def test_the_walk_sees_imports_inside_functions(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("def f():\n    from gateway.notify import planner\n")
    assert _upward(sample) == ["gateway.notify", "gateway.notify.planner"]
