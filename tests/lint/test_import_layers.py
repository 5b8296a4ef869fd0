"""The harness's layers only point down and its packages have no import cycles (import-linter)."""

from __future__ import annotations

import pytest
from harness.paths import REPO_ROOT

from lint import imports

pytestmark = pytest.mark.lint


def test_harness_layers_point_down_and_have_no_cycles():
    report = imports.check(REPO_ROOT / "tests")
    assert report.verdicts == {imports.LAYERS: "KEPT", imports.ACYCLIC: "KEPT"}, report.text
    assert report.returncode == 0, report.text
