"""A request window of N seconds holds for N seconds, on the real gateway.

The module installs a short request window for the free tier (an overlay on top of the stack's
values; the gateway and the rate limit service restart with it) instead of waiting two minutes:
spend the budget early in a window, cross the half-window mark (where a budget counted against
the wrong window would reset) and the window's last seconds, still refused with a Retry-After
that counts down to the bound, then served again right after the bound.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from .faults import fault_target
from .support import TIER_REQUESTS, Gateway, Reply

pytestmark = [pytest.mark.e2e, pytest.mark.ratelimit]

WINDOW = "12s"
WINDOW_S = 12
# How far into a fresh window the test starts: the reset header is whole seconds.
START_SLACK_S = 0.2
# Retry-After against the seconds left in the window measured here.
RETRY_AFTER_SLACK_S = 1.5
SHORT_WINDOW_VALUES = {
    "maas-gateway": {"tiers": {"free": {"requests": {"limit": TIER_REQUESTS["free"], "window": WINDOW}}}}
}
# The rate limit service's counter unit follows the window; the gateway computes its buckets.
COMPONENTS = ("ratelimit", "gateway")


@pytest.fixture(scope="module")
def short_request_window(target: Any, endpoints: Any) -> Iterator[None]:
    faults = fault_target(target)
    for component in COMPONENTS:
        faults.override_values(SHORT_WINDOW_VALUES, restart=component)
    try:
        yield
    finally:
        for component in COMPONENTS:
            faults.override_values(None, restart=component)


def tiny(gateway: Gateway, key: str) -> Reply:
    return gateway.chat(key, "tiny", max_tokens=1)


def sleep_until(moment: float) -> None:
    time.sleep(max(0.0, moment - time.monotonic()))


def fresh_window(gateway: Gateway, key: str) -> float:
    """Wait for a fresh request window that is not the last one of the token window (there both
    windows end together, and a Retry-After taken from the wrong one would look right); return
    the monotonic time, START_SLACK_S to START_SLACK_S + 1 s after the window started."""
    for _ in range(3):
        rate = gateway.models(key).rate
        assert rate.reset_requests is not None and rate.reset_requests <= WINDOW_S, (
            f"the {WINDOW} request window did not apply: reset in {rate.reset_requests}s"
        )
        assert rate.reset_tokens is not None, "no x-ratelimit-reset-tokens on /v1/models"
        time.sleep(rate.reset_requests + START_SLACK_S)
        if rate.reset_tokens - rate.reset_requests > WINDOW_S + 4:
            return time.monotonic()
    raise AssertionError("found no request window apart from the token window's end in three windows")


def spend(gateway: Gateway, key: str, start: float) -> None:
    limit = TIER_REQUESTS["free"]
    for i in range(limit):
        reply = tiny(gateway, key)
        assert reply.status == 200, f"request {i + 1} of {limit} refused in a fresh window: {reply.describe()}"
    spent_s = time.monotonic() - start
    assert spent_s < WINDOW_S / 2 - 1, f"spending {limit} requests took {spent_s:.1f}s: too slow to test the window"


def window_end(start: float) -> tuple[float, float]:
    """Earliest and latest monotonic time the window that `fresh_window` found ends."""
    return start + WINDOW_S - START_SLACK_S - 1, start + WINDOW_S - START_SLACK_S


def assert_retry_after_counts_to(reply: Reply, ends: tuple[float, float]) -> None:
    retry_after = int(reply.headers.get("retry-after", "-1"))
    left = (ends[0] - time.monotonic(), ends[1] - time.monotonic())
    assert left[0] - RETRY_AFTER_SLACK_S <= retry_after <= left[1] + RETRY_AFTER_SLACK_S, (
        f"Retry-After {retry_after}, but the {WINDOW} request window that refused ends in "
        f"{left[0]:.1f}-{left[1]:.1f}s (the token window in {reply.rate.reset_tokens}s): {reply.describe()}"
    )


def test_retry_after_of_a_request_limit_429_is_the_request_window_reset(
    gateway: Gateway, key_pool, short_request_window: None
) -> None:
    key = key_pool.one("free")
    start = fresh_window(gateway, key)
    spend(gateway, key, start)
    reply = tiny(gateway, key)
    assert reply.status == 429, f"request {TIER_REQUESTS['free'] + 1} passed: {reply.describe()}"
    assert reply.rate.remaining_requests == 0, f"refused for tokens, not requests: {reply.describe()}"
    assert_retry_after_counts_to(reply, window_end(start))


def test_a_request_window_holds_for_its_whole_length(gateway: Gateway, key_pool, short_request_window: None) -> None:
    key = key_pool.one("free")
    start = fresh_window(gateway, key)
    spend(gateway, key, start)
    ends = window_end(start)
    limit = TIER_REQUESTS["free"]
    # Past the half-window mark (a budget counted against half the window resets there) and in
    # the window's last seconds: still refused, and told when the window ends.
    for moment in (start + WINDOW_S / 2 + 0.5, ends[0] - 1.0):
        sleep_until(moment)
        reply = tiny(gateway, key)
        assert reply.status == 429, (
            f"served {time.monotonic() - start:.1f}s into a {WINDOW} window whose {limit} requests were spent: "
            f"{reply.describe()}"
        )
        assert_retry_after_counts_to(reply, ends)
    sleep_until(ends[1] + START_SLACK_S)
    reply = tiny(gateway, key)
    assert reply.status == 200, f"still refused after the {WINDOW} window ended: {reply.describe()}"
    assert reply.rate.remaining_requests == limit - 1, f"the new window did not start afresh: {reply.describe()}"
