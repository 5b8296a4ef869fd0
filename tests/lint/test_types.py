"""mypy passes: strict on the harness package, the default checks on the test modules."""

from __future__ import annotations

import pytest

from lint.types import mypy

pytestmark = pytest.mark.lint


def test_mypy_finds_no_errors():
    result = mypy()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Success: no issues found" in result.stdout and " source files" in result.stdout
