"""The e2e rate-limit helpers: they wait out a window that is about to end, and the charge wait
fails loudly instead of returning whatever it last saw."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
import pytest
from e2e import support
from e2e.support import Reply, await_window, wait_for_charge

pytestmark = pytest.mark.unit


@dataclass
class StubGateway:
    """Answers /v1/models with scripted budget headers."""

    answers: list[dict[str, str]]
    calls: int = 0

    def models(self, key: str | None) -> Reply:
        headers = self.answers[min(self.calls, len(self.answers) - 1)]
        self.calls += 1
        return Reply(200, httpx.Headers(headers), {})


def budget(reset_tokens: int, reset_requests: int, remaining: int = 100) -> dict[str, str]:
    return {
        "x-ratelimit-reset-tokens": str(reset_tokens),
        "x-ratelimit-reset-requests": str(reset_requests),
        "x-ratelimit-remaining-tokens": str(remaining),
    }


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    slept: list[float] = []
    monkeypatch.setattr(support.time, "sleep", slept.append)
    return slept


def test_await_window_returns_at_once_with_enough_time_left(sleeps: list[float]) -> None:
    await_window(StubGateway([budget(40, 100)]), "k", need_s=20)
    assert sleeps == []


def test_await_window_sleeps_into_the_next_window(sleeps: list[float]) -> None:
    await_window(StubGateway([budget(5, 100), budget(60, 95)]), "k", need_s=20)
    assert len(sleeps) == 1 and 5 < sleeps[0] < 7, sleeps


def test_await_window_refuses_a_gateway_without_reset_headers(sleeps: list[float]) -> None:
    with pytest.raises(AssertionError, match="no x-ratelimit-reset"):
        await_window(StubGateway([{}]), "k", need_s=20)


def test_wait_for_charge_fails_loudly_when_the_charge_never_comes() -> None:
    with pytest.raises(AssertionError, match="the charge never came.*stayed \\[100\\]"):
        wait_for_charge(StubGateway([budget(40, 100, remaining=100)]), "k", 90, timeout_s=0.3)


def test_wait_for_charge_returns_the_charged_budget() -> None:
    stub = StubGateway([budget(40, 100, remaining=100), budget(40, 100, remaining=88)])
    assert wait_for_charge(stub, "k", 90, timeout_s=2) == 88
