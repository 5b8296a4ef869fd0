"""A request window of N seconds holds for N seconds, on the real gateway.

The dev overlays (values/local.yaml, values/kind.yaml) declare a tier with a short request
window for these tests, so a window is crossed in seconds instead of two minutes: spend the
budget early in a window, cross the half-window mark (where a budget counted against the wrong
window would reset) and the window's last seconds, still refused with a Retry-After that
counts down to the bound, then served again right after the bound.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import pytest

from .support import Gateway, Reply, duration_s

pytestmark = [pytest.mark.e2e, pytest.mark.ratelimit]

TIER = "short-window"
# The longest request window these tests wait through.
MAX_WINDOW_S = 20
# How far into a fresh window the test starts: the reset header is whole seconds.
START_SLACK_S = 0.2
# Retry-After against the seconds left in the window measured here.
RETRY_AFTER_SLACK_S = 1.5


@dataclass(frozen=True)
class ShortTier:
    requests: int
    window_s: int
    tokens_window_s: int


@pytest.fixture(scope="module")
def tier(declared: Any) -> ShortTier:
    tiers = (declared.values.get("maas-gateway") or {}).get("tiers") or {}
    if TIER not in tiers:
        pytest.skip(f"the values ({declared.describe()}) declare no tier {TIER!r} (a short request window)")
    spec = tiers[TIER]
    found = ShortTier(
        int(spec["requests"]["limit"]),
        int(duration_s(spec["requests"]["window"])),
        int(duration_s(spec["tokens"]["window"])),
    )
    assert found.window_s <= MAX_WINDOW_S, (
        f"tier {TIER!r} has a {found.window_s}s request window: at most {MAX_WINDOW_S}s"
    )
    assert found.tokens_window_s > found.window_s, f"tier {TIER!r}: the token window must be the longer one"
    return found


def tiny(gateway: Gateway, key: str) -> Reply:
    return gateway.chat(key, "tiny", max_tokens=1)


def sleep_until(moment: float) -> None:
    time.sleep(max(0.0, moment - time.monotonic()))


def fresh_window(gateway: Gateway, key: str, tier: ShortTier) -> float:
    """Wait for a fresh request window that is not the last one of the token window (there both
    windows end together, and a Retry-After taken from the wrong one would look right); return
    the monotonic time, START_SLACK_S to START_SLACK_S + 1 s after the window started."""
    for _ in range(3):
        rate = gateway.models(key).rate
        assert rate.reset_requests is not None and rate.reset_requests <= tier.window_s, (
            f"the {tier.window_s}s request window did not apply: reset in {rate.reset_requests}s"
        )
        assert rate.reset_tokens is not None, "no x-ratelimit-reset-tokens on /v1/models"
        time.sleep(rate.reset_requests + START_SLACK_S)
        if rate.reset_tokens - rate.reset_requests > tier.window_s + 4:
            return time.monotonic()
    raise AssertionError("found no request window apart from the token window's end in three windows")


def spend(gateway: Gateway, key: str, start: float, tier: ShortTier) -> None:
    limit = tier.requests
    for i in range(limit):
        reply = tiny(gateway, key)
        assert reply.status == 200, f"request {i + 1} of {limit} refused in a fresh window: {reply.describe()}"
    spent_s = time.monotonic() - start
    assert spent_s < tier.window_s / 2 - 1, (
        f"spending {limit} requests took {spent_s:.1f}s: too slow to test the window"
    )


def window_end(start: float, tier: ShortTier) -> tuple[float, float]:
    """Earliest and latest monotonic time the window that `fresh_window` found ends."""
    return start + tier.window_s - START_SLACK_S - 1, start + tier.window_s - START_SLACK_S


def assert_retry_after_counts_to(reply: Reply, ends: tuple[float, float]) -> None:
    retry_after = int(reply.headers.get("retry-after", "-1"))
    left = (ends[0] - time.monotonic(), ends[1] - time.monotonic())
    assert left[0] - RETRY_AFTER_SLACK_S <= retry_after <= left[1] + RETRY_AFTER_SLACK_S, (
        f"Retry-After {retry_after}, but the request window that refused ends in "
        f"{left[0]:.1f}-{left[1]:.1f}s (the token window in {reply.rate.reset_tokens}s): {reply.describe()}"
    )


def test_retry_after_of_a_request_limit_429_is_the_request_window_reset(
    gateway: Gateway, key_pool, tier: ShortTier
) -> None:
    key = key_pool.one(TIER)
    start = fresh_window(gateway, key, tier)
    spend(gateway, key, start, tier)
    reply = tiny(gateway, key)
    assert reply.status == 429, f"request {tier.requests + 1} passed: {reply.describe()}"
    assert reply.rate.remaining_requests == 0, f"refused for tokens, not requests: {reply.describe()}"
    assert_retry_after_counts_to(reply, window_end(start, tier))


def test_a_request_window_holds_for_its_whole_length(gateway: Gateway, key_pool, tier: ShortTier) -> None:
    key = key_pool.one(TIER)
    start = fresh_window(gateway, key, tier)
    spend(gateway, key, start, tier)
    ends = window_end(start, tier)
    limit = tier.requests
    # Past the half-window mark (a budget counted against half the window resets there) and in
    # the window's last seconds: still refused, and told when the window ends.
    for moment in (start + tier.window_s / 2 + 0.5, ends[0] - 1.0):
        sleep_until(moment)
        reply = tiny(gateway, key)
        assert reply.status == 429, (
            f"served {time.monotonic() - start:.1f}s into a {tier.window_s}s window whose {limit} requests were spent: "
            f"{reply.describe()}"
        )
        assert_retry_after_counts_to(reply, ends)
    sleep_until(ends[1] + START_SLACK_S)
    reply = tiny(gateway, key)
    assert reply.status == 200, f"still refused after the {tier.window_s}s window ended: {reply.describe()}"
    assert reply.rate.remaining_requests == limit - 1, f"the new window did not start afresh: {reply.describe()}"
