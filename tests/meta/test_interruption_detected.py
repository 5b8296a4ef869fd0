"""The interruption test can fail: with the clean-up of an interrupted start disabled (the start
still says it stopped its processes, but stops none), the test that interrupts `make up` after
the first component must fail, naming the processes left alive.

The clean-up is replaced in every Python process of the inner run (pytest, and the `make up`
it interrupts) by a `sitecustomize` module on PYTHONPATH that patches
`harness.local.stack.stop_launched` when that module is first imported.
"""

from __future__ import annotations

import os
import subprocess

import pytest
from harness.local.state import RunFolder
from harness.paths import REPO_ROOT

from .runs import run_suite

pytestmark = pytest.mark.meta

TEST = "test_interruption::test_an_interrupted_start_stops_what_it_launched[sigint-after-first-component]"
NO_CLEANUP = '''
import importlib.abc
import importlib.util
import sys


class _NoCleanup(importlib.abc.MetaPathFinder):
    """After harness.local.stack loads, its stop_launched stops nothing (and forgets nothing)."""

    def find_spec(self, name, path, target=None):
        if name != "harness.local.stack":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        load = spec.loader.exec_module

        def exec_module(module):
            load(module)
            module.stop_launched = lambda plan, run: [c.spec.name for c in plan.components if c.pid]

        spec.loader.exec_module = exec_module
        return spec


sys.meta_path.insert(0, _NoCleanup())
'''


def test_without_clean_up_the_interruption_test_fails(tmp_path):
    patch = tmp_path / "no-cleanup"
    patch.mkdir()
    (patch / "sitecustomize.py").write_text(NO_CLEANUP)
    pythonpath = os.pathsep.join(filter(None, [str(patch), str(REPO_ROOT / "tests"), os.environ.get("PYTHONPATH")]))
    try:
        run = run_suite(
            [f"tests/local/test_interruption.py::{TEST.split('::')[1]}"],
            tmp_path, run_name="meta-interrupt", env={"PYTHONPATH": pythonpath},
        )  # fmt: skip
    finally:
        # The inner test's own `make down` ran patched too, but down does not use stop_launched;
        # make sure nothing of the interrupted run is left, whatever happened.
        subprocess.run(
            ["make", "--no-print-directory", "down"], cwd=REPO_ROOT, capture_output=True, timeout=120,
            env=os.environ | {"RAG_RUN_NAME": "test-interrupt"},
        )  # fmt: skip
    assert TEST in run.failed_by_assertion(), run.tail()
    assert "still alive" in run.message(TEST), run.message(TEST)
    assert RunFolder.named("test-interrupt").alive_pids() == {}
