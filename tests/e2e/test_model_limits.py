"""The catalog's model budgets and token weights at the gateway (maas-gateway `routing.byModel`):

- a model's `limits.tpm` is one counter shared by every caller: two users of different tiers
  together reach the model's 429 before either reaches their tier's, and the 429 names the model's
  budget (the free user's tier limit is the lower one, so the model's budget is shadowed in that
  user's configured limits and must still be enforced);
- with `tokenCost.output: 4` a reply of N output tokens is charged 4N (plus its input tokens) to
  the tier's budget, the response says so, and the tier's 429 comes exactly where that arithmetic
  says; a stream is charged the same from its final usage chunk.

Driven by the declared catalog: values/local.yaml and values/kind.yaml declare
`simulated-model-limited` (tpm 300) and `simulated-model-weighted` (output weight 4), both served by
the first model server, and called by no test that runs before these (test_usage_metrics, later,
spends the limited model's budget once to see its refusal metered)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import pytest
from harness.declared import Declared, RoutedModel
from harness.registration import listed_id

from .support import Gateway, Reply, auth_header, await_window, parse_sse, remaining_tokens, wait_for_charge, words

pytestmark = [pytest.mark.e2e, pytest.mark.chat]

# Seconds a test needs left in the current minute (every budget here is a one-minute window).
NEEDED_S = 5.0
# Seconds a test calling through llama-stack needs left in the minute (a busy machine's llama-stack call).
LLAMA_STACK_SPAN_S = 15.0
# Bounds on the calls a test makes before it must have seen its 429.
MAX_CALLS = 12


def chat(gateway: Gateway, key: str, model: str, *, prompt_words: int, max_tokens: int) -> Reply:
    body = {"model": model, "messages": [{"role": "user", "content": words(prompt_words)}], "max_tokens": max_tokens}
    response = gateway.http.post("/v1/chat/completions", json=body, headers=auth_header(key))
    try:
        parsed: Any = response.json()
    except ValueError:
        parsed = response.text
    return Reply(response.status_code, response.headers, parsed)


def charged(reply: Reply) -> int:
    value = reply.headers.get("x-maas-tokens-charged")
    assert value is not None, f"no x-maas-tokens-charged on a model call: {reply.describe()}"
    return int(value)


def expect_rate_limit(reply: Reply, budget: str, *words_in_message: str) -> None:
    assert reply.status == 429, reply.describe()
    assert reply.headers.get("retry-after"), reply.describe()
    assert reply.headers.get("x-maas-ratelimit-exceeded") == budget, reply.describe()
    error = reply.body["error"]
    assert error["type"] == "rate_limit_exceeded", reply.describe()
    for word in words_in_message:
        assert word in error["message"], f"the 429 does not say {word!r}: {error['message']!r}"


def pick(routed: dict[str, RoutedModel], want: str) -> tuple[str, RoutedModel]:
    for model, entry in routed.items():
        if want == "tpm" and entry.tpm is not None:
            return model, entry
        if want == "weighted" and entry.cost_output != 1 and entry.tpm is None and not entry.tier_tpm:
            return model, entry
    pytest.skip(f"the catalog declares no model with {want} (global.models.<key>.limits / tokenCost): {routed}")


def spend_together(
    gateway: Gateway, users: list[tuple[str, str]], model: str, tpm: int, tier_limits: dict[str, int]
) -> tuple[Reply, dict[str, int], int]:
    """Alternate the users' calls of `model` until one is refused: the refusal, what each user was
    charged, and what the model's budget had spent before the first call (read from its answer)."""
    spent = {tier: 0 for tier, _ in users}
    shared = 0
    for i in range(MAX_CALLS):
        tier, key = users[i % 2]
        reply = chat(gateway, key, model, prompt_words=40, max_tokens=8)
        if reply.status == 429:
            return reply, spent, shared
        assert reply.status == 200, reply.describe()
        cost = charged(reply)
        if i == 0:
            # The caller's tightest token budget after this call: the model's when the model has
            # less left than the caller's tier.
            left = reply.rate.remaining_tokens
            assert left is not None, reply.describe()
            shared = tpm - left - cost if left < tier_limits[tier] - cost else 0
        spent[tier] += cost
    pytest.fail(f"no 429 (model_tokens expected) after {MAX_CALLS} calls of {model}: spent {spent}, model tpm {tpm}")


def test_a_models_tpm_is_shared_by_callers_of_different_tiers(
    gateway: Gateway, key_pool, routed, declared: Declared
) -> None:
    model, entry = pick(routed, "tpm")
    assert entry.tpm is not None
    tier_limits = declared.tier_token_limits()
    # Premium first: its tier budget is larger than the model's, so its first answer reports the
    # model's budget (the tightest) and shows what the model had spent before this test.
    users = [
        (tier, key_pool.one(tier)) for tier in ("premium", "free") if entry.allows(tier) and tier not in entry.tier_tpm
    ]
    if len(users) < 2:
        pytest.skip(f"{model} is not open to free and premium without a per-tier limit: {entry}")
    for attempt in range(2):
        await_window(gateway, users[0][1], NEEDED_S)
        reply, spent, shared = spend_together(gateway, users, model, entry.tpm, tier_limits)
        if any(spent.values()) or attempt:
            break
        # The model's budget was spent before this test (an earlier run in this minute): wait for
        # the next minute once.
        time.sleep(int(reply.headers.get("retry-after") or 1) + 1)
    expect_rate_limit(reply, "model_tokens", "model tokens per minute", model)
    total = shared + sum(spent.values())
    # The model's counter is checked before each call and charged after it: it refuses the first call
    # once the callers together have spent more than its tpm, and no earlier.
    assert total > entry.tpm, f"refused at {total} tokens spent on {model}, its tpm is {entry.tpm}: {spent}"
    for tier, used in spent.items():
        assert used <= tier_limits[tier], f"the {tier} user spent {used} > its tier's {tier_limits[tier]}: {spent}"
        assert 0 < used <= entry.tpm, f"one user alone reached the model's tpm: {spent}"


