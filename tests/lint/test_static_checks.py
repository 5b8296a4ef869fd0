"""Static checks as tests, so `make test` (and CI) fails on them: shellcheck, actionlint, ruff."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from harness.paths import REPO_ROOT
from harness.tools import find

pytestmark = pytest.mark.lint

SCRIPTS = sorted([*(REPO_ROOT / "scripts").glob("*.sh"), REPO_ROOT / ".ci" / "run"])
WORKFLOWS = sorted((REPO_ROOT / ".github" / "workflows").glob("*.yml"))


def _tool(name: str) -> Path:
    path = find(name)
    if path is None:
        message = f"{name} is not installed; run `make bootstrap`"
        if os.environ.get("RAG_REQUIRE_TOOLS") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return path


def _run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=REPO_ROOT, capture_output=True, text=True)


def test_there_are_scripts_and_workflows_to_check():
    assert len(SCRIPTS) >= 4 and len(WORKFLOWS) >= 2


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_shellcheck(script: Path):
    result = _run([str(_tool("shellcheck")), str(script)])
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_every_workflow():
    shellcheck = _tool("shellcheck")
    result = _run([str(_tool("actionlint")), "-shellcheck", str(shellcheck), *map(str, WORKFLOWS)])
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff():
    result = _run([sys.executable, "-m", "ruff", "check", "tests", "benchmarks"])
    assert result.returncode == 0, result.stdout + result.stderr


# Files a run produces (process logs, diagnostics folders, packaged charts): none is tracked.
RUN_ARTEFACT_SUFFIXES = (".log", ".tgz", ".pid")
RUN_ARTEFACT_DIRS = ("diagnostics", "runs")


def test_no_run_artefacts_are_tracked():
    listed = _run(["git", "ls-files", "-z"])
    if listed.returncode != 0:
        pytest.skip(f"not a git checkout: {listed.stderr.strip()}")
    tracked = [Path(p) for p in listed.stdout.split("\0") if p]
    artefacts = [
        str(p) for p in tracked if p.suffix in RUN_ARTEFACT_SUFFIXES or set(p.parts[:-1]) & set(RUN_ARTEFACT_DIRS)
    ]
    assert not artefacts, f"run output is committed (it belongs in .cache/runs/): {artefacts}"
