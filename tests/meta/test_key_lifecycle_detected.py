"""The key lifecycle tests fail when the harness's half of it breaks: each case runs the unit tests
of `harness keys` with one mechanism broken (`-p meta.break_key_lifecycle`) and expects exactly the
tests of that mechanism to fail: a rotation that never ends the old keys, and a restarted local
gateway that loses the keys `harness keys` made. (The gateway's own checks of hashes, expiry and
revocation: tests/meta/test_gateway_key_store_detected.py.)"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from harness.paths import REPO_ROOT

from meta.runs import parse_junit

pytestmark = pytest.mark.meta

MODULES = ("tests/unit/test_gateway_keys.py", "tests/unit/test_local_key_files.py")
RUN_TIMEOUT_S = 120

BREAKAGES = {
    "rotate-without-grace": (
        {
            "test_rotate_adds_a_key_and_ends_the_old_ones_after_the_grace_period",
            "test_rotate_keeps_an_earlier_expiry_and_the_shared_labels",
        },
        "test_revoke_by_user_and_label_selects_only_those_keys",
    ),
    "restart-drops-keys": (
        {"test_a_restarted_gateway_gets_the_key_file_harness_keys_wrote"},
        "test_without_a_managed_copy_or_a_key_mount_nothing_changes",
    ),
}


@pytest.mark.parametrize("name", BREAKAGES)
def test_key_lifecycle_tests_fail_when_its_mechanism_breaks(name: str, tmp_path: Path) -> None:
    fail, still_passes = BREAKAGES[name]
    junit = tmp_path / "junit.xml"
    done = subprocess.run(
        [sys.executable, "-m", "pytest", *MODULES, "-p", "meta.break_key_lifecycle", "-p", "no:cacheprovider",
         "-q", f"--junitxml={junit}"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=RUN_TIMEOUT_S,
        env={**os.environ, "META_KEY_BREAKAGE": name},
    )  # fmt: skip
    outcomes = {test.split("::", 1)[1]: result[0] for test, result in parse_junit(junit).items()}
    assert outcomes, f"no test ran:\n{done.stdout[-2000:]}{done.stderr[-2000:]}"
    failed = {test for test, outcome in outcomes.items() if outcome == "failed"}
    assert failed == fail, f"{name}: expected exactly {sorted(fail)} to fail, got {sorted(failed)}"
    assert outcomes[still_passes] == "passed", f"{name}: {still_passes} broke too: the breakage is too wide"