def test_output_weight_is_charged_and_the_tiers_429_comes_where_the_arithmetic_says(
    gateway: Gateway, key_pool, routed, declared: Declared
) -> None:
    model, entry = pick(routed, "weighted")
    if not entry.allows("free"):
        pytest.skip(f"{model} is not open to free keys: {entry}")
    limit = declared.tier_token_limits()["free"]
    key = key_pool.one("free")
    await_window(gateway, key, NEEDED_S)
    spent = 0
    for _ in range(MAX_CALLS):
        before = spent
        reply = chat(gateway, key, model, prompt_words=10, max_tokens=12)
        if reply.status == 429:
            break
        assert reply.status == 200, reply.describe()
        usage = reply.usage
        expected = math.ceil(usage["prompt_tokens"] * entry.cost_input + usage["completion_tokens"] * entry.cost_output)
        assert usage["completion_tokens"] > 0, reply.describe()
        assert charged(reply) == expected, f"usage {usage} with weights {entry}: {reply.describe()}"
        assert reply.rate.consumed_tokens == expected, reply.describe()
        assert reply.headers.get("x-maas-token-cost-output") in {str(entry.cost_output), str(int(entry.cost_output))}
        assert reply.rate.remaining_tokens == max(0, limit - before - expected), (
            f"remaining after {before} + {expected} of {limit}: {reply.describe()}"
        )
        spent += expected
        # The charge is applied when the stream ends, just after the client has the answer.
        wait_for_charge(gateway, key, limit - spent)
    else:
        pytest.fail(f"no 429 after {MAX_CALLS} calls: spent {spent} of {limit}")
    # Checked before the call, charged after it: the first call after the weighted sum passed the limit
    # is refused, and none before it (the loop saw every earlier call answered).
    assert before > limit, f"refused with {before} of {limit} spent: the tier's 429 came early"
    expect_rate_limit(reply, "tokens", "tier 'free'")


def test_a_stream_is_charged_its_weighted_usage(gateway: Gateway, key_pool, routed) -> None:
    model, entry = pick(routed, "weighted")
    if not entry.allows("free"):
        pytest.skip(f"{model} is not open to free keys: {entry}")
    key = key_pool.one("free")
    await_window(gateway, key, NEEDED_S)
    start = remaining_tokens(gateway, key)
    body = {
        "model": model,
        "messages": [{"role": "user", "content": words(10)}],
        "max_tokens": 6,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    with gateway.http.stream("POST", "/v1/chat/completions", json=body, headers=auth_header(key)) as response:
        assert response.status_code == 200, response.read()
        assert response.headers.get("x-maas-token-cost-output") in {str(entry.cost_output), str(int(entry.cost_output))}
        chunks = parse_sse(response.iter_lines())
    usage = chunks[-1]["usage"]
    expected = math.ceil(usage["prompt_tokens"] * entry.cost_input + usage["completion_tokens"] * entry.cost_output)
    assert expected > usage["total_tokens"], f"the weight changes nothing for {usage}"
    assert wait_for_charge(gateway, key, start - expected) == start - expected, (
        f"a stream with usage {usage} was not charged {expected}"
    )


def test_a_weighted_model_through_llama_stack_is_charged_its_weights(
    llama_stack_as: Callable[[str], Any], gateway: Gateway, key_pool, routed, declared: Declared
) -> None:
    """llama-stack calls the gateway with the entry's public id, not its upstreamModel (which is
    another entry's id here): the caller's budget is charged the entry's weighted usage."""
    model, entry = pick(routed, "weighted")
    if not entry.allows("free"):
        pytest.skip(f"{model} is not open to free keys: {entry}")
    catalog = (declared.values.get("global") or {}).get("models") or {}
    name, values = next((k, v) for k, v in catalog.items() if v and v.get("id") == model)
    key = key_pool.one("free")
    await_window(gateway, key, LLAMA_STACK_SPAN_S)
    start = remaining_tokens(gateway, key)
    reply = llama_stack_as(key).chat.completions.create(
        model=listed_id(name, values), messages=[{"role": "user", "content": words(10)}], max_tokens=6
    )
    assert reply.usage is not None, f"no usage in {reply}"
    usage = reply.usage
    expected = math.ceil(usage.prompt_tokens * entry.cost_input + usage.completion_tokens * entry.cost_output)
    assert expected > usage.total_tokens, f"the weight changes nothing for {usage}"
    assert wait_for_charge(gateway, key, start - expected) == start - expected, (
        f"a call through llama-stack with usage {usage} was not charged {expected} (the weights of {model})"
    )
