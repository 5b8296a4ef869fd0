"""The fresh-volume claim can fail: without the chart's create-tables init container,
llama-stack creates its SQL tables on the first requests and the local test of a new data
volume (tests/local/test_fresh_volume.py) fails on `no such table` answers.

The breakage runs in its own pytest process and local stack (run name `test-fresh-volume`,
the claim test's own), so it needs no other stack.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from harness.paths import REPO_ROOT

from .runs import parse_junit

pytestmark = pytest.mark.meta

CLAIM = "tests/local/test_fresh_volume.py"
CLAIM_ID = "test_fresh_volume::test_first_overlapping_requests_on_a_new_volume_are_all_served_and_stored"
RUN_TIMEOUT_S = 600  # one stack start and a few 30 s request timeouts on 2 shared cores
# The claim test's assertion messages; any of them names the breakage's effect.
PHRASES = ("were not all served", "chat completions stored", "tables were not created")


def test_fresh_volume_claim_fails_without_create_tables(tmp_path: Path) -> None:
    junit = tmp_path / "junit.xml"
    command = [
        sys.executable, "-m", "pytest", CLAIM, "-p", "no:cacheprovider", "-q",
        "-p", "meta.break_create_tables", f"--junitxml={junit}",
    ]  # fmt: skip
    tests_dir = str(REPO_ROOT / "tests")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [tests_dir, os.environ.get("PYTHONPATH")]))}
    done = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, env=env, timeout=RUN_TIMEOUT_S)
    output = done.stdout + done.stderr
    outcome, message = parse_junit(junit).get(CLAIM_ID, ("missing", "")) if junit.exists() else ("missing", "")
    assert outcome == "failed", f"the claim's test {outcome} instead of failing:\n{output[-3000:]}"
    assert any(p in message for p in PHRASES), f"failed, but not because of the breakage:\n{message[-2000:]}"
