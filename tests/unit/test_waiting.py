"""The wait helper's policies on a FakeClock (no real sleeps): fixed intervals, a caller's timeout,
retried and fatal exceptions, and pauses the awaited service chooses."""

from __future__ import annotations

import pytest
from harness.waiting import FakeClock, WaitPolicy

pytestmark = pytest.mark.unit


class Busy(Exception):
    def __init__(self, wait_s: float) -> None:
        super().__init__(f"busy, come back in {wait_s}s")
        self.wait_s = wait_s


def test_a_fixed_policy_pauses_the_same_every_time_and_stops_at_its_timeout() -> None:
    clock = FakeClock()
    result = clock.waiter().retrying(WaitPolicy.fixed(1.0, 0.25), on_result=lambda done: not done)(lambda: False)
    assert result is False  # the last answer, not a RetryError
    assert clock.sleeps == [0.25, 0.25, 0.25, 0.25] and clock.now == 1.0


def test_within_keeps_the_pauses_and_takes_the_callers_timeout() -> None:
    policy = WaitPolicy.fixed(10.0, 0.1).within(0.3)
    assert (policy.timeout, policy.initial, policy.cap) == (0.3, 0.1, 0.1)


def test_error_if_retries_matching_errors_and_raises_the_last_after_the_timeout() -> None:
    clock = FakeClock()
    calls = []

    def busy() -> None:
        calls.append(clock.now)
        raise Busy(1)

    with pytest.raises(Busy):
        clock.waiter().retrying(WaitPolicy.fixed(2.0, 0.5), error_if=lambda e: isinstance(e, Busy))(busy)
    assert calls == [0.0, 0.5, 1.0, 1.5, 2.0]


def test_an_error_error_if_rejects_ends_the_wait_at_once() -> None:
    clock = FakeClock()

    def broken() -> None:
        raise ValueError("not a wait")

    with pytest.raises(ValueError, match="not a wait"):
        clock.waiter().retrying(WaitPolicy.fixed(2.0, 0.5), error_if=lambda e: isinstance(e, Busy))(broken)
    assert clock.sleeps == []


def test_pause_takes_the_wait_the_last_error_asks_for() -> None:
    clock = FakeClock()
    answers: list[Busy | str] = [Busy(3), Busy(1), "ok"]

    def call() -> str:
        answer = answers.pop(0)
        if isinstance(answer, Busy):
            raise answer
        return answer

    retrying = clock.waiter().retrying(
        WaitPolicy.fixed(60.0, 1.0),
        error_if=lambda e: isinstance(e, Busy),
        pause=lambda e: e.wait_s if isinstance(e, Busy) else 1.0,
    )
    assert retrying(call) == "ok"
    assert clock.sleeps == [3, 1]
