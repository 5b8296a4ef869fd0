"""Model budgets and token weights (catalog `limits` and `tokenCost`, with routing by model): a
model's rpm/tpm is one counter shared by every caller, a per-tier tpm is per user of that tier, all
of them apply in addition to the tier budgets (a looser one is still checked), the headers report the
tightest budget, a 429 names the budget that refused, and every token budget is charged
ceil(prompt * input + completion * output), streams from their final usage chunk."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from .envoy_model import Clock, Gateway, model_server, streaming_server

pytestmark = pytest.mark.unit

FREE, FREE_2, PREMIUM, ENTERPRISE = "k-free", "k-free-2", "k-premium", "k-enterprise"


def entry(**extra: Any) -> dict[str, Any]:
    return {"cluster": "maas_upstream", "served": "served", "meta": {}, "cost": {"input": 1, "output": 1}, **extra}


def routed(make_gateway: Callable[..., Gateway], clock: Clock, **models: dict[str, Any]) -> Gateway:
    # Start each test at a minute's start: every model budget is a one-minute window.
    clock.to_window_start(60, offset=1)
    return make_gateway(models={"other-model": entry(), **models})


def call(gateway: Gateway, key: str, model: str, upstream: Any = None) -> Any:
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 8}
    return gateway.call("POST", "/v1/chat/completions", key=key, body=body, upstream=upstream or model_server(30))


def refused_by(reply: Any, budget: str, *words: str) -> None:
    assert reply.status == 429, reply.describe()
    assert reply.header("x-maas-ratelimit-exceeded") == budget, reply.describe()
    assert reply.header("retry-after") is not None, reply.describe()
    error = reply.json()["error"]
    assert error["type"] == "rate_limit_exceeded", reply.describe()
    for word in words:
        assert word in error["message"], error["message"]


def test_a_models_tpm_is_shared_by_callers_of_different_tiers(make_gateway, clock) -> None:
    gateway = routed(make_gateway, clock, **{"m": entry(limits={"tpm": 100})})
    spent = {FREE: 0, PREMIUM: 0}
    for i in range(4):  # 4 x 30 = 120: the counter passes 100 on the fourth call
        key = (FREE, PREMIUM)[i % 2]
        assert call(gateway, key, "m").status == 200
        spent[key] += 30
    reply = call(gateway, FREE, "m")
    refused_by(reply, "model_tokens", "model tokens per minute for m", "100")
    assert max(spent.values()) < 100, "one caller alone spent the model's budget"
    # Another model is not affected, and the next minute is fresh.
    assert call(gateway, FREE, "other-model").status == 200
    clock.to_window_start(60, offset=1)
    assert call(gateway, PREMIUM, "m").status == 200


def test_a_looser_model_budget_is_still_enforced(make_gateway, clock) -> None:
    """The model's tpm (300) is looser than the free tier's 200, so a free caller's headers report the
    tier; the model's budget must still refuse the free caller once others have spent it."""
    gateway = routed(make_gateway, clock, **{"m": entry(limits={"tpm": 300})})
    first = call(gateway, FREE, "m")
    assert first.status == 200
    assert first.int_header("x-ratelimit-limit-tokens") == 200, first.describe()
    for _ in range(9):  # premium spends 270: the model has 300 - 30 - 270 = 0 left
        assert call(gateway, PREMIUM, "m").status == 200
    # The model is now the tightest for everyone, and one more check passes (0 left is not over)...
    reply = call(gateway, ENTERPRISE, "m")
    assert reply.status == 200, reply.describe()
    # ...after which the free caller, far inside its tier, is refused by the model's budget.
    refused_by(call(gateway, FREE, "m"), "model_tokens", "shared by every caller")


def test_the_headers_report_the_tightest_budget(make_gateway, clock) -> None:
    gateway = routed(make_gateway, clock, **{"m": entry(limits={"tpm": 100, "rpm": 3})})
    reply = call(gateway, PREMIUM, "m")
    assert reply.status == 200
    # Premium has 1000 tokens and 20 requests; the model 100 tokens and 3 requests a minute.
    assert reply.int_header("x-ratelimit-limit-tokens") == 100, reply.describe()
    assert reply.int_header("x-ratelimit-remaining-tokens") == 70, reply.describe()
    assert reply.int_header("x-ratelimit-limit-requests") == 3, reply.describe()
    assert reply.int_header("x-ratelimit-remaining-requests") == 2, reply.describe()
    assert reply.int_header("x-ratelimit-reset-tokens") == 59, reply.describe()
    # A model without limits reports the tier as before.
    plain = call(gateway, PREMIUM, "other-model")
    assert plain.int_header("x-ratelimit-limit-tokens") == 1000, plain.describe()


