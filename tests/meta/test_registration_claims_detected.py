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
from pathlib import Path

import pytest

from .runs import Run, run_suite

pytestmark = pytest.mark.meta

CLAIM = "tests/e2e/test_models.py::test_registration_adds_and_removes_a_model"
CLAIM_ID = "test_models::test_registration_adds_and_removes_a_model"
RUN_TIMEOUT_S = 900  # a stack start, the stand-in, and three llama-stack restarts on 2 shared cores
NO_PERSISTENCE = "llama-stack:\n  persistence:\n    enabled: false\n"
# case -> (extra pytest args, values overlay text or "", phrase the failure must contain)
CASES = {
    "drops-earlier": (["-p", "meta.break_registration_drops_earlier"], "", "dropped"),
    "no-persistence": ([], NO_PERSISTENCE, "no longer listed"),
    "no-prune": (["-p", "meta.break_registry_prune"], "", "still listed"),
}


def run_claim(case: str, tmp: Path) -> Run:
    """The claim's test under one breakage, against the stand-in MaaS (whatever MaaS the outer run has)."""
    args, overlay, _ = CASES[case]
    extra = list(args)
    if overlay:
        (tmp / "overlay.yaml").write_text(overlay)
        extra += ["--values", str(tmp / "overlay.yaml")]
    env: dict[str, str | None] = {k: None for k in os.environ if k.startswith("MAAS_")}
    env["MAAS_ENDPOINT"] = "standin"
    return run_suite([CLAIM], tmp, run_name=f"meta-reg-{case}", extra=tuple(extra), env=env, timeout_s=RUN_TIMEOUT_S)


@pytest.mark.parametrize("case", sorted(CASES))
def test_registration_claim_fails_when_its_mechanism_breaks(case: str, tmp_path: Path) -> None:
    run = run_claim(case, tmp_path)
    outcome, message = run.outcomes.get(CLAIM_ID, ("missing", ""))
    phrase = CASES[case][2]
    assert outcome == "failed", f"{case}: the claim's test {outcome} instead of failing:\n{run.tail()}"
    assert phrase in message, f"{case}: failed, but not because of the breakage ({phrase!r}):\n{message[-2000:]}"
