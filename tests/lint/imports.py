"""The harness's import contracts (pyproject's [tool.importlinter]), checked with import-linter.

`check(root)` checks the `harness` package found under `root` (tests/ for the real one, a copy
for the meta tests) and returns each contract's verdict by name, plus the full report."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from harness.paths import REPO_ROOT

CONFIG = REPO_ROOT / "pyproject.toml"
LAYERS = "Layers only point down: entry points -> targets -> stack clients -> foundations"
ACYCLIC = "No import cycles between the modules of a package"
VERDICT = re.compile(r"^(?P<name>.+?) (?P<verdict>KEPT|BROKEN)$", re.MULTILINE)


@dataclass(frozen=True)
class Report:
    returncode: int
    verdicts: dict[str, str]  # contract name -> KEPT | BROKEN
    text: str


def lint_imports() -> Path:
    """import-linter's command, installed next to this Python by `make bootstrap` (the dev extra)."""
    path = Path(sys.executable).with_name("lint-imports")
    if not path.is_file():
        found = shutil.which("lint-imports")
        if found is None:
            raise FileNotFoundError("lint-imports (import-linter) is not installed: run `make bootstrap`")
        path = Path(found)
    return path


def check(root: Path) -> Report:
    """Check the contracts against the `harness` package under `root`; no cache is written."""
    env = {**os.environ, "PYTHONPATH": str(root)}
    argv = [str(lint_imports()), "--no-cache", str(CONFIG)]
    result = subprocess.run(argv, cwd=root, env=env, capture_output=True, text=True, timeout=120)
    text = result.stdout + result.stderr
    verdicts = {m["name"].strip(): m["verdict"] for m in VERDICT.finditer(text)}
    return Report(result.returncode, verdicts, text)
