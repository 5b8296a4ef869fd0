"""Tier rate limits at the gateway: tokens per minute and requests per 2 minutes, per key.

Every test takes its own unused keys from `key_pool`, so each starts with a full budget.
Windows are epoch-aligned: a test first makes sure enough of the window is left for it to
finish (`await_window` reads x-ratelimit-reset-* and waits for the next window otherwise), so
no boundary can fall in its middle. Token counts are exact on the local stack (its model
server counts whitespace tokens); the assertions use only the usage the gateway reports, so
they hold for any model.
"""

from __future__ import annotations

import time

import pytest

from .support import (
    TIER_REQUESTS,
    TIER_TOKENS,
    WINDOW_S,
    Gateway,
    Reply,
    await_window,
    remaining_tokens,
    wait_for_charge,
    words,
)

pytestmark = [pytest.mark.e2e, pytest.mark.ratelimit]

BIG_PROMPT = words(120)  # ~121 tokens with max_tokens=1: the free budget (200) is crossed on the 2nd request


# Slack between Retry-After and the refusing window's reset measured here (whole seconds, a
# request in flight across a second boundary).
RETRY_AFTER_SLACK_S = 1


def assert_429(reply: Reply, limit: str) -> None:
    """An OpenAI-style 429 whose Retry-After is the reset of the limit that refused (`requests` or
    `tokens`): the reset header the gateway sent for that limit, and the seconds left in that
    limit's window by the clock here (epoch-aligned windows), both within RETRY_AFTER_SLACK_S."""
    assert reply.status == 429, f"expected 429, got {reply.describe()}"
    error = reply.body.get("error") if isinstance(reply.body, dict) else None
    assert isinstance(error, dict) and error.get("type") == "rate_limit_exceeded", (
        f"429 without an OpenAI-style error: {reply.describe()}"
    )
    retry_after = reply.headers.get("retry-after", "")
    assert retry_after.isdigit() and int(retry_after) > 0, (
        f"429 without a usable Retry-After ({retry_after!r}): {reply.describe()}"
    )
    reset = reply.rate.reset_requests if limit == "requests" else reply.rate.reset_tokens
    assert reset is not None and abs(int(retry_after) - reset) <= RETRY_AFTER_SLACK_S, (
        f"a {limit}-limit 429 says Retry-After {retry_after}, but the {limit} window resets in {reset}s: "
        f"{reply.describe()}"
    )
    window = WINDOW_S[limit]
    left = window - time.time() % window
    assert abs(int(retry_after) - left) <= RETRY_AFTER_SLACK_S + 0.5, (
        f"a {limit}-limit 429 says Retry-After {retry_after}, but the {window}s {limit} window ends in {left:.1f}s"
    )


# Time one test needs inside a single window (a few dozen requests on a shared 2-core machine).
TEST_SPAN_S = 20.0


def chat_settled(gateway: Gateway, key: str, prompt: str, max_tokens: int) -> Reply:
    """A chat whose token charge the gateway has recorded before this returns.

    A non-streaming reply's x-ratelimit-remaining-tokens already subtracts its own usage
    (x-ratelimit-consumed-tokens); the budget the gateway enforces shows it once charged.
    """
    reply = gateway.chat(key, prompt, max_tokens=max_tokens)
    if reply.status == 200:
        assert reply.rate.remaining_tokens is not None, f"no x-ratelimit-remaining-tokens: {reply.describe()}"
        wait_for_charge(gateway, key, reply.rate.remaining_tokens)
    return reply


def spend_until_limited(gateway: Gateway, key: str, prompt: str, attempts: int) -> tuple[list[Reply], Reply | None]:
    """Send until a 429 (returned separately) or `attempts` requests passed."""
    passed: list[Reply] = []
    for _ in range(attempts):
        reply = chat_settled(gateway, key, prompt, max_tokens=1)
        if reply.status == 429:
            return passed, reply
        assert reply.status == 200, reply.describe()
        passed.append(reply)
    return passed, None


