"""Tests of the suite against a broken PRODUCT, not broken values: each case breaks one
mechanism and shows that exactly the e2e tests that claim it fail.

One local stack (run name `meta-product`) runs from a copy of the charts. Per case:
  * gateway: one edit to the copy's rendered Envoy config or Lua step (key check, charge at
    end of stream, user in the counter descriptor, identity header stripping; and one per class
    of contract: failed calls charged, Retry-After from the wrong window, remaining tokens
    before the call, a window counted at half its length, fail-open rendered with no override;
    and the metering: output tokens, refusals by budget, latency),
    then the gateway alone is restarted and the gateway e2e modules (or the one module, or the
    contract's own tests, that hold the claim) run; counters are cleared between cases so that
    each starts from full budgets;
  * llama-stack: one edit to the copy's llama-stack values (its log format), then llama-stack alone
    is restarted, runs the test of the claim, and is restarted again once the edit is undone;
  * embedder: the embeddings server is replaced by one that returns a constant vector;
  * registration: a registration that leaves out one of the models it was asked to add.
A case with nothing broken runs first: the same modules pass, so the failures are the
breakage's.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from harness.local import processes, stack
from harness.paths import CHARTS_DIR, REPO_ROOT
from harness.targets.local import LocalTarget

from .runs import BrokenStack, Edit, Run, StackBreak, apply_edits, broken_stack

pytestmark = pytest.mark.meta

RUN_NAME = "meta-product"
AUTH = "tests/e2e/test_auth.py"
# Every gateway module: the case with nothing broken runs them all, and so does a breakage whose
# tests are spread over them; a breakage whose tests all sit in test_auth runs that module alone.
GATEWAY_MODULES = (AUTH, "tests/e2e/test_ratelimit.py", "tests/e2e/test_chat.py")
LEDGER = "e2e-key-ledger.json"  # the key pool's ledger in the run folder (harness.pytest_plugin)
EMBEDDER_READY_S = 10


@dataclass(frozen=True)
class Breakage:
    edits: tuple[Edit, ...]
    fail: frozenset[str]  # "module::test" of the tests that claim the mechanism
    # Tests whose premise the breakage removes, so they may fail too, depending on what ran
    # before them in the same window (a shared counter spent by an earlier test).
    may_fail: frozenset[str] = frozenset()
    # The e2e tests run against it: the gateway modules, or the tests of one contract.
    modules: tuple[str, ...] = tuple(GATEWAY_MODULES)
    # The component restarted with the edits (and again once they are undone).
    component: str = "gateway"


LUA = "maas-gateway/files/gateway.lua"
ENVOY = "maas-gateway/templates/envoy-configmap.yaml"
HELPERS = "maas-gateway/templates/_helpers.tpl"
RATELIMIT_TOKENS = {
    "test_ratelimit::test_free_tier_is_limited_at_its_token_budget",
    "test_ratelimit::test_keys_and_tiers_are_isolated",
    "test_ratelimit::test_remaining_tokens_decrease_with_use",
    "test_ratelimit::test_listing_models_costs_no_tokens",
    "test_ratelimit::test_streamed_responses_are_charged",
    "test_ratelimit::test_paid_tiers_are_limited_at_their_token_budget[premium]",
    "test_ratelimit::test_paid_tiers_are_limited_at_their_token_budget[enterprise]",
}
# Tests that take a fresh key and rely on it starting with a full budget (per-key counters).
FRESH_KEY_TESTS = frozenset(
    {
        "test_auth::test_identity_headers_from_client_change_nothing",
        "test_ratelimit::test_free_tier_is_limited_at_its_token_budget",
        "test_ratelimit::test_paid_tiers_pass_a_burst[premium-10]",
        "test_ratelimit::test_paid_tiers_pass_a_burst[enterprise-20]",
        "test_ratelimit::test_free_request_count_limit",
        "test_ratelimit::test_remaining_tokens_decrease_with_use",
        "test_ratelimit::test_listing_models_costs_no_tokens",
        "test_ratelimit::test_streamed_responses_are_charged",
        "test_ratelimit::test_paid_tiers_are_limited_at_their_token_budget[premium]",
        "test_ratelimit::test_paid_tiers_are_limited_at_their_token_budget[enterprise]",
    }
)
# Tests on a tier's shared key, whose budget other users of the tier must not spend.
SHARED_KEY_TESTS = frozenset({"test_chat::test_gateway_chat", "test_chat::test_gateway_chat_stream"})
# The contract tests of the gateway (one per class of breakage below), run on their own.
FAILED_CALLS = (
    "tests/e2e/test_accounting.py::test_a_failed_call_costs_no_tokens",
    "tests/e2e/test_accounting.py::test_a_429_costs_no_tokens",
)
REMAINING = ("tests/e2e/test_ratelimit.py::test_remaining_tokens_decrease_with_use",)
WINDOWS = ("tests/e2e/test_windows.py",)
FAIL_CLOSED = ("tests/e2e/test_faults.py::test_limiter_down_fails_closed_fast",)
METERING = ("tests/e2e/test_usage_metrics.py",)
LLAMA_STACK_GATEWAY = ("tests/e2e/test_llama_stack_gateway.py",)
LLAMA_STACK_TLS = ("tests/e2e/test_llama_stack_tls.py",)
WRONG_CA = "test_llama_stack_tls::test_a_certificate_the_gateways_ca_did_not_issue_is_503_json_and_logged"
# The front door's exact charges: each equals the reported usage only when it is charged, and once.
CHARGED_ONCE = frozenset(
    {
        "test_llama_stack_gateway::test_chat_is_charged_once",
        "test_llama_stack_gateway::test_streamed_chat_is_charged_once",
        "test_llama_stack_gateway::test_responses_file_search_is_charged_once",
        "test_llama_stack_gateway::test_streamed_responses_file_search_is_charged_once",
    }
)
FREE_KEY_RESPONSES_429 = "test_llama_stack_gateway::test_free_key_gets_429_from_the_gateway_on_responses"
FORGED_ONWARD = "test_llama_stack_gateway::test_an_onward_credential_cannot_be_forged"
LLAMA_STACK_DOWN = "test_llama_stack_gateway::test_llama_stack_down_is_503_json_until_it_returns"
COUNTERS_NUMBERED = "test_usage_metrics::test_refused_calls_give_every_counter_a_number"
NO_STALL = "test_llama_stack_gateway::test_a_failed_call_does_not_stall_llama_stack"
FRONT_DOOR_CHUNKING = frozenset(
    {
        "test_llama_stack_gateway::test_a_file_attached_without_a_strategy_gets_the_configured_chunks",
        "test_llama_stack_gateway::test_a_strategy_whose_overlap_is_not_smaller_than_its_size_is_400",
    }
)


def node_ids(names: frozenset[str]) -> tuple[str, ...]:
    """The e2e node ids of "module::test" names: a breakage runs only the tests of its claim."""
    return tuple(sorted(f"tests/e2e/{name.replace('::', '.py::')}" for name in names))


RESPONSES_CHARGED = frozenset(
    {
        "test_llama_stack_gateway::test_responses_file_search_is_charged_once",
        "test_llama_stack_gateway::test_streamed_responses_file_search_is_charged_once",
        FREE_KEY_RESPONSES_429,
    }
)
# The claims of the usage metrics: the gateway's metrics, the Prometheus bill and the usage command.
BILLED = frozenset(
    {
        "test_usage_metrics::test_metrics_equal_what_the_gateway_charged",
        "test_usage_metrics::test_prometheus_bill_equals_the_charges",
        "test_usage_metrics::test_usage_command_prints_and_plots_the_bill",
    }
)
GATEWAY_BREAKAGES = {
    "nothing broken": Breakage(
        (),
        frozenset(),
        modules=(
            *GATEWAY_MODULES,
            *FAILED_CALLS,
            *WINDOWS,
            *FAIL_CLOSED,
            *METERING,
            *LLAMA_STACK_GATEWAY,
            *LLAMA_STACK_TLS,
        ),
    ),
    "key check accepts any key": Breakage(
        (
            Edit(
                LUA,
                "  if entry == nil then return nil, INVALID_KEY end\n",
                '  if entry == nil then entry = {user = "anyone", tier = "enterprise"} end\n',
            ),
        ),
        frozenset(
            {
                "test_auth::test_bad_key_is_rejected_with_json_401[Bearer]",
                "test_auth::test_bad_key_is_rejected_with_json_401[APIKEY]",
            }
        ),
        modules=(AUTH,),
    ),
    "no charge at end of stream": Breakage(
        # Every budget's end-of-stream charge (the catalog's model budgets, and the tier's on the
        # model route and llama-stack's, from one helper).
        (
            Edit(ENVOY, "apply_on_stream_done: true", "apply_on_stream_done: false", count=2),
            Edit(HELPERS, "apply_on_stream_done: true", "apply_on_stream_done: false"),
        ),
        frozenset(RATELIMIT_TOKENS),
        # Charged before the usage is known, a key's budget no longer matches its use.
        FRESH_KEY_TESTS | SHARED_KEY_TESTS,
    ),
    "one counter for every user of a tier": Breakage(
        (
            Edit(
                ENVOY,
                "- metadata: {descriptor_key: user, metadata_key: {key: maas, path: [{key: user}]}}",
                "- generic_key: {descriptor_key: user, descriptor_value: everyone}",
                count=3,
            ),
        ),
        frozenset({"test_ratelimit::test_keys_and_tiers_are_isolated"}),
        FRESH_KEY_TESTS | SHARED_KEY_TESTS,
    ),
    "identity headers not stripped": Breakage(
        (Edit(LUA, "\n  strip_identity_headers(headers)\n", "\n"),),
        frozenset({"test_auth::test_model_server_never_receives_the_key_or_client_identity"}),
        modules=(AUTH,),
    ),
    # 1. Failed calls are free: the estimate set on the request is no longer dropped on a failure.
    "failed calls charged": Breakage(
        (
            Edit(
                LUA,
                # Both counts the budgets are charged from: the tokens and their weighted charge.
                '    handle:streamInfo():dynamicMetadata():set(USAGE_NS, "total_tokens", 0)\n'
                '    handle:streamInfo():dynamicMetadata():set(USAGE_NS, "charged", 0)\n',
                "",
            ),
        ),
        frozenset(
            {
                "test_accounting::test_a_failed_call_costs_no_tokens[upstream 404 (unknown route)]",
                "test_accounting::test_a_failed_call_costs_no_tokens[upstream 400 (messages not a list)]",
                "test_accounting::test_a_429_costs_no_tokens",
            }
        ),
        # An unknown model reaches the model server only without routing by model; with it (the
        # local values) the gateway answers 404 before any budget, so nothing is charged anyway.
        may_fail=frozenset({"test_accounting::test_a_failed_call_costs_no_tokens[upstream 404 (unknown model)]"}),
        modules=FAILED_CALLS,
    ),
    # 2. Retry-After of a request-limit 429 is the token window's reset.
    "Retry-After from the token window": Breakage(
        (
            Edit(
                LUA,
                'headers:replace("retry-after", tostring(wait))',
                'headers:replace("retry-after", tostring(resets.tokens))',
            ),
        ),
        frozenset(
            {
                "test_windows::test_retry_after_of_a_request_limit_429_is_the_request_window_reset",
                "test_windows::test_a_request_window_holds_for_its_whole_length",
            }
        ),
        modules=WINDOWS,
    ),
    # 3. x-ratelimit-remaining-tokens is the balance before the call, not after it.
    "remaining tokens before the call": Breakage(
        (
            Edit(
                LUA,
                'if kind == "tokens" and consumed ~= nil then left = math.max(0, left - consumed) end',
                "",
            ),
        ),
        frozenset({"test_ratelimit::test_remaining_tokens_decrease_with_use"}),
        modules=REMAINING,
    ),
    # 4. The request budget is counted against half its window: twice the requests per window (on
    # model calls and at llama-stack's front door).
    "request window halved": Breakage(
        (
            Edit(
                LUA,
                "math.floor(now / tier.requests_window)",
                "math.floor(now / (tier.requests_window / 2))",
            ),
        ),
        frozenset({"test_windows::test_a_request_window_holds_for_its_whole_length"}),
        frozenset({"test_windows::test_retry_after_of_a_request_limit_429_is_the_request_window_reset"}),
        modules=WINDOWS,
    ),
    # 6. Metering: a call's output tokens are not counted (usage that arrived is metered as input only).
    "output tokens not metered": Breakage(
        (
            Edit(
                LUA,
                "meter(handle, { input = prompt, output = completion })",
                "meter(handle, { input = prompt, output = 0 })",
            ),
        ),
        BILLED,
        modules=METERING,
    ),
    # 7. Metering: a budget's 429 is not counted as a refusal.
    "refusals by budget not metered": Breakage(
        (Edit(LUA, '    meter(handle, { refused = refused and BUDGET_METRIC[refused] or "unknown" })\n', ""),),
        BILLED,
        modules=METERING,
    ),
    # 8. Metering: answered calls are not marked, so no latency is recorded (the dashboard's latency
    # panels go empty).
    "latency not recorded": Breakage(
        (Edit(LUA, "    meter(handle, { served = 1 })\n", ""),),
        frozenset(
            {
                "test_usage_metrics::test_metrics_equal_what_the_gateway_charged",
                "test_usage_metrics::test_every_dashboard_panel_returns_data",
            }
        ),
        modules=METERING,
    ),
    # 9. llama-stack behind the gateway: the front door does not meter Responses (they pass free).
    "Responses not metered at the front door": Breakage(
        (Edit(LUA, '["/v1/completions"] = true, ["/v1/responses"] = true,', '["/v1/completions"] = true,'),),
        RESPONSES_CHARGED,
        modules=node_ids(RESPONSES_CHARGED),
    ),
    # 10. llama-stack's onward model calls take the charged route: the caller pays twice.
    "onward calls charged again": Breakage(
        (Edit(LUA, '    headers:replace(ONWARD_HEADER, "1")\n', ""),),
        CHARGED_ONCE,
        frozenset({FREE_KEY_RESPONSES_429}),
        modules=node_ids(CHARGED_ONCE | {FREE_KEY_RESPONSES_429}),
    ),
    # 11. Onward credentials are taken without checking their MAC: anyone can mint one and call free.
    "onward credentials not verified": Breakage(
        (
            Edit(
                LUA,
                "if string.lower(mac) ~= onward_mac(store.secret, expiry, tier, user) then return nil, INVALID_KEY end",
                "if false then return nil, INVALID_KEY end",
            ),
        ),
        frozenset({FORGED_ONWARD}),
        modules=node_ids(frozenset({FORGED_ONWARD})),
    ),
    # 12. A down llama-stack answers as a model server would: the caller cannot tell what is down.
    "llama-stack's 503 not its own": Breakage(
        (Edit(LUA, '  md:set(NS, "upstream", "llama-stack")\n', ""),),
        frozenset({LLAMA_STACK_DOWN}),
        modules=node_ids(frozenset({LLAMA_STACK_DOWN})),
    ),
    # 14. The gateway reports no readiness of llama-stack's own.
    "llama-stack readiness not reported": Breakage(
        (Edit(ENVOY, "string_match: {exact: /ready/llama-stack}", "string_match: {exact: /ready/llama-stack-off}"),),
        frozenset({LLAMA_STACK_DOWN}),
        modules=node_ids(frozenset({LLAMA_STACK_DOWN})),
    ),
    # 13. The front door leaves chunking calls as they come: llama-stack's hard-coded 800/400 and a
    # strategy that fails the file both pass.
    "chunking calls not settled": Breakage(
        (Edit(LUA, "and is_chunking_path(rest) and not on_chunking_call(handle, headers)", "and false"),),
        FRONT_DOOR_CHUNKING,
        modules=node_ids(FRONT_DOOR_CHUNKING),
    ),
    # 16. A call refused before its estimate leaves the charge counter without a number.
    "refusals give the charge counter no number": Breakage(
        (Edit(LUA, 'if usage == nil or usage["charged"] == nil then md:set(USAGE_NS, "charged", 0) end', ""),),
        frozenset({COUNTERS_NUMBERED}),
        modules=node_ids(frozenset({COUNTERS_NUMBERED})),
    ),
    # 15. llama-stack logs in its default console format: each failed call's rich traceback stalls it.
    "llama-stack logs rich tracebacks": Breakage(
        (Edit("llama-stack/values.yaml", "logFormat: json\n", "logFormat: console\n"),),
        frozenset({NO_STALL}),
        modules=node_ids(frozenset({NO_STALL})),
        component="llama-stack",
    ),
    # The gateway reaches llama-stack over TLS but no longer checks its certificate: any CA passes.
    "llama-stack's certificate not verified": Breakage(
        (Edit(ENVOY, '{{- $_ = set $lsCluster "verify" true }}', '{{- $_ = set $lsCluster "verify" false }}'),),
        frozenset({WRONG_CA}),
        modules=LLAMA_STACK_TLS,
    ),
    # 5. The gateway renders fail-open although the values promise closed: the fault test used to
    # read the rendered mode back and skip; it must fail.
    "fails open with no override": Breakage(
        (Edit(ENVOY, '{{- $deny := eq .Values.failureMode "closed" }}', "{{- $deny := false }}"),),
        frozenset(
            {
                "test_faults::test_limiter_down_fails_closed_fast[ratelimit]",
                "test_faults::test_limiter_down_fails_closed_fast[redis]",
            }
        ),
        modules=FAIL_CLOSED,
    ),
}
RANKING = frozenset(
    {
        *(
            f"test_rag::test_{name}[{doc}]"
            for name in ("one_result_is_the_answer_chunk", "scores_descend_from_the_answer_chunk")
            for doc in ("zephyr-lighthouse", "quillfeather-bakery", "marrowind-glacier", "karvo-almanac")
        ),
        "test_rag::test_long_document_answer_chunk_outranks_its_other_chunks",
    }
)
# The tests that register a model and claim it is listed: the add/remove test and the
# upstreamModel test (which registers its model under a public id of its own).
REGISTRATION = frozenset(
    {
        "test_models::test_registration_adds_and_removes_a_model",
        "test_models::test_a_model_under_its_own_public_id_answers_from_its_upstream_model",
    }
)


def restore(charts: Path, edits: tuple[Edit, ...]) -> None:
    for edit in edits:
        shutil.copyfile(CHARTS_DIR / edit.path, charts / edit.path)


def reset_counters(target: LocalTarget) -> None:
    """Empty Redis (every rate-limit counter) and the key pool's ledger: full budgets again."""
    port = int(target.run.get("ports")["redis"])
    rendered = stack.render(target.run)
    (secret,) = [s for s in rendered.of_kind("Secret") if s["metadata"]["name"].endswith("-redis-auth")]
    password = rendered.secret_data(secret["metadata"]["name"])["password"].encode()
    auth = b"*2\r\n$4\r\nAUTH\r\n$%d\r\n%s\r\n" % (len(password), password)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        conn.sendall(auth + b"*1\r\n$8\r\nFLUSHALL\r\n")
        reply = conn.recv(64)
        if reply == b"+OK\r\n":  # AUTH's answer may arrive alone
            reply += conn.recv(64)
    assert reply.startswith(b"+OK\r\n+OK"), f"redis AUTH + FLUSHALL answered {reply!r}"
    (target.run.root / LEDGER).unlink(missing_ok=True)


