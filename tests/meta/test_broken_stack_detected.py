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

from collections.abc import Iterator
from pathlib import Path

import pytest

from meta.runs import BrokenStack, Run, StackBreak, assert_fail_saying, broken_stack

pytestmark = pytest.mark.meta

BREAK = StackBreak(
    "meta-broken",
    overlay="""\
maas-gateway:
  tiers:
    free: {tokens: {limit: 0, window: 1m}}
    enterprise: {requests: {limit: 5, window: 2m}}
vllm-gpu:
  simulator:
    mode: random
""",
)
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


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokenStack]:
    yield from broken_stack(BREAK, tmp_path_factory)


@pytest.fixture(scope="module")
def broken_run(stack: BrokenStack, tmp_path_factory: pytest.TempPathFactory) -> Run:
    modules = [RATELIMIT, "tests/e2e/test_auth.py", "tests/e2e/test_rag.py"]
    return stack.run(modules, tmp_path_factory.mktemp("broken-run"))


@pytest.mark.parametrize("breakage", list(BREAKAGES))
def test_breakage_fails_the_tests_that_check_it(broken_run: Run, breakage: str) -> None:
    expected, phrase = BREAKAGES[breakage]
    assert broken_run.returncode == 1, f"the suite did not fail on a broken stack:\n{broken_run.tail()}"
    assert_fail_saying(broken_run, expected, phrase, breakage)


def test_only_the_broken_behaviours_fail(broken_run: Run) -> None:
    expected = set().union(*(names for names, _ in BREAKAGES.values()))
    failed = broken_run.failed()
    unexpected = {name: broken_run.message(name)[:600] for name in sorted(failed - expected)}
    assert failed == expected, f"unexpected failures {unexpected}; missing failures {sorted(expected - failed)}"
    passed = broken_run.passed()
    assert passed >= UNAFFECTED, f"tests the breakage does not touch did not pass: {sorted(UNAFFECTED - passed)}"


def test_failures_write_diagnostics_without_keys(broken_run: Run, stack: BrokenStack) -> None:
    keys = [k for tier_keys in stack.endpoints.keys.values() for k in tier_keys]
    assert keys, "the broken stack reports no keys to look for"
    assert "diagnostics written to" in broken_run.output, "failing tests printed no diagnostics path"
    files = [p for p in broken_run.diagnostics.rglob("*") if p.is_file()]
    assert files, f"no diagnostics under {broken_run.diagnostics}"
    leaks = [str(p) for p in files if any(k in p.read_text(errors="replace") for k in keys)]
    assert not leaks, f"API keys found in diagnostics files: {leaks}"
    assert not [k for k in keys if k in broken_run.output], "an API key appeared in the test output"


def test_model_tests_skip_when_no_model_is_reachable(stack: BrokenStack, tmp_path: Path) -> None:
    # A MaaS endpoint that refuses connections: discovery fails, nothing is registered.
    run = stack.run(
        ["tests/e2e/test_chat.py"],
        tmp_path,
        extra=("-k", "llama_stack", "--maas-endpoint", "http://127.0.0.1:9/v1"),
        env={"MAAS_API_KEY": "meta-dummy-key"},  # keys travel in the environment, never in argv
    )
    assert run.outcomes, f"nothing ran:\n{run.output[-2000:]}"
    not_skipped = {name: outcome for name, (outcome, _) in run.outcomes.items() if outcome != "skipped"}
    assert not not_skipped, f"model tests ran without a reachable model: {not_skipped}"
    reasons = {message for _, message in run.outcomes.values()}
    assert all("no MaaS model reachable" in r and "127.0.0.1:9" in r for r in reasons), reasons
    assert "meta-dummy-key" not in run.output, "the MaaS key appeared in the output"


def test_model_ignoring_its_context_fails_the_maas_lane_claim(stack: BrokenStack, tmp_path: Path) -> None:
    # The broken stack's gateway plays the MaaS: its model answers fixed text whatever the prompt.
    run = stack.run(
        ["tests/e2e/test_rag.py"],
        tmp_path,
        extra=("-k", "real_model", "--maas-endpoint", stack.endpoints.gateway_url + "/v1"),
        env={"MAAS_API_KEY": stack.endpoints.keys["enterprise"][-1]},  # never in argv
    )
    outcome, message = run.outcomes.get(MODEL_IGNORES_PROMPT, ("not run", ""))
    assert outcome == "failed", f"{MODEL_IGNORES_PROMPT}: {outcome}\n{run.output[-2000:]}"
    assert "does not carry the retrieved fact" in message, message[:1000]