def test_free_tier_is_limited_at_its_token_budget(gateway: Gateway, key_pool) -> None:
    key = key_pool.one("free")
    await_window(gateway, key, TEST_SPAN_S)
    budget = TIER_TOKENS["free"]
    passed, limited = spend_until_limited(gateway, key, BIG_PROMPT, attempts=TIER_REQUESTS["free"] - 1)
    assert passed, f"the first request of a fresh free key was refused: {limited and limited.describe()}"
    assert limited is not None, (
        f"{len(passed)} requests worth {sum(r.usage['total_tokens'] for r in passed)} tokens "
        f"passed a {budget}-token budget"
    )
    spent = [r.usage["total_tokens"] for r in passed]
    # The request that crosses may pass; nothing passes once the budget is spent, and
    # nothing is refused that would have stayed within it.
    assert sum(spent[:-1]) < budget, f"requests passed after the budget was spent: {spent}; budget {budget}"
    assert sum(spent) + spent[-1] > budget, f"refused early, after {spent} of {budget} tokens"
    assert_429(limited, "tokens")
    rate = limited.rate
    assert rate.limit_tokens == budget, limited.describe()
    assert rate.remaining_tokens == 0, limited.describe()
    assert rate.limit_requests == TIER_REQUESTS["free"], limited.describe()
    # Refused within the request budget, so for tokens (the 429 of one limit need not
    # carry the other limit's remaining count: the first limit to refuse stops the check).
    assert len(passed) + 1 < TIER_REQUESTS["free"], f"refused only at request {len(passed) + 1}: {limited.describe()}"


@pytest.mark.parametrize(("tier", "count"), [("premium", 10), ("enterprise", 20)])
def test_paid_tiers_pass_a_burst(gateway: Gateway, key_pool, tier: str, count: int) -> None:
    key = key_pool.one(tier)
    await_window(gateway, key, TEST_SPAN_S)
    for i in range(count):
        # Word characters only: the simulator's tokenizer counts a "-" as a token of its own.
        reply = gateway.chat(key, words(20, stem=f"r{i}w"), max_tokens=20)
        assert reply.status == 200, f"{tier} request {i + 1}/{count} refused: {reply.describe()}"
        assert reply.rate.limit_tokens == TIER_TOKENS[tier], reply.describe()
        assert reply.rate.limit_requests == TIER_REQUESTS[tier], reply.describe()


def test_free_request_count_limit(gateway: Gateway, key_pool) -> None:
    key = key_pool.one("free")
    await_window(gateway, key, TEST_SPAN_S)
    limit = TIER_REQUESTS["free"]
    for i in range(limit):
        reply = gateway.chat(key, "tiny", max_tokens=1)
        assert reply.status == 200, f"request {i + 1} of {limit} refused: {reply.describe()}"
        assert reply.rate.remaining_requests is not None, f"no x-ratelimit-remaining-requests: {reply.describe()}"
    over = gateway.chat(key, "tiny", max_tokens=1)
    assert_429(over, "requests")
    assert over.rate.remaining_requests == 0, over.describe()
    assert over.rate.remaining_tokens is not None and over.rate.remaining_tokens > 0, (
        f"refused for tokens, not requests: {over.describe()}"
    )


def test_keys_and_tiers_are_isolated(gateway: Gateway, key_pool) -> None:
    spent_key, other_free = key_pool.take("free", 2)
    premium = key_pool.one("premium")
    await_window(gateway, spent_key, TEST_SPAN_S)
    _, limited = spend_until_limited(gateway, spent_key, BIG_PROMPT, attempts=TIER_REQUESTS["free"] - 1)
    assert limited is not None, "could not exhaust a free key"
    assert_429(limited, "tokens")
    for name, key in (("another free key", other_free), ("a premium key", premium)):
        reply = gateway.chat(key, "still fine", max_tokens=2)
        assert reply.status == 200, f"{name} was limited by someone else's usage: {reply.describe()}"
        assert reply.rate.limit_tokens is not None, f"{name}: no token-limit header: {reply.describe()}"
        assert reply.rate.remaining_tokens is not None and reply.rate.remaining_tokens > reply.rate.limit_tokens // 2, (
            reply.describe()
        )


