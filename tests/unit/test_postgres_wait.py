"""The PostgreSQL login wait, on a FakeClock (no real sleeps): "starting up" refusals are retried
every 0.2 s for STARTING_UP_TIMEOUT_S, any other refusal ends the wait at once, and after the
timeout the last refusal is raised as PostgreSQL gave it."""

from __future__ import annotations

from typing import Any

import psycopg2
import pytest
from harness.local import postgres
from harness.waiting import FakeClock

pytestmark = pytest.mark.unit

STARTING_UP = psycopg2.OperationalError("FATAL:  the database system is starting up")
BAD_PASSWORD = psycopg2.OperationalError('FATAL:  password authentication failed for user "rag"')


def refusing(monkeypatch: pytest.MonkeyPatch, *answers: BaseException | str) -> list[dict[str, Any]]:
    """psycopg2.connect stands in for a server that refuses with `answers` in turn (the last repeats)."""
    calls: list[dict[str, Any]] = []
    queue = list(answers)

    def connect(**params: Any) -> str:
        calls.append(params)
        answer = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(answer, BaseException):
            raise answer
        return answer

    monkeypatch.setattr(psycopg2, "connect", connect)
    return calls


def test_starting_up_is_waited_out(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = refusing(monkeypatch, STARTING_UP, STARTING_UP, "connection")
    clock = FakeClock()
    assert postgres._connect_when_up(waiter=clock.waiter(), port=5432, dbname="postgres") == "connection"
    assert clock.sleeps == [0.2, 0.2]
    assert calls[-1] == {"host": "127.0.0.1", "port": 5432, "dbname": "postgres"}


def test_another_refusal_is_raised_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = refusing(monkeypatch, BAD_PASSWORD)
    clock = FakeClock()
    with pytest.raises(psycopg2.OperationalError, match="password authentication failed"):
        postgres._connect_when_up(waiter=clock.waiter(), port=5432)
    assert len(calls) == 1 and clock.sleeps == []


def test_a_start_that_never_ends_raises_the_last_refusal_after_the_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    refusing(monkeypatch, STARTING_UP)
    clock = FakeClock()
    with pytest.raises(psycopg2.OperationalError, match="starting up"):
        postgres._connect_when_up(waiter=clock.waiter(), port=5432)
    assert postgres.STARTING_UP_TIMEOUT_S <= clock.now < postgres.STARTING_UP_TIMEOUT_S + 0.5
    assert set(clock.sleeps or []) == {0.2}
