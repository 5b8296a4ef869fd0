"""The chart tests of the umbrella's top-level key check fail when the check is gone.

A copy of charts/ without charts/rag/templates/validate.yaml stands for the broken chart
(RAG_CHARTS_DIR points the chart tests at it); the tree itself is never changed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from harness.paths import CHARTS_DIR, REPO_ROOT

pytestmark = pytest.mark.meta

CLAIM_TESTS = "tests/charts/test_top_level_keys.py"
SUITE_TIMEOUT_S = 300


def run_claim_tests(charts: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "RAG_CHARTS_DIR": str(charts)}
    argv = [sys.executable, "-m", "pytest", CLAIM_TESTS, "-q", "-p", "no:cacheprovider", "-rfE"]
    return subprocess.run(argv, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=SUITE_TIMEOUT_S)


def test_removing_the_top_level_key_check_fails_the_typo_tests(tmp_path: Path) -> None:
    broken = tmp_path / "charts"
    shutil.copytree(CHARTS_DIR, broken, symlinks=True)  # charts/rag/charts/* stay relative symlinks
    (broken / "rag" / "templates" / "validate.yaml").unlink()
    result = run_claim_tests(broken)
    failed = {line.split("::")[1].split("[")[0] for line in result.stdout.splitlines() if line.startswith("FAILED")}
    assert result.returncode == 1, result.stdout[-3000:]
    assert failed == {
        "test_unknown_top_level_key_fails_naming_it_and_the_nearest_key",
        "test_every_unknown_key_is_listed_in_one_failure",
    }, result.stdout[-3000:]


def test_the_claim_tests_pass_on_an_unbroken_copy(tmp_path: Path) -> None:
    """Control: the copy itself is not what fails them."""
    intact = tmp_path / "charts"
    shutil.copytree(CHARTS_DIR, intact, symlinks=True)
    result = run_claim_tests(intact)
    assert result.returncode == 0, result.stdout[-3000:]
