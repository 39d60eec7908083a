"""npm packages the tests run (ical.js, axe-core, jsQR), installed together into tests/.node."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

NODE_DIR = Path(__file__).parent / ".node"  # gitignored; installed by the suite when missing


def node_missing() -> str | None:
    """Why node packages cannot run here, or None."""
    if shutil.which("node") is None:
        return "node is not installed (apt-get install nodejs npm)"
    if shutil.which("npm") is None:
        return "npm is not installed (apt-get install npm)"
    return None


# Every package the suite uses, installed together: npm prunes what a later install omits.
PACKAGES = {"ical.js": "ical.js@2", "axe-core": "axe-core@4", "jsqr": "jsqr@1"}


def npm_install(cache: Path) -> str | None:
    """npm-install `PACKAGES` into tests/.node unless all are there; why it failed, or None."""
    if all((NODE_DIR / "node_modules" / name / "package.json").is_file() for name in PACKAGES):
        return None
    if (missing := node_missing()) is not None:
        return missing
    NODE_DIR.mkdir(exist_ok=True)
    specs = list(PACKAGES.values())
    command = ["npm", "install", "--cache", str(cache), "--prefix", str(NODE_DIR)]
    command += ["--no-audit", "--no-fund", "--no-save", "--fetch-retries=1"]
    command += ["--fetch-timeout=30000", *specs]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=240, check=False)
    except subprocess.TimeoutExpired:
        return f"npm install {' '.join(specs)} timed out (is the npm registry reachable?)"
    if done.returncode != 0:
        return f"npm install {' '.join(specs)} failed (registry unreachable?): {done.stderr[-300:]}"
    return None
