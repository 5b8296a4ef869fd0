"""Every wait of the harness goes through harness.waiting (named WaitPolicy constants, one Waiter):
no other module imports tenacity or writes its own `time.monotonic() + X` deadline loop."""

from __future__ import annotations

import pytest
from harness.paths import REPO_ROOT

from lint import waits

pytestmark = pytest.mark.lint

HARNESS = REPO_ROOT / "tests" / "harness"


def test_only_the_wait_helper_imports_tenacity_or_counts_down_a_deadline():
    modules = sorted(HARNESS.rglob("*.py"))
    assert HARNESS / waits.HELPER in modules and len(modules) > 50
    found = waits.findings(HARNESS)
    advice = "wait with harness.waiting (Waiter.until / Waiter.retrying and a named WaitPolicy):\n"
    assert not found, advice + "\n".join(found)
