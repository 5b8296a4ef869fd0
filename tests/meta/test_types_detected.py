"""Tests of the mypy check: a copy of the harness with planted type errors, among them an untyped
function and a bare generic (which only the harness's strict settings refuse) and a target missing a
method of the Target protocol, must fail it naming each one; the unchanged copy passes. Both runs share
one cache, seeded from the real run's."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from harness.paths import CACHE_DIR, REPO_ROOT
from lint.types import mypy

pytestmark = [pytest.mark.meta, pytest.mark.lint]

END = ""  # plant at the end of the file
PLANTS = (  # (file, text replaced, planted text, file mypy must name, what it must say)
    ("paths.py", END, 'COUNT: int = "three"\n', "paths.py", "Incompatible types in assignment"),
    ("redact.py", END, "def unmasked(text):\n    return text\n", "redact.py", "Function is missing a type annotation"),
    ("errors.py", END, "FIELDS: dict = {}\n", "errors.py", "Missing type arguments for generic type"),
    # a target that drops a method of the Target protocol no longer is a Target where get_target returns it
    ("targets/local.py", "    def close(self)", "    def shut(self)", "targets/__init__.py", '"Target"'),
)


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
    for file, old, new, _, _ in PLANTS:
        path = copy / "tests" / "harness" / file
        text = path.read_text()
        assert old in text, f"{file} no longer contains {old!r}: update this meta test"
        path.write_text(text + "\n\n" + new if old == END else text.replace(old, new, 1))
    planted = mypy("tests/harness", cwd=copy, cache_dir=copy / "cache")
    assert planted.returncode == 1, planted.stdout + planted.stderr
    errors = [line for line in planted.stdout.splitlines() if ": error: " in line]
    for _, _, _, named, message in PLANTS:
        assert any(line.startswith(f"tests/harness/{named}:") and message in line for line in errors), planted.stdout
