"""Tests of the mypy check: a copy of the harness with planted type errors, among them an untyped
function and a bare generic (which only the harness's strict settings refuse) and a target missing a
method of the Target protocol, must fail it naming each one; the unchanged copy passes. Test modules
are checked too: errors planted in the e2e helpers and in the gateway's Lua tests (whose model of
Envoy must resolve through their package for its types to count) fail it as well. Every run shares
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
# The same, in test modules (paths under tests/): the default checks, not the harness's strict ones.
TEST_PLANTS = (
    # an optional header used as a number
    ("e2e/support.py", END, "def half(reply: Reply) -> int:\n    return reply.rate.remaining_tokens // 2\n",
     "e2e/support.py", "Unsupported operand types for //"),
    # a wrong argument to the gateway's model of Envoy: only an error when its import resolves
    ("unit/gateway/test_gateway_lua.py", END, 'WORDY = model_server(total_tokens="many")\n',
     "unit/gateway/test_gateway_lua.py", 'Argument "total_tokens" to "model_server"'),
)  # fmt: skip


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    """The harness, the e2e helpers and the gateway's Lua tests, with a copy of the mypy cache."""
    for part in ("harness", "e2e", "unit/gateway"):
        shutil.copytree(
            REPO_ROOT / "tests" / part, tmp_path / "tests" / part, ignore=shutil.ignore_patterns("__pycache__")
        )
    if (CACHE_DIR / "mypy").is_dir():
        shutil.copytree(CACHE_DIR / "mypy", tmp_path / "cache")
    return tmp_path


Plant = tuple[str, str, str, str, str]


def test_planted_type_errors_fail_and_the_unchanged_copy_passes(copy: Path):
    assert_planted_errors_named(copy, "tests/harness", ("tests/harness",), PLANTS)


def test_planted_type_errors_in_test_modules_fail_and_the_unchanged_copies_pass(copy: Path):
    assert_planted_errors_named(copy, "tests", ("tests/e2e/support.py", "tests/unit/gateway"), TEST_PLANTS)


def assert_planted_errors_named(copy: Path, root: str, checked: tuple[str, ...], plants: tuple[Plant, ...]) -> None:
    """mypy passes on `checked` in the unchanged copy, then fails on it with each plant (file
    paths under `root`) named at its file with its message."""
    unchanged = mypy(*checked, cwd=copy, cache_dir=copy / "cache")
    assert unchanged.returncode == 0, unchanged.stdout + unchanged.stderr
    for file, old, new, _, _ in plants:
        path = copy / root / file
        text = path.read_text()
        assert old in text, f"{file} no longer contains {old!r}: update this meta test"
        path.write_text(text + "\n\n" + new if old == END else text.replace(old, new, 1))
    planted = mypy(*checked, cwd=copy, cache_dir=copy / "cache")
    assert planted.returncode == 1, planted.stdout + planted.stderr
    errors = [line for line in planted.stdout.splitlines() if ": error: " in line]
    for _, _, _, named, message in plants:
        assert any(line.startswith(f"{root}/{named}:") and message in line for line in errors), planted.stdout
