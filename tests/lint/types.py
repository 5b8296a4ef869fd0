"""mypy over the tests and the harness, configured in pyproject's [tool.mypy]."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from harness.paths import CACHE_DIR, REPO_ROOT

CONFIG = REPO_ROOT / "pyproject.toml"


def mypy(*paths: str, cwd: Path = REPO_ROOT, cache_dir: Path = CACHE_DIR / "mypy") -> subprocess.CompletedProcess[str]:
    """Run mypy with the project's configuration on `paths` (default: its `files`, i.e. tests/)."""
    argv = [sys.executable, "-m", "mypy", "--config-file", str(CONFIG), "--cache-dir", str(cache_dir), *paths]
    env = {k: v for k, v in os.environ.items() if k != "MYPYPATH"}
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