@pytest.mark.parametrize("name", list(GATEWAY_BREAKAGES))
def test_each_breakage_still_applies_to_the_charts(name: str, tmp_path: Path) -> None:
    """Before any stack starts, in a second: every edit still finds its text in today's charts
    (a changed template would otherwise fail its case only after minutes of stack time)."""
    charts = tmp_path / "charts"
    shutil.copytree(CHARTS_DIR, charts, symlinks=True)
    apply_edits(charts, GATEWAY_BREAKAGES[name].edits)


@pytest.fixture(scope="module")
def product_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokenStack]:
    # Nothing broken at start: each case makes its edits to the stack's chart copy, then restores them.
    # The e2e runs render from the copy too, when they restart a component (registration).
    yield from broken_stack(StackBreak(RUN_NAME, e2e_renders_copy=True), tmp_path_factory)


def assert_exactly(run: Run, expected: frozenset[str], what: str, may_fail: frozenset[str] = frozenset()) -> None:
    assert run.outcomes, f"{what}: nothing ran:\n{run.output[-3000:]}"
    unexpected, missing = run.failed() - expected - may_fail, expected - run.failed_by_assertion()
    assert not unexpected and not missing, (
        f"{what}: unexpected failures {sorted(unexpected)}; tests that should have failed but did not "
        f"{sorted(missing)}\n" + "\n".join(f"--- {name}: {run.message(name)[:600]}" for name in sorted(unexpected))
    )


