"""The llama-stack authentication and budget tests fail when the mechanisms they check break.

One local stack (run name `meta-auth-broken`) runs a copy of the charts whose llama-stack run
config has no `server.auth` (authentication off), with the overlay giving llama-stack a model key
of its own (the service key every caller used to spend). tests/e2e/test_llama_stack_auth.py then
runs twice, as a user runs it:
  1. as shipped                                   -> the 401 tests and the no-own-key test fail
  2. with clients that forward no key (`-p meta.no_forwarded_key`)
                                                  -> the budget tests fail: calls spend the service key
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from meta.runs import BrokenStack, Edit, StackBreak, broken_stack

pytestmark = pytest.mark.meta

BREAK = StackBreak(
    "meta-auth-broken",
    edits=(Edit("llama-stack/templates/configmap.yaml", "{{- if .Values.auth.enabled }}", "{{- if false }}"),),
    # The key llama-stack would spend for every caller: the harness's own large tier.
    overlay="global:\n  models:\n    maas:\n      apiToken: dev-internal-01-harness\n",
)
SUITE = ["tests/e2e/test_llama_stack_auth.py"]
MODULE = "test_llama_stack_auth"
AUTH_OFF_FAILS = {
    *(
        f"{MODULE}::test_missing_or_bad_key_gets_json_401[{call}]"
        for call in ("POST /v1/chat/completions", "GET /v1/files", "GET /v1/vector_stores", "POST /v1/responses")
    ),
    f"{MODULE}::test_missing_or_bad_key_gets_json_401[GET /v1/models]",
    f"{MODULE}::test_provider_data_must_carry_the_callers_own_key",
    f"{MODULE}::test_a_call_without_a_forwarded_key_reaches_no_model",
}
NOT_FORWARDED_FAILS = {
    f"{MODULE}::test_free_key_spent_through_llama_stack_gets_429_there_and_at_the_gateway",
    f"{MODULE}::test_free_key_spent_is_refused_by_responses_file_search",
    f"{MODULE}::test_enterprise_key_through_llama_stack_is_charged_on_enterprise_counters",
}
# Untouched by either breakage: the failures above are specific.
UNAFFECTED = {f"{MODULE}::test_probes_need_no_key[/v1/health]", f"{MODULE}::test_valid_key_is_accepted"}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokenStack]:
    yield from broken_stack(BREAK, tmp_path_factory)


def test_auth_off_and_an_own_model_key_fail_the_auth_tests(stack: BrokenStack, tmp_path: Path) -> None:
    run = stack.run(SUITE, tmp_path)
    assert run.failed() == AUTH_OFF_FAILS, (
        f"failed {sorted(run.failed())}, want {sorted(AUTH_OFF_FAILS)}:\n{run.tail()}"
    )
    assert run.passed() >= UNAFFECTED | NOT_FORWARDED_FAILS, run.tail()


def test_an_unforwarded_key_fails_the_budget_tests(stack: BrokenStack, tmp_path: Path) -> None:
    run = stack.run(SUITE, tmp_path, extra=("-p", "meta.no_forwarded_key"))
    assert run.failed() >= NOT_FORWARDED_FAILS, (
        f"failed {sorted(run.failed())}, want at least {sorted(NOT_FORWARDED_FAILS)}:\n{run.tail()}"
    )
    assert run.passed() >= UNAFFECTED, run.tail()
