"""One naming convention for meta tests: tests/meta/test_<what the claim's tests check>_detected.py."""

from __future__ import annotations

import pytest
from harness.paths import REPO_ROOT

pytestmark = pytest.mark.lint

META = REPO_ROOT / "tests" / "meta"


def test_every_meta_test_file_is_named_detected():
    files = sorted(p.name for p in META.glob("test_*.py"))
    assert len(files) >= 10, files
    assert [name for name in files if not name.endswith("_detected.py")] == []
