"""The registration claims can fail: break each mechanism behind them and the e2e registration
test fails, with the failure naming what broke.

Claims (tests/e2e/test_models.py::test_registration_adds_and_removes_a_model, run against the
stand-in MaaS so that an earlier registration exists):
  - registration is additive        <- broken by a merge that forgets earlier registrations
  - user data survives registration <- broken by llama-stack without its persistent data volume
  - a removed model disappears      <- broken by a runner that skips the registry-pruning init container
Each breakage runs in its own pytest process and local stack (run name `meta-reg-<case>`).
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

CLAIM = "tests/e2e/test_models.py::test_registration_adds_and_removes_a_model"
RUN_TIMEOUT_S = 900  # a stack start, the stand-in, and three llama-stack restarts on 2 shared cores
NO_PERSISTENCE = "llama-stack:\n  persistence:\n    enabled: false\n"
# case -> (extra pytest args, values overlay text or "", phrase the failure must contain)
CASES = {
    "drops-earlier": (["-p", "meta.break_registration_drops_earlier"], "", "dropped"),
    "no-persistence": ([], NO_PERSISTENCE, "no longer listed"),
    "no-prune": (["-p", "meta.break_registry_prune"], "", "still listed"),
}


def run_claim(case: str, tmp: Path) -> tuple[str, str, str]:
    """(outcome, failure message, whole output) of the claim's test under one breakage."""
    args, overlay, _ = CASES[case]
    junit = tmp / "junit.xml"
    extra: list[str] = []
    if overlay:
        (tmp / "overlay.yaml").write_text(overlay)
        extra = ["--values", str(tmp / "overlay.yaml")]
    command = [
        sys.executable, "-m", "pytest", CLAIM, "-p", "no:cacheprovider", "-q", *args, *extra,
        "--target", "local", "--run-name", f"meta-reg-{case}", f"--junitxml={junit}",
    ]  # fmt: skip
    tests_dir = str(REPO_ROOT / "tests")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("MAAS_")},
        "MAAS_ENDPOINT": "standin",
        "PYTHONPATH": os.pathsep.join(filter(None, [tests_dir, os.environ.get("PYTHONPATH")])),
        "RAG_DIAGNOSTICS_DIR": str(tmp / "diagnostics"),
    }
    done = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, env=env, timeout=RUN_TIMEOUT_S)
    outcomes = parse_junit(junit) if junit.exists() else {}
    outcome, message = outcomes.get("test_models::test_registration_adds_and_removes_a_model", ("missing", ""))
    return outcome, message, done.stdout + done.stderr


@pytest.mark.parametrize("case", sorted(CASES))
def test_registration_claim_fails_when_its_mechanism_breaks(case: str, tmp_path: Path) -> None:
    outcome, message, output = run_claim(case, tmp_path)
    phrase = CASES[case][2]
    assert outcome == "failed", f"{case}: the claim's test {outcome} instead of failing:\n{output[-3000:]}"
    assert phrase in message, f"{case}: failed, but not because of the breakage ({phrase!r}):\n{message[-2000:]}"