def test_a_models_rpm_is_shared(make_gateway, clock) -> None:
    gateway = routed(make_gateway, clock, **{"m": entry(limits={"rpm": 3})})
    for key in (FREE, PREMIUM, ENTERPRISE):
        assert call(gateway, key, "m").status == 200
    reply = call(gateway, FREE_2, "m")
    refused_by(reply, "model_requests", "model requests per minute for m")
    assert reply.int_header("retry-after") == 59, reply.describe()


def test_a_per_tier_tpm_is_per_user_of_that_tier(make_gateway, clock) -> None:
    gateway = routed(make_gateway, clock, **{"m": entry(limits={"tiers": {"free": {"tpm": 60}}})})
    assert call(gateway, FREE, "m").status == 200
    assert call(gateway, FREE, "m").status == 200  # 60 spent: 0 left, not over
    assert call(gateway, FREE, "m").status == 200  # 90 spent: over
    refused_by(call(gateway, FREE, "m"), "tier_model_tokens", "tier 'free' for model m")
    # The other free user has their own budget on the model; other tiers have none here.
    assert call(gateway, FREE_2, "m").status == 200
    for _ in range(4):
        assert call(gateway, PREMIUM, "m").status == 200
    # The per-tier limit is tighter than the tier's 200, so the free caller's headers report it.
    reply = call(gateway, FREE_2, "m")
    assert reply.int_header("x-ratelimit-limit-tokens") == 60, reply.describe()


def test_a_tighter_tier_budget_refuses_before_the_model_budgets(make_gateway, clock) -> None:
    gateway = routed(make_gateway, clock, **{"m": entry(limits={"tpm": 5000})})
    assert call(gateway, FREE, "m", model_server(250)).status == 200
    refused_by(call(gateway, FREE, "m"), "tokens", "tokens per 1m of tier 'free'")


def test_the_output_weight_is_what_every_token_budget_is_charged(make_gateway, clock) -> None:
    """prompt 20 + 4 x completion 10 = 60 per call against the free tier's 200: the fourth call passes
    (180 spent), the fifth is refused (240), exactly where the weighted arithmetic says."""
    cost = {"input": 1, "output": 4}
    gateway = routed(make_gateway, clock, **{"m": entry(cost=cost, limits={"tpm": 10_000})})
    upstream = model_server(30, completion_tokens=10)
    for _ in range(4):
        reply = call(gateway, FREE, "m", upstream)
        assert reply.status == 200, reply.describe()
        assert reply.int_header("x-maas-tokens-charged") == 60, reply.describe()
        assert reply.int_header("x-ratelimit-consumed-tokens") == 60, reply.describe()
        assert reply.header("x-maas-token-cost-input") == "1" and reply.header("x-maas-token-cost-output") == "4"
    assert gateway.charges == [60, 60, 60, 60]
    refused_by(call(gateway, FREE, "m", upstream), "tokens", "tier 'free'")
    # The model's budget was charged the same weighted amounts.
    model_counter = sum(n for (kind, *_), n in gateway.limiter.counters.items() if kind == "model_tokens")
    assert model_counter == 240


def test_fractional_weights_are_rounded_up(make_gateway, clock) -> None:
    gateway = routed(make_gateway, clock, **{"m": entry(cost={"input": 0.1, "output": 1.5})})
    # prompt 29 x 0.1 + 1 x 1.5 = 4.4 -> 5
    reply = call(gateway, PREMIUM, "m")
    assert reply.int_header("x-maas-tokens-charged") == 5, reply.describe()


def test_a_stream_is_charged_its_weighted_usage(make_gateway, clock) -> None:
    gateway = routed(make_gateway, clock, **{"m": entry(cost={"input": 1, "output": 4})})
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 8, "stream": True}
    reply = gateway.call(
        "POST", "/v1/chat/completions", key=PREMIUM, body=body, upstream=streaming_server(30, completion_tokens=10)
    )
    assert reply.status == 200 and reply.header("x-maas-token-cost-output") == "4", reply.describe()
    assert gateway.charges == [60]
    # A final chunk with only total_tokens: all of it at the larger weight (an upper bound).
    gateway.call("POST", "/v1/chat/completions", key=PREMIUM, body=body, upstream=streaming_server(30))
    assert gateway.charges == [60, 120]


def test_unweighted_models_are_charged_their_total(make_gateway, clock) -> None:
    gateway = routed(make_gateway, clock)
    reply = call(gateway, PREMIUM, "other-model", model_server(30, completion_tokens=10))
    assert reply.int_header("x-maas-tokens-charged") == 30
    assert gateway.charges == [30]
