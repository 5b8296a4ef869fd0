"""Tests of the import-layer check: a copy of the harness gets a planted cycle, an upward import or
a module outside every layer, and the check must fail naming the broken contract (and pass on the
unchanged copy)."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
from harness.paths import REPO_ROOT
from lint import imports

pytestmark = [pytest.mark.meta, pytest.mark.lint]


@dataclass(frozen=True)
class Plant:
    file: str  # under the harness package
    line: str  # appended to the file ("" with a new file)
    broken: frozenset[str]  # the contracts that must break


PLANTS = {
    # the cycle the kube lane's modules had: binaries -> lock -> teardown -> binaries
    "cycle in kube": Plant("kube/teardown.py", "from harness.kube import binaries", frozenset({imports.ACYCLIC})),
    # the cycle the CLI had: cli -> cluster_cli -> cli
    "cycle between entry points": Plant("cluster_cli.py", "from harness import cli", frozenset({imports.ACYCLIC})),
    # a stack client picking a target (registration -> targets -> targets.local -> registration)
    "client picks a target": Plant(
        "registration.py", "from harness.targets import get_target", frozenset({imports.LAYERS, imports.ACYCLIC})
    ),
    # a per-place client reaching up to the installer for a constant (which also closes a cycle:
    # bootstrap -> kube -> local -> bootstrap)
    "upward import": Plant(
        "local/programs.py", "from harness.bootstrap import bootstrap", frozenset({imports.LAYERS, imports.ACYCLIC})
    ),
    # a foundation importing a stack client
    "foundation imports a client": Plant("paths.py", "from harness import maas", frozenset({imports.LAYERS})),
    # a new module that no layer names
    "module outside the layers": Plant("unplaced.py", "", frozenset({imports.LAYERS})),
}


def _copy(dest: Path) -> Path:
    shutil.copytree(REPO_ROOT / "tests" / "harness", dest / "harness", ignore=shutil.ignore_patterns("__pycache__"))
    return dest


def test_the_unchanged_copy_passes(tmp_path: Path):
    report = imports.check(_copy(tmp_path))
    assert set(report.verdicts.values()) == {"KEPT"} and len(report.verdicts) == 2, report.text


@pytest.mark.parametrize("name", sorted(PLANTS))
def test_a_planted_break_fails_the_check(tmp_path: Path, name: str):
    plant = PLANTS[name]
    root = _copy(tmp_path)
    path = root / "harness" / plant.file
    text = path.read_text() if path.exists() else '"""A module no layer names."""\n'
    path.write_text(f"{text}\n{plant.line}\n" if plant.line else text)
    report = imports.check(root)
    assert report.returncode != 0, report.text
    broken = {name for name, verdict in report.verdicts.items() if verdict == "BROKEN"}
    assert broken == set(plant.broken), report.text
