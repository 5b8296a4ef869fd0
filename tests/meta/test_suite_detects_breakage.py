"""Tests of the suite itself: against a deliberately broken local stack, the e2e tests that
check the broken behaviour FAIL (and only those), keys stay hidden, and model tests skip
rather than pass when no model is reachable.

One extra local stack (run name `meta-broken`) is started from the charts with an overlay
that breaks three independent behaviours:
  1. the free tier's token budget is 0          -> free-tier rate-limit tests fail
  2. enterprise allows 5 requests per window    -> the enterprise burst test fails
  3. the model answers fixed text, not the prompt -> the MaaS-lane test that a model answers
     from retrieved context fails (run with the broken stack's own gateway as the MaaS)
The e2e modules run against it in a subprocess pytest, exactly as a user runs them.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from harness.endpoints import Endpoints
from harness.paths import REPO_ROOT
from harness.targets import TargetOptions, get_target

from .runs import parse_junit

pytestmark = pytest.mark.meta

RUN_NAME = "meta-broken"
BROKEN_OVERLAY = """\
maas-gateway:
  tiers:
    free: {tokens: {limit: 0, window: 1m}}
    enterprise: {requests: {limit: 5, window: 2m}}
vllm-gpu:
  simulator:
    mode: random
"""
RATELIMIT = "tests/e2e/test_ratelimit.py"
# Each breakage, the tests that must fail because of it, and a phrase their failure shows.
BREAKAGES = {
    "free token limit 0": (
        {
            "test_ratelimit::test_free_tier_is_limited_at_its_token_budget",
            "test_ratelimit::test_free_request_count_limit",
            "test_ratelimit::test_keys_and_tiers_are_isolated",
            "test_ratelimit::test_remaining_tokens_decrease_with_use",
            "test_auth::test_identity_headers_from_client_change_nothing",
        },
        "429",
    ),
    "enterprise request limit 5": (
        {"test_ratelimit::test_paid_tiers_pass_a_burst[enterprise-20]"},
        "limit_requests=5",
    ),
}
# Checked by its own run (test_model_ignoring_its_context_fails_the_maas_lane_claim).
MODEL_IGNORES_PROMPT = "test_rag::test_real_model_answers_from_retrieved_context"
# Tests the breakages do not touch: they must still pass, so the failures above are specific.
UNAFFECTED = {
    "test_ratelimit::test_paid_tiers_pass_a_burst[premium-10]",
    "test_ratelimit::test_listing_models_costs_no_tokens",
    "test_ratelimit::test_streamed_responses_are_charged",
    "test_auth::test_both_header_forms_are_accepted[Bearer]",
    "test_rag::test_responses_file_search_passes_the_answer_to_the_model",
    "test_rag::test_client_side_rag_puts_the_retrieved_chunk_in_the_model_prompt",
}


@dataclass
class Run:
    returncode: int
    output: str
    outcomes: dict[str, tuple[str, str]]  # "module::test" -> (passed|failed|skipped|error, message)
    diagnostics: Path


def _env() -> dict[str, str]:
    tests_dir = str(REPO_ROOT / "tests")
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [tests_dir, os.environ.get("PYTHONPATH")]))}


def run_suite(paths: list[str], tmp: Path, *extra: str, overlay: Path, env_extra: dict[str, str] | None = None) -> Run:
    """Run e2e modules against the broken stack (started with `overlay`) in a fresh pytest process."""
    junit, diagnostics = tmp / "junit.xml", tmp / "diagnostics"
    command = [
        sys.executable,
        "-m",
        "pytest",
        *paths,
        "-p",
        "no:cacheprovider",
        "-q",
        "--target",
        "local",
        "--run-name",
        RUN_NAME,
        "--values",  # the stack's own overlay: the suite refuses a stack started with other values
        str(overlay),
        f"--junitxml={junit}",
        *extra,
    ]
    env = {**_env(), "RAG_DIAGNOSTICS_DIR": str(diagnostics), **(env_extra or {})}
    done = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, env=env, timeout=600)
    return Run(done.returncode, done.stdout + done.stderr, parse_junit(junit), diagnostics)


def _running(target: object) -> bool:
    try:
        target.status()  # type: ignore[attr-defined]
    except Exception:  # status() raises when nothing runs; any reason means "not usable"
        return False
    return True


@pytest.fixture(scope="module")
def broken_overlay(tmp_path_factory: pytest.TempPathFactory) -> Path:
    overlay = tmp_path_factory.mktemp("overlay") / "broken.yaml"
    overlay.write_text(BROKEN_OVERLAY)
    return overlay


@pytest.fixture(scope="module")
def broken_stack(broken_overlay: Path) -> Iterator[Endpoints]:
    target = get_target("local", TargetOptions(run_name=RUN_NAME, values=[broken_overlay]))
    if _running(target):
        target.down()  # a leftover from an earlier run may carry other overlays or spent keys
    endpoints = target.up()
    yield endpoints
    if os.environ.get("RAG_KEEP") != "1":
        target.down()


@pytest.fixture(scope="module")
def broken_run(broken_stack: Endpoints, broken_overlay: Path, tmp_path_factory: pytest.TempPathFactory) -> Run:
    return run_suite(
        [RATELIMIT, "tests/e2e/test_auth.py", "tests/e2e/test_rag.py"],
        tmp_path_factory.mktemp("broken-run"),
        overlay=broken_overlay,
    )


@pytest.mark.parametrize("breakage", list(BREAKAGES))
def test_breakage_fails_the_tests_that_check_it(broken_run: Run, breakage: str) -> None:
    expected, phrase = BREAKAGES[breakage]
    assert broken_run.returncode == 1, f"the suite did not fail on a broken stack:\n{broken_run.output[-3000:]}"
    outcomes = {name: broken_run.outcomes.get(name, ("not run", "")) for name in expected}
    not_failed = {name: outcome for name, (outcome, _) in outcomes.items() if outcome != "failed"}
    assert not not_failed, f"{breakage}: these tests did not fail: {not_failed}"
    without_phrase = [name for name, (_, message) in outcomes.items() if phrase not in message]
    assert not without_phrase, f"{breakage}: failures of {without_phrase} do not mention {phrase!r}"


def test_only_the_broken_behaviours_fail(broken_run: Run) -> None:
    expected = set().union(*(names for names, _ in BREAKAGES.values()))
    failed = {name for name, (outcome, _) in broken_run.outcomes.items() if outcome in ("failed", "error")}
    assert failed == expected, (
        f"unexpected failures {sorted(failed - expected)}; missing failures {sorted(expected - failed)}"
    )
    passed = {name for name, (outcome, _) in broken_run.outcomes.items() if outcome == "passed"}
    assert passed >= UNAFFECTED, f"tests the breakage does not touch did not pass: {sorted(UNAFFECTED - passed)}"


def test_failures_write_diagnostics_without_keys(broken_run: Run, broken_stack: Endpoints) -> None:
    keys = [k for tier_keys in broken_stack.keys.values() for k in tier_keys]
    assert keys, "the broken stack reports no keys to look for"
    assert "diagnostics written to" in broken_run.output, "failing tests printed no diagnostics path"
    files = [p for p in broken_run.diagnostics.rglob("*") if p.is_file()]
    assert files, f"no diagnostics under {broken_run.diagnostics}"
    leaks = [str(p) for p in files if any(k in p.read_text(errors="replace") for k in keys)]
    assert not leaks, f"API keys found in diagnostics files: {leaks}"
    assert not [k for k in keys if k in broken_run.output], "an API key appeared in the test output"


def test_model_tests_skip_when_no_model_is_reachable(
    broken_stack: Endpoints, broken_overlay: Path, tmp_path: Path
) -> None:
    # A MaaS endpoint that refuses connections: discovery fails, nothing is registered.
    run = run_suite(
        ["tests/e2e/test_chat.py", "-k", "llama_stack"],
        tmp_path,
        "--maas-endpoint",
        "http://127.0.0.1:9/v1",
        overlay=broken_overlay,
        env_extra={"MAAS_API_KEY": "meta-dummy-key"},  # keys travel in the environment, never in argv
    )
    assert run.outcomes, f"nothing ran:\n{run.output[-2000:]}"
    not_skipped = {name: outcome for name, (outcome, _) in run.outcomes.items() if outcome != "skipped"}
    assert not not_skipped, f"model tests ran without a reachable model: {not_skipped}"
    reasons = {message for _, message in run.outcomes.values()}
    assert all("no MaaS model reachable" in r and "127.0.0.1:9" in r for r in reasons), reasons
    assert "meta-dummy-key" not in run.output, "the MaaS key appeared in the output"


def test_model_ignoring_its_context_fails_the_maas_lane_claim(
    broken_stack: Endpoints, broken_overlay: Path, tmp_path: Path
) -> None:
    # The broken stack's gateway plays the MaaS: its model answers fixed text whatever the prompt.
    run = run_suite(
        ["tests/e2e/test_rag.py", "-k", "real_model"],
        tmp_path,
        "--maas-endpoint",
        broken_stack.gateway_url + "/v1",
        overlay=broken_overlay,
        env_extra={"MAAS_API_KEY": broken_stack.keys["enterprise"][-1]},  # never in argv
    )
    outcome, message = run.outcomes.get(MODEL_IGNORES_PROMPT, ("not run", ""))
    assert outcome == "failed", f"{MODEL_IGNORES_PROMPT}: {outcome}\n{run.output[-2000:]}"
    assert "does not carry the retrieved fact" in message, message[:1000]
