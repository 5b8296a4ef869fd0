"""Finding the pinned tools that `make bootstrap` installs, with a fix when one is missing."""

from __future__ import annotations

import shutil
from pathlib import Path

from harness.errors import ToolMissing
from harness.paths import BIN_DIR, VENV_DIR


class MissingTool(ToolMissing):
    pass


def find(name: str) -> Path | None:
    """Look in .cache/bin, then the project venv, then PATH."""
    for candidate in (BIN_DIR / name, VENV_DIR / "bin" / name):
        if candidate.is_file():
            return candidate
    found = shutil.which(name)
    return Path(found) if found else None


def require(name: str) -> Path:
    path = find(name)
    if path is None:
        raise MissingTool(f"{name} not found in {BIN_DIR}, {VENV_DIR / 'bin'} or PATH; run `make bootstrap`")
    return path
