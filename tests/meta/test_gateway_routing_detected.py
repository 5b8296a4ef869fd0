"""The routing tests fail when the routing mechanism breaks: each case runs the gateway's Lua unit
tests of routing (tests/unit/gateway/test_gateway_routing.py, and the front door's model access in
tests/unit/gateway/test_gateway_llama_stack.py) against a copy of files/gateway.lua
with one mechanism broken, in a fresh pytest process, and checks which tests fail and why."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from harness.paths import CHARTS_DIR, REPO_ROOT

from meta.runs import parse_junit

pytestmark = pytest.mark.meta

LUA = CHARTS_DIR / "maas-gateway" / "files" / "gateway.lua"
MODULE = "tests/unit/gateway/test_gateway_routing.py"
GATEWAY_LUA_ENV = "MAAS_GATEWAY_LUA"  # read by tests/unit/gateway/envoy_model.py
RUN_TIMEOUT_S = 120


@dataclass(frozen=True)
class Breakage:
    old: str  # product text (exactly once in gateway.lua)
    new: str  # broken text
    fail: frozenset[str]  # tests of MODULE that must fail
    phrase: str  # what their failures must say
    passes: frozenset[str]  # tests that must still pass (the breakage is that mechanism only)


BREAKAGES = {
    # The body's model no longer picks the cluster: every call goes to the default server.
    "routing ignores the model": Breakage(
        'headers:replace(ROUTE_HEADER, entry["cluster"])',
        "headers:replace(ROUTE_HEADER, DEFAULT_CLUSTER)",
        frozenset({"test_each_model_reaches_its_own_server"}),
        "'premium'",
        frozenset({"test_models_lists_only_the_callers_models_with_their_metadata"}),
    ),
    # The route is not picked again after the model's cluster is named.
    "route cache kept": Breakage(
        "    -- The route was picked on the headers alone; pick it again with the model's cluster.\n"
        "    reroute(handle)\n",
        "",
        frozenset({"test_each_model_reaches_its_own_server"}),
        "'premium'",
        frozenset({"test_upstream_model_replaces_the_public_id"}),
    ),
    # Model calls skip the tier check.
    "tier check skipped": Breakage(
        "  if not tier_may_use(entry, tier) then\n    return nil, 403",
        "  if false then\n    return nil, 403",
        frozenset({"test_refusals_come_before_any_budget_or_server[other-tier-403]"}),
        "assert 200 == 403",
        frozenset({"test_refusals_come_before_any_budget_or_server[unknown-404]"}),
    ),
    # /v1/models lists every catalog model to everyone.
    "listing unfiltered": Breakage(
        "    if tier_may_use(entry, tier) then ids[#ids + 1] = id end",
        "    ids[#ids + 1] = id",
        frozenset({"test_models_lists_only_the_callers_models_with_their_metadata"}),
        "premium-model",
        frozenset({"test_refusals_come_before_any_budget_or_server[other-tier-403]"}),
    ),
    # The served name is not sent on: the server sees the public id.
    "public id forwarded": Breakage(
        'doc["model"] = entry["served"]',
        "",
        frozenset({"test_upstream_model_replaces_the_public_id"}),
        "served-premium",
        frozenset({"test_each_model_reaches_its_own_server"}),
    ),
}


@pytest.mark.parametrize("name", BREAKAGES)
def test_routing_tests_fail_when_routing_breaks(name: str, tmp_path: Path) -> None:
    run_breakage(name, BREAKAGES[name], MODULE, tmp_path)


FRONT_DOOR_MODULE = "tests/unit/gateway/test_gateway_llama_stack.py"
FRONT_DOOR_BREAKAGES = {
    # The front door lets a call for another tier's model through to llama-stack.
    "front door skips the tier check": Breakage(
        "  if named ~= nil and not tier_may_use(named.entry, id.tier) then\n"
        '    meter(handle, { refused = "model_access" })',
        '  if false then\n    meter(handle, { refused = "model_access" })',
        frozenset({"test_another_tiers_model_is_refused_before_llama_stack"}),
        "assert 200 == 403",
        frozenset({"test_the_listing_hides_other_tiers_models", "test_another_tiers_model_is_not_found"}),
    ),
    # llama-stack's listing reaches the caller whole.
    "front door listing unfiltered": Breakage(
        '  if #kept == #doc["data"] then return nil end',
        "  if true then return nil end",
        frozenset({"test_the_listing_hides_other_tiers_models"}),
        "premium/premium-model",
        frozenset({"test_another_tiers_model_is_refused_before_llama_stack"}),
    ),
    # llama-stack's error answers reach the caller as llama-stack wrote them.
    "front door passes llama-stack's errors as they are": Breakage(
        "    local answer = body ~= nil and openai_error(raw, status) or nil\n",
        "    local answer = nil\n",
        frozenset(
            f"test_llama_stacks_errors_reach_the_caller_in_the_openai_form[{case}]"
            for case in ("message-404", "router-405", "validation-422", "text-500")
        ),
        "assert (",
        frozenset({"test_a_complete_openai_error_and_a_success_pass_byte_for_byte"}),
    ),
}


@pytest.mark.parametrize("name", FRONT_DOOR_BREAKAGES)
def test_front_door_tests_fail_when_its_model_access_breaks(name: str, tmp_path: Path) -> None:
    run_breakage(name, FRONT_DOOR_BREAKAGES[name], FRONT_DOOR_MODULE, tmp_path)


def run_breakage(name: str, brk: Breakage, module: str, tmp_path: Path) -> None:
    """Run `module` against gateway.lua with `brk` applied; its `fail` tests must fail saying
    `phrase`, its `passes` tests must pass."""
    text = LUA.read_text()
    assert text.count(brk.old) == 1, f"breakage {name!r} no longer applies: update it to break the same mechanism"
    mutant = tmp_path / "gateway.lua"
    mutant.write_text(text.replace(brk.old, brk.new))
    junit = tmp_path / "junit.xml"
    command = [sys.executable, "-m", "pytest", module, "-p", "no:cacheprovider", "-q", f"--junitxml={junit}"]
    done = subprocess.run(
        command,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, GATEWAY_LUA_ENV: str(mutant)},
        timeout=RUN_TIMEOUT_S,
    )
    outcomes = {test.split("::", 1)[1]: result for test, result in parse_junit(junit).items()}
    assert outcomes, f"no test ran:\n{done.stdout[-2000:]}{done.stderr[-2000:]}"
    for test in brk.fail:
        outcome, message = outcomes.get(test, ("not run", ""))
        assert outcome == "failed", f"{name}: {test} {outcome}; the breakage went unnoticed"
        assert brk.phrase in message, f"{name}: {test} failed without saying {brk.phrase!r}:\n{message[:2000]}"
    for test in brk.passes:
        assert outcomes.get(test, ("not run", ""))[0] == "passed", f"{name}: {test} broke too: the breakage is too wide"