@pytest.mark.parametrize("name", list(GATEWAY_BREAKAGES))
def test_gateway_breakage_fails_exactly_its_tests(product_stack: BrokenStack, name: str, tmp_path: Path) -> None:
    breakage = GATEWAY_BREAKAGES[name]
    target, charts = product_stack.target, product_stack.charts
    apply_edits(charts, breakage.edits)
    try:
        stack.restart(target.run, breakage.component)
        reset_counters(target)
        run = product_stack.run(list(breakage.modules), tmp_path)
    finally:
        restore(charts, breakage.edits)
        if breakage.component != "gateway":  # the next case restarts only the gateway
            stack.restart(target.run, breakage.component)
    assert_exactly(run, breakage.fail, name, breakage.may_fail)
    if breakage.fail:
        assert run.returncode == 1, f"{name}: pytest exited {run.returncode}"


def wait_listening(port: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not processes.port_in_use(port):
        assert time.monotonic() < deadline, f"nothing listens on 127.0.0.1:{port} after {timeout_s:.0f}s"
        time.sleep(0.1)


def test_constant_embedder_fails_exactly_the_ranking_tests(product_stack: BrokenStack, tmp_path: Path) -> None:
    target = product_stack.target
    port = int(target.run.get("ports")["embeddings"])
    (container,) = stack.stop_component(target.run, "embeddings")
    command = [sys.executable, "-m", "meta.constant_embedder", "--port", str(port), "--model", "broken"]
    env = {"PYTHONPATH": str(REPO_ROOT / "tests"), "PATH": "/usr/bin:/bin"}
    embedder = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # Recorded as the embeddings container: the suite then finds the stack whole and uses it
    # (an exited container makes it "only partly running"); the restart below stops it.
    target.run.record_pid(container, embedder.pid)
    try:
        wait_listening(port, EMBEDDER_READY_S)
        run = product_stack.run(["tests/e2e/test_rag.py"], tmp_path)
    finally:
        embedder.terminate()
        embedder.wait(timeout=10)
        stack.restart(target.run, "embeddings")
    assert_exactly(run, RANKING, "constant embedder")


def test_registration_skipping_a_model_fails_exactly_the_registration_test(
    product_stack: BrokenStack, tmp_path: Path
) -> None:
    # One of the claim's tests, run alone: each failing one waits out a 60 s registration timeout.
    claim = "test_models::test_registration_adds_and_removes_a_model"
    assert claim in REGISTRATION
    test = f"tests/e2e/{claim.replace('::', '.py::')}"
    run = product_stack.run([test], tmp_path, extra=("-p", "meta.skip_one_model"))
    assert_exactly(run, frozenset({claim}), "registration skipping one model")


MODELS_CHECK = "tests/e2e/test_models_check.py"
REMOVED_FROM_LLAMA_STACK = "test_models_check::test_a_model_removed_from_llama_stack_is_drift_and_sync_repairs_it"
GATEWAY_ONLY = "test_models_check::test_a_model_only_the_gateway_lists_is_drift"
# case of meta.break_models_check -> the test that claims the broken mechanism (run alone: each
# restarts llama-stack or the gateway twice)
MODELS_BREAKAGES = {
    "ignores-llama-stack": REMOVED_FROM_LLAMA_STACK,
    "ignores-gateway": GATEWAY_ONLY,
    "sync-registers-nothing": REMOVED_FROM_LLAMA_STACK,
}


@pytest.mark.parametrize("case", list(MODELS_BREAKAGES))
def test_models_check_breakage_fails_its_test(product_stack: BrokenStack, case: str, tmp_path: Path) -> None:
    claim = MODELS_BREAKAGES[case]
    test = f"{MODELS_CHECK}::{claim.split('::', 1)[1]}"
    run = product_stack.run([test], tmp_path, extra=("-p", "meta.break_models_check"), env={"META_MODELS_BREAK": case})
    assert_exactly(run, frozenset({claim}), f"models check: {case}")
