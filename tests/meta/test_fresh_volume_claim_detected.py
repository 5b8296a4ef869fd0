"""The fresh-volume claim can fail: without the chart's create-tables init container,
llama-stack creates its SQL tables on the first requests and the local test of a new data
volume (tests/local/test_fresh_volume.py) fails on `no such table` answers.

The breakage runs in its own pytest process and local stack (run name `test-fresh-volume`,
the claim test's own), so it needs no other stack.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from .runs import run_suite

pytestmark = pytest.mark.meta

CLAIM = "tests/local/test_fresh_volume.py"
CLAIM_ID = "test_fresh_volume::test_first_overlapping_requests_on_a_new_volume_are_all_served_and_stored"
# The claim test's assertion messages; any of them names the breakage's effect.
PHRASES = ("were not all served", "chat completions stored", "tables were not created")


def test_fresh_volume_claim_fails_without_create_tables(tmp_path: Path) -> None:
    run = run_suite([CLAIM], tmp_path, run_name="test-fresh-volume", extra=("-p", "meta.break_create_tables"))
    outcome, message = run.outcomes.get(CLAIM_ID, ("missing", ""))
    assert outcome == "failed", f"the claim's test {outcome} instead of failing:\n{run.tail()}"
    assert any(p in message for p in PHRASES), f"failed, but not because of the breakage:\n{message[-2000:]}"
