"""Tests of the one-wait-helper check: a copy of the harness gets a planted own wait (a tenacity
import, a hand-written deadline loop) and the check must name it; the unchanged copy passes, and the
wait helper itself may use tenacity."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from harness.paths import REPO_ROOT
from lint import waits

pytestmark = [pytest.mark.meta, pytest.mark.lint]

# (file under the harness package, line appended to it)
PLANTS = {
    "tenacity imported": ("maas.py", "from tenacity import Retrying, stop_after_delay"),
    "tenacity submodule imported": ("local/postgres.py", "from tenacity.wait import wait_fixed"),
    "tenacity module imported": ("kube/cluster.py", "import tenacity"),
    "deadline loop": ("kube/teardown.py", "    deadline = time.monotonic() + grace_s"),
    "deadline from `from time import`": ("local/processes.py", "    deadline = monotonic() + timeout"),
}


def _copy(dest: Path) -> Path:
    shutil.copytree(REPO_ROOT / "tests" / "harness", dest / "harness", ignore=shutil.ignore_patterns("__pycache__"))
    return dest / "harness"


def test_the_unchanged_copy_passes(tmp_path: Path):
    root = _copy(tmp_path)
    assert "tenacity" in (root / waits.HELPER).read_text()  # the helper itself is allowed
    assert waits.findings(root) == []


@pytest.mark.parametrize("name", sorted(PLANTS))
def test_a_planted_own_wait_is_named(tmp_path: Path, name: str):
    file, line = PLANTS[name]
    root = _copy(tmp_path)
    path = root / file
    path.write_text(path.read_text() + line + "\n")
    found = waits.findings(root)
    assert len(found) == 1 and found[0].startswith(f"{file}:") and found[0].endswith(line.strip()), found
