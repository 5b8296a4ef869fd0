"""The gateway's accounting, privacy and fault tests fail when the mechanism they check breaks.

A local stack (run name `meta-gateway-broken`) is started from a copy of the charts whose
gateway has four mechanisms broken, independently:
  1. streams no longer get stream_options.include_usage -> streams that do not ask go uncharged
  2. the charge estimate is 0                           -> an aborted stream costs nothing
  3. Authorization is forwarded to the model server     -> the header-name test fails
  4. failureMode closed lets calls through              -> the closed fault test fails
  5. routing by model sends every call to `upstream`    -> the own-server test fails
  6. the tier check of model calls is skipped           -> the 403 test fails
  7. /v1/models lists every catalog model to everyone   -> the per-tier listing test fails
  8. a model's token counter is kept per user           -> the shared model tpm test fails
  9. the token weights are ignored when usage arrives   -> the weighted charge tests fail
The e2e modules run against it in a subprocess pytest, as a user runs them.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from meta.runs import BrokenStack, Edit, Run, StackBreak, assert_fail_saying, broken_stack

pytestmark = pytest.mark.meta

LUA = "maas-gateway/files/gateway.lua"
ENVOY = "maas-gateway/templates/envoy-configmap.yaml"
RATELIMIT = "maas-gateway/templates/ratelimit-configmap.yaml"
MODEL_TPM_ACTION = "- metadata: {descriptor_key: model, metadata_key: {key: maas, path: [{key: model_tpm}]}}"
USER_ACTION = "- metadata: {descriptor_key: user, metadata_key: {key: maas, path: [{key: user}]}}"
MODEL_BUDGET_LEVEL = """        value: {{ $m.id | quote }}
        descriptors:
        - key: window
          rate_limit:
            name: {{ $kind }}
            unit: minute
            requests_per_unit: {{ int $m.limit }}"""
PER_USER_MODEL_BUDGET_LEVEL = """        value: {{ $m.id | quote }}
        descriptors:
        - key: user
          descriptors:
          - key: window
            rate_limit:
              name: {{ $kind }}
              unit: minute
              requests_per_unit: {{ int $m.limit }}"""
BREAK = StackBreak(
    "meta-gateway-broken",
    edits=(
        # no include_usage
        Edit(
            LUA,
            'local USAGE_OPT_IN = { ["/v1/chat/completions"] = true, ["/v1/completions"] = true }',
            "local USAGE_OPT_IN = {}",
        ),
        Edit(LUA, "return body_bytes, completion * choices", "return 0, 0"),  # estimate 0
        Edit(LUA, '  headers:remove("authorization")\n\n', "\n"),  # key forwarded
        Edit(ENVOY, "failure_mode_deny: {{ and $deny $f.enforced }}", "failure_mode_deny: false"),  # fails open
        Edit(LUA, 'headers:replace(ROUTE_HEADER, entry["cluster"])', "headers:replace(ROUTE_HEADER, DEFAULT_CLUSTER)"),
        Edit(
            LUA, "  if not tier_may_use(entry, tier) then\n    return nil, 403", "  if false then\n    return nil, 403"
        ),
        Edit(LUA, "    if tier_may_use(entry, tier) then ids[#ids + 1] = id end", "    ids[#ids + 1] = id"),
        # The model's budgets counted per user: the descriptor and the rate limit service's tree
        # both get a user level.
        Edit(ENVOY, MODEL_TPM_ACTION, MODEL_TPM_ACTION + "\n" + " " * 26 + USER_ACTION),
        Edit(RATELIMIT, MODEL_BUDGET_LEVEL, PER_USER_MODEL_BUDGET_LEVEL),
        # Weights ignored for the usage charge (the estimate keeps them).
        Edit(
            LUA,
            'local w_in, w_out = tonumber(md["cost_input"]) or 1, tonumber(md["cost_output"]) or 1',
            "local w_in, w_out = 1, 1",
        ),
    ),
)
ACCOUNTING = "test_accounting"
ROUTING = "test_model_routing"
LIMITS = "test_model_limits"
# Each breakage, the tests that must fail because of it, and a phrase their failure shows.
BREAKAGES = {
    "no include_usage": (
        {
            f"{ACCOUNTING}::test_streams_are_charged_whatever_the_client_asks[no stream_options]",
            f"{ACCOUNTING}::test_streams_are_charged_whatever_the_client_asks[include_usage false]",
            f"{ACCOUNTING}::test_streams_are_charged_whatever_the_client_asks[stream_options null]",
            f"{ACCOUNTING}::test_escaped_key_stream_is_charged",
            f"{ACCOUNTING}::test_non_json_content_type_is_charged_or_refused[text/plain]",
        },
        "without usage",
    ),
    "estimate 0": ({f"{ACCOUNTING}::test_aborted_stream_is_charged"}, "the charge never came"),
    "key forwarded": (
        {"test_auth::test_model_server_never_receives_the_key_or_client_identity"},
        "authorization",
    ),
    "fails open": ({"test_faults::test_limiter_down_fails_closed_fast[ratelimit]"}, "expected 503"),
    # The second model reaches the first server, which does not serve it.
    "routing ignores the model": (
        {
            f"{ROUTING}::test_each_model_answers_under_its_served_name",
            f"{ROUTING}::test_models_on_different_servers_reach_different_servers",
        },
        "simulated-model-2",
    ),
    "tier check skipped": ({f"{ROUTING}::test_a_tier_outside_the_catalog_entry_gets_403_and_pays_nothing"}, "== 403"),
    "listing unfiltered": ({f"{ROUTING}::test_models_lists_only_the_callers_models"}, "/v1/models lists"),
    # Each user alone stays under the model's tpm: a tier budget (or none) refuses instead.
    "model counter per user": (
        {f"{LIMITS}::test_a_models_tpm_is_shared_by_callers_of_different_tiers"},
        "model_tokens",
    ),
    "weights ignored": (
        {
            f"{LIMITS}::test_output_weight_is_charged_and_the_tiers_429_comes_where_the_arithmetic_says",
            f"{LIMITS}::test_a_stream_is_charged_its_weighted_usage",
        },
        "charge",
    ),
}
UNAFFECTED = {
    f"{ACCOUNTING}::test_bodies_the_gateway_cannot_account_for_are_refused[not json]",
    f"{ACCOUNTING}::test_bodies_the_gateway_cannot_account_for_are_refused[stream as a string]",
    "test_auth::test_both_header_forms_are_accepted[Bearer]",
    "test_faults::test_model_server_down_answers_503_json",
    f"{ROUTING}::test_unknown_or_missing_model_is_refused_before_the_budget[unknown-model-404]",
}
SUITE = [
    "tests/e2e/test_accounting.py",
    "tests/e2e/test_auth.py",
    "tests/e2e/test_model_routing.py",
    "tests/e2e/test_model_limits.py",
    "tests/e2e/test_faults.py::test_model_server_down_answers_503_json",
    "tests/e2e/test_faults.py::test_limiter_down_fails_closed_fast",
]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokenStack]:
    yield from broken_stack(BREAK, tmp_path_factory)


@pytest.fixture(scope="module")
def broken_run(stack: BrokenStack, tmp_path_factory: pytest.TempPathFactory) -> Run:
    return stack.run(SUITE, tmp_path_factory.mktemp("gateway-broken-run"))


@pytest.mark.parametrize("breakage", list(BREAKAGES))
def test_gateway_breakage_fails_the_tests_that_check_it(broken_run: Run, breakage: str) -> None:
    expected, phrase = BREAKAGES[breakage]
    assert_fail_saying(broken_run, expected, phrase, breakage)


def test_gateway_breakages_leave_other_tests_passing(broken_run: Run) -> None:
    passed = broken_run.passed()
    assert passed >= UNAFFECTED, f"tests the breakages do not touch did not pass: {sorted(UNAFFECTED - passed)}"