def test_remaining_tokens_decrease_with_use(gateway: Gateway, key_pool) -> None:
    """x-ratelimit-remaining-tokens on a non-streamed 200 is the balance after this response:
    the budget before the call minus its usage.total_tokens, and the budget the gateway then
    enforces."""
    key = key_pool.one("free")
    await_window(gateway, key, TEST_SPAN_S)
    for n in (10, 20, 30):
        before = remaining_tokens(gateway, key)
        reply = chat_settled(gateway, key, words(n), max_tokens=1)
        assert reply.status == 200, reply.describe()
        spent = reply.usage["total_tokens"]
        assert reply.rate.remaining_tokens == before - spent, (
            f"x-ratelimit-remaining-tokens {reply.rate.remaining_tokens}; the budget was {before} before a call "
            f"of {spent} tokens, so it must be {before - spent}"
        )
        assert reply.rate.consumed_tokens == spent, f"x-ratelimit-consumed-tokens is not the usage: {reply.describe()}"
        assert remaining_tokens(gateway, key) == before - spent, "the enforced budget differs from the header"


def test_listing_models_costs_no_tokens(gateway: Gateway, key_pool) -> None:
    key = key_pool.one("premium")
    await_window(gateway, key, TEST_SPAN_S)
    first = chat_settled(gateway, key, words(10), max_tokens=1)
    for _ in range(5):
        listing = gateway.models(key)
        assert listing.status == 200, listing.describe()
    second = gateway.chat(key, words(40), max_tokens=1)
    assert first.status == second.status == 200, f"{first.describe()} / {second.describe()}"
    assert first.rate.remaining_tokens is not None, f"no remaining-tokens header: {first.describe()}"
    assert second.rate.remaining_tokens is not None, f"no remaining-tokens header: {second.describe()}"
    taken = first.rate.remaining_tokens - second.rate.remaining_tokens
    chats = (first.usage["total_tokens"], second.usage["total_tokens"])
    assert taken in chats, f"{taken} tokens taken between two chats worth {chats}: /v1/models was charged"


def test_streamed_responses_are_charged(gateway: Gateway, key_pool) -> None:
    key = key_pool.one("enterprise")
    await_window(gateway, key, TEST_SPAN_S)
    budget = TIER_TOKENS["enterprise"]
    streamed = gateway.stream(key, words(50), max_tokens=50)
    assert streamed.status == 200, streamed.describe()
    charged = streamed.usage.get("total_tokens")
    assert charged, f"no usage in the final chunk: {streamed.chunks[-1:]}"
    wait_for_charge(gateway, key, budget - charged)  # the charge lands when Envoy sees the stream end
    after = gateway.chat(key, "x", max_tokens=1)
    assert after.status == 200, after.describe()
    own = after.usage["total_tokens"]
    expected = (budget - charged, budget - charged - own)
    assert after.rate.remaining_tokens in expected, (
        f"remaining {after.rate.remaining_tokens}, expected one of {expected}: the stream was not charged {charged}"
    )


# Prompts that cross each paid budget in a handful of requests (max_tokens=1).
PAID_PROMPT_WORDS = {"premium": 300, "enterprise": 1200}


@pytest.mark.parametrize("tier", ["premium", "enterprise"])
def test_paid_tiers_are_limited_at_their_token_budget(gateway: Gateway, key_pool, tier: str) -> None:
    key = key_pool.one(tier)
    await_window(gateway, key, TEST_SPAN_S)
    budget = TIER_TOKENS[tier]
    prompt = words(PAID_PROMPT_WORDS[tier])
    passed, limited = spend_until_limited(gateway, key, prompt, attempts=TIER_REQUESTS[tier] - 1)
    spent = [r.usage["total_tokens"] for r in passed]
    assert limited is not None, f"{len(passed)} requests worth {sum(spent)} tokens passed a {budget}-token budget"
    assert passed, f"the first request of a fresh {tier} key was refused: {limited.describe()}"
    assert sum(spent[:-1]) < budget, f"requests passed after the budget was spent: {spent}; budget {budget}"
    assert sum(spent) + spent[-1] > budget, f"refused early, after {spent} of {budget} tokens"
    assert_429(limited, "tokens")
    assert limited.rate.limit_tokens == budget and limited.rate.remaining_tokens == 0, limited.describe()
