"""Faults have defined outcomes: each test stops a real component, checks what the gateway
answers and how fast, starts it again and checks the gateway recovers within RECOVERY_S.

- rate limit service or Redis down, failureMode closed: 503 JSON within the rate limit timeout
  (+100 ms over the gateway's normal latency, measured first); failureMode open: the call
  passes, within one timeout per budget call, and the gateway logs that it went unchecked;
- model server down: 503 JSON;
- no request outlives the route timeout.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from charts.promises import PROMISES

from .faults import (
    TIMEOUT_SLACK_S,
    GatewaySettings,
    assert_503_json,
    fault_target,
    gateway_settings,
    normal_latency,
    recovery_time,
    timed,
    user_override,
)
from .support import WINDOW_MARGIN_S, Gateway, Reply, await_window, remaining_tokens

pytestmark = [pytest.mark.e2e, pytest.mark.faults]

CALLS_WHILE_DOWN = 3
# The model server's stop and the calls while it is down fit in this much of a budget window
# (a kube stop waits for the pod to go); when they did not, the check runs again, this often.
WINDOW_NEEDED_S = 30.0
WINDOW_TRIES = 2
# After a reply, how long a (wrong) charge would take to show in the budget.
CHARGE_SETTLE_S = 0.5
UNCHECKED_LOG = "passed unchecked (failureMode open)"


@pytest.fixture(scope="module")
def faults(target: Any, endpoints: Any) -> Any:
    return fault_target(target)


@pytest.fixture(scope="module")
def settings(faults: Any) -> GatewaySettings:
    return gateway_settings(faults.rendered_objects())


def chat(gateway: Gateway, key: str) -> Reply:
    return gateway.chat(key, "fault check", max_tokens=2)


def test_model_server_down_answers_503_json(gateway: Gateway, key_pool, faults: Any, settings: GatewaySettings) -> None:
    """503 JSON fast, and the failed calls cost no tokens (budget read before and after, in one
    window: a kube stop waits for the pod to go, and a window that turned over meanwhile would
    refill the budget; then the check runs once more)."""
    key = key_pool.shared("enterprise")
    for _ in range(WINDOW_TRIES):
        await_window(gateway, key, WINDOW_NEEDED_S)
        before = gateway.models(key).rate
        assert before.remaining_tokens is not None and before.reset_tokens is not None, (
            f"the gateway sent no token budget on /v1/models: {before}"
        )
        window_ends = time.monotonic() + before.reset_tokens
        faults.stop_component("model-server")
        try:
            for _ in range(CALLS_WHILE_DOWN):
                reply, took = timed(lambda: chat(gateway, key))
                assert_503_json(reply, "upstream_unavailable")
                assert took < settings.route_timeout_s, f"took {took:.1f}s, past the route timeout"
            time.sleep(CHARGE_SETTLE_S)
            after = remaining_tokens(gateway, key)
            same_window = time.monotonic() < window_ends - WINDOW_MARGIN_S
        finally:
            faults.start_component("model-server")
        if same_window:
            break
        print("model server: the token window turned over while the model server stopped; checking again")
    else:
        pytest.fail(f"the model server's stop outlasted the token window {WINDOW_TRIES} times")
    assert after == before.remaining_tokens, (
        f"{CALLS_WHILE_DOWN} calls to a stopped model server cost {before.remaining_tokens - after} tokens"
    )
    took = recovery_time(lambda: chat(gateway, key), lambda r: r.status == 200)
    print(f"model server: gateway recovered {took:.2f}s after it returned")


def promised_failure_mode() -> str:
    """What the chart default and every shipped overlay promise (pinned by the chart tests)."""
    return next(p.value for p in PROMISES if p.id == "maas-gateway:failureMode")


@pytest.mark.parametrize("component", ["ratelimit", "redis"])
def test_limiter_down_fails_closed_fast(
    gateway: Gateway, key_pool, faults: Any, settings: GatewaySettings, harness_state: Any, component: str
) -> None:
    promised = promised_failure_mode()
    assert promised == "closed", f"the charts promise failureMode {promised!r}; this test checks 'closed'"
    if not settings.fail_closed:
        override = user_override(harness_state.options.values, "maas-gateway", "failureMode")
        if override is not None:
            pytest.skip(f"failureMode: open set on purpose by the values file {override} (--values)")
        pytest.fail(
            "the running gateway is configured failureMode: open, but the chart default and every shipped "
            "overlay promise 'closed' and no --values file of this run overrides it"
        )
    key = key_pool.shared("enterprise")
    bound = normal_latency(lambda: chat(gateway, key)) + settings.rate_limit_timeout_s + TIMEOUT_SLACK_S
    faults.stop_component(component)
    try:
        for _ in range(CALLS_WHILE_DOWN):
            reply, took = timed(lambda: chat(gateway, key))
            assert_503_json(reply, "rate_limit_service_unavailable")
            assert took <= bound, f"{component} down: answered after {took:.3f}s, more than {bound:.3f}s"
    finally:
        faults.start_component(component)
    took = recovery_time(lambda: chat(gateway, key), lambda r: r.status == 200)
    print(f"{component}: gateway recovered {took:.2f}s after it returned")


@pytest.fixture(scope="module")
def open_gateway(faults: Any, settings: GatewaySettings) -> Iterator[None]:
    """The same stack with failureMode: open for a while (the gateway restarts twice)."""
    faults.override_values({"maas-gateway": {"failureMode": "open"}}, restart="gateway")
    try:
        assert not gateway_settings(faults.rendered_objects()).fail_closed, "failureMode: open did not render"
        yield
    finally:
        faults.override_values(None, restart="gateway")


@pytest.mark.parametrize("component", ["ratelimit", "redis"])
def test_limiter_down_fails_open_and_logs(
    gateway: Gateway, key_pool, faults: Any, open_gateway: None, settings: GatewaySettings, component: str
) -> None:
    key = key_pool.shared("enterprise")
    # A chat call to a model without budgets of its own asks the limiter twice (tokens, requests):
    # each unanswered call waits its timeout.
    bound = normal_latency(lambda: chat(gateway, key)) + settings.rate_limit_timeout_s * 2 + TIMEOUT_SLACK_S
    logged_before = faults.component_log("gateway").count(UNCHECKED_LOG)
    faults.stop_component(component)
    try:
        for _ in range(CALLS_WHILE_DOWN):
            reply, took = timed(lambda: chat(gateway, key))
            assert reply.status == 200, f"failureMode open refused a call with {component} down: {reply.describe()}"
            assert took <= bound, f"{component} down: answered after {took:.3f}s, more than {bound:.3f}s"
    finally:
        faults.start_component(component)
    logged = faults.component_log("gateway").count(UNCHECKED_LOG) - logged_before
    assert logged >= CALLS_WHILE_DOWN, f"{CALLS_WHILE_DOWN} unchecked calls, {logged} logged"
    # Recovered: the limiter answers again (its budget headers are back).
    took = recovery_time(lambda: chat(gateway, key), lambda r: r.status == 200 and r.rate.remaining_tokens is not None)
    print(f"{component}: limiter answering {took:.2f}s after it returned")
