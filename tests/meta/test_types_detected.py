"""Tests of the mypy check: a copy of the harness with planted type errors, among them an untyped
function and a bare generic (which only the harness's strict settings refuse), must fail it naming
each one; the unchanged copy passes. Both runs share one cache, seeded from the real run's."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from harness.paths import CACHE_DIR, REPO_ROOT
from lint.types import mypy

pytestmark = [pytest.mark.meta, pytest.mark.lint]

PLANTS = {  # file -> (code appended, what mypy must say about it)
    "paths.py": ('COUNT: int = "three"\n', "Incompatible types in assignment"),
    "redact.py": ("def unmasked(text):\n    return text\n", "Function is missing a type annotation"),
    "errors.py": ("FIELDS: dict = {}\n", "Missing type arguments for generic type"),
}


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    shutil.copytree(
        REPO_ROOT / "tests" / "harness", tmp_path / "tests" / "harness", ignore=shutil.ignore_patterns("__pycache__")
    )
    if (CACHE_DIR / "mypy").is_dir():
        shutil.copytree(CACHE_DIR / "mypy", tmp_path / "cache")
    return tmp_path


def test_planted_type_errors_fail_and_the_unchanged_copy_passes(copy: Path):
    unchanged = mypy("tests/harness", cwd=copy, cache_dir=copy / "cache")
    assert unchanged.returncode == 0, unchanged.stdout + unchanged.stderr
    for file, (code, _) in PLANTS.items():
        path = copy / "tests" / "harness" / file
        path.write_text(path.read_text() + "\n\n" + code)
    planted = mypy("tests/harness", cwd=copy, cache_dir=copy / "cache")
    assert planted.returncode == 1, planted.stdout + planted.stderr
    errors = [line for line in planted.stdout.splitlines() if ": error: " in line]
    for file, (_, message) in PLANTS.items():
        assert any(line.startswith(f"tests/harness/{file}:") and message in line for line in errors), planted.stdout
    assert len(errors) == len(PLANTS), planted.stdout
