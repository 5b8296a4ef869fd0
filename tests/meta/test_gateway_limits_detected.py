"""The model budget and token weight tests fail when their mechanism breaks: each case runs the
gateway's Lua unit tests of model limits (tests/unit/gateway/test_gateway_model_limits.py) against
a copy of files/gateway.lua with one mechanism broken, in a fresh pytest process, and checks which
tests fail and why. (The e2e tests of the same claims are broken on a live stack in
test_gateway_accounting_detected.py.)"""

from __future__ import annotations

import pytest

from meta.test_gateway_routing_detected import Breakage, run_breakage

pytestmark = pytest.mark.meta

MODULE = "tests/unit/gateway/test_gateway_model_limits.py"

BREAKAGES = {
    # A model budget looser than the caller's tier budget is skipped as if the tighter one made it
    # redundant: the model's counter is then neither checked nor charged for that caller.
    "shadowed limit not checked": Breakage(
        'if limits["tpm"] ~= nil then md:set(NS, "model_tpm", doc["model"]) end',
        'if limits["tpm"] ~= nil and json.number(limits["tpm"]) < TIERS[id.tier].tokens_limit then '
        'md:set(NS, "model_tpm", doc["model"]) end',
        frozenset({"test_a_looser_model_budget_is_still_enforced"}),
        "assert 200 == 429",
        frozenset({"test_a_models_tpm_is_shared_by_callers_of_different_tiers"}),
    ),
    # The weights are ignored once usage arrives: every budget is charged the plain token count.
    "weights ignored": Breakage(
        'local w_in, w_out = tonumber(md["cost_input"]) or 1, tonumber(md["cost_output"]) or 1',
        "local w_in, w_out = 1, 1",
        frozenset(
            {
                "test_the_output_weight_is_what_every_token_budget_is_charged",
                "test_a_stream_is_charged_its_weighted_usage",
                "test_fractional_weights_are_rounded_up",
            }
        ),
        "charge",
        frozenset({"test_unweighted_models_are_charged_their_total"}),
    ),
    # The refusing budget is not named: every 429 keeps the tier's generic message.
    "refusal not named": Breakage(
        "    if refused ~= nil then\n",
        "    if false then\n",
        frozenset({"test_a_models_tpm_is_shared_by_callers_of_different_tiers", "test_a_models_rpm_is_shared"}),
        "x-maas-ratelimit-exceeded",
        frozenset({"test_the_headers_report_the_tightest_budget"}),
    ),
    # The headers report the tier's budget whatever is tighter.
    "tier headers only": Breakage(
        "      if BUDGET_KIND[name] == kind and st ~= nil and st.remaining ~= nil then",
        "      if (name == kind) and st ~= nil and st.remaining ~= nil then",
        frozenset({"test_the_headers_report_the_tightest_budget"}),
        "x-ratelimit-limit-tokens",
        frozenset({"test_a_models_rpm_is_shared"}),
    ),
}


@pytest.mark.parametrize("name", BREAKAGES)
def test_model_limit_tests_fail_when_their_mechanism_breaks(name: str, tmp_path) -> None:
    run_breakage(name, BREAKAGES[name], MODULE, tmp_path)
