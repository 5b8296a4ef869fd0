"""The harness's one wait helper: tenacity retries with a capped exponential backoff, named policies
and an injectable clock.

Tenacity measures `stop_after_delay` on `time.monotonic`, which a test cannot move; the stop
condition here reads the injected clock instead, and the injected `sleep` advances a fake clock,
so unit tests of every wait run without a real sleep.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    retry_if_exception_type,
    retry_if_result,
    wait_exponential,
)
from tenacity.retry import retry_base
from tenacity.stop import stop_base

from harness.errors import StackNotReady

T = TypeVar("T")
Clock = Callable[[], float]
Sleep = Callable[[float], None]


@dataclass(frozen=True)
class WaitPolicy:
    timeout: float  # give up after this many seconds (stop_after_delay)
    initial: float = 1.0  # first pause between attempts
    cap: float = 15.0  # longest pause (wait_exponential max)

    @classmethod
    def fixed(cls, timeout: float, interval: float) -> WaitPolicy:
        """The same pause between every two attempts (initial = cap)."""
        return cls(timeout, initial=interval, cap=interval)

    def within(self, timeout: float) -> WaitPolicy:
        """This policy's pauses with a timeout the caller was given."""
        return replace(self, timeout=timeout)


# Pulling images and starting the whole release on a fresh cluster (kind on a CI runner, the kube
# lane on 2 cores) takes minutes; 15 minutes is generous without hanging a CI job for good.
ROLLOUT_TIMEOUT_S = 900.0
ROLLOUT = WaitPolicy(ROLLOUT_TIMEOUT_S, initial=2, cap=15)  # every rollout wait of a release


@dataclass
class StopAfterDelay(stop_base):
    """`tenacity.stop_after_delay`, measured on the injected clock from `start`."""

    max_delay: float
    clock: Clock
    start: float

    def __call__(self, retry_state: RetryCallState) -> bool:
        return self.clock() - self.start >= self.max_delay


def _paused_by(pause: Callable[[BaseException | None], float]) -> Callable[[RetryCallState], float]:
    return lambda state: pause(state.outcome.exception() if state.outcome else None)


class WaitTimeout(StackNotReady, TimeoutError):
    pass


@dataclass
class Waiter:
    """Runs waits with one clock/sleep pair; the real one uses time.monotonic and time.sleep."""

    clock: Clock = time.monotonic
    sleep: Sleep = time.sleep

    def retrying(
        self,
        policy: WaitPolicy,
        *,
        on_result: Callable[[Any], bool] | None = None,
        on_error: tuple[type[BaseException], ...] = (),
        error_if: Callable[[BaseException], bool] | None = None,
        pause: Callable[[BaseException | None], float] | None = None,
    ) -> Retrying:
        """A tenacity Retrying for `policy`; after the timeout it returns the last result, or raises
        the last exception (never RetryError).

        Exceptions of the `on_error` types, or for which `error_if` is true, count as "not yet";
        any other exception ends the wait at once. `pause(last_error)` replaces the policy's backoff
        when the awaited service says how long to wait (a `Retry-After`).
        """
        retry: retry_base = retry_if_exception_type(on_error)
        if error_if is not None:
            retry = retry | retry_if_exception(error_if)
        if on_result is not None:
            retry = retry | retry_if_result(on_result)
        return Retrying(
            stop=StopAfterDelay(policy.timeout, self.clock, self.clock()),
            wait=_paused_by(pause) if pause else wait_exponential(policy.initial, min=policy.initial, max=policy.cap),
            sleep=self.sleep,
            retry=retry,
            retry_error_callback=lambda state: state.outcome.result() if state.outcome else None,
        )

    def until(
        self,
        check: Callable[[], T | None],
        policy: WaitPolicy,
        *,
        what: str,
        progress: Callable[[int, float], None] | None = None,
        on_error: tuple[type[BaseException], ...] = (),
    ) -> T:
        """Call `check` until it returns something other than None/False; raise WaitTimeout after timeout.

        `progress(attempt, elapsed)` runs before every attempt after the first, so users see what
        is awaited and for how long. Exceptions in `on_error` count as "not yet".
        """
        start = self.clock()
        attempt = 0

        def once() -> T | None:
            nonlocal attempt
            attempt += 1
            if attempt > 1 and progress is not None:
                progress(attempt, self.clock() - start)
            return check()

        result = self.retrying(policy, on_result=lambda r: r is None or r is False, on_error=on_error)(once)
        if result is None or result is False:
            raise WaitTimeout(f"gave up waiting for {what} after {self.clock() - start:.0f}s ({attempt} checks)")
        return result


@dataclass
class FakeClock:
    """A clock whose `sleep` moves time forward instantly; records every pause for assertions."""

    now: float = 0.0
    sleeps: list[float] | None = None

    def __post_init__(self) -> None:
        self.sleeps = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert self.sleeps is not None
        self.sleeps.append(seconds)
        self.now += seconds

    def waiter(self) -> Waiter:
        return Waiter(clock=self, sleep=self.sleep)
