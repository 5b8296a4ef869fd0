"""KeyPool: fresh keys per test, recycled when their rate-limit window ends (injected clock)."""

from __future__ import annotations

from pathlib import Path

import pytest
from harness.pytest_plugin import KEY_WINDOW_S, WINDOW_SLACK_S, KeyPool

pytestmark = pytest.mark.unit

KEYS = {"premium": ["p1", "p2", "p3"], "free": ["f1", "f2"]}


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def pool(ledger: Path, clock: Clock) -> KeyPool:
    return KeyPool(KEYS, ledger, scope="http://gw", clock=clock, sleep=clock.sleep)


def test_fresh_keys_then_the_shared_key_is_never_taken(tmp_path: Path) -> None:
    clock = Clock(10 * KEY_WINDOW_S + 5)
    keys = pool(tmp_path / "ledger.json", clock)
    assert keys.take("premium", 2) == ["p2", "p1"]
    assert keys.shared("premium") == "p3"
    assert clock.slept == []


def test_a_second_session_waits_for_the_window_to_end(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.json"
    clock = Clock(10 * KEY_WINDOW_S + 5)
    first = pool(ledger, clock)
    first.take("premium", 2)
    first.close()
    clock.now += 30  # same window
    second = pool(ledger, clock)
    assert second.take("premium", 1)
    assert clock.slept == [pytest.approx(KEY_WINDOW_S - 35 + WINDOW_SLACK_S)]
    assert clock.now == pytest.approx(11 * KEY_WINDOW_S + WINDOW_SLACK_S)


def test_no_wait_once_the_window_has_passed(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.json"
    clock = Clock(10 * KEY_WINDOW_S + 5)
    pool(ledger, clock).take("free", 1)
    clock.now = 11 * KEY_WINDOW_S + WINDOW_SLACK_S + 0.1
    assert pool(ledger, clock).take("free", 1) == ["f1"]
    assert clock.slept == []


def test_keys_taken_in_this_session_are_recycled_after_their_window(tmp_path: Path) -> None:
    clock = Clock(10 * KEY_WINDOW_S + 5)
    keys = pool(tmp_path / "ledger.json", clock)
    assert keys.take("free", 1) == ["f1"]
    assert keys.take("free", 1) == ["f1"]  # the only non-shared free key: wait, then reuse
    assert clock.slept and clock.now >= 11 * KEY_WINDOW_S


def test_undeclared_tier_skips_and_too_few_keys_fail(tmp_path: Path) -> None:
    keys = pool(tmp_path / "ledger.json", Clock(0))
    with pytest.raises(pytest.skip.Exception, match="declares no 'enterprise' key"):
        keys.take("enterprise")
    with pytest.raises(pytest.fail.Exception, match="declares 2 'free' key"):
        keys.take("free", 2)


def test_ledger_holds_no_keys(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.json"
    pool(ledger, Clock(5)).take("premium", 2)
    assert not any(k in ledger.read_text() for k in ("p1", "p2", "p3"))
