"""Fixtures for the gateway's Lua under unit test: an injected clock and one gateway worker with
one key per tier (and a second free key)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from .envoy_model import Clock, Gateway, Tier, chart_tiers

KEYS = [
    ("free", "alice", "k-free"),
    ("free", "bob", "k-free-2"),
    ("premium", "carol", "k-premium"),
    ("enterprise", "dave", "k-enterprise"),
]


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def make_gateway(tmp_path: Path, clock: Clock) -> Callable[..., Gateway]:
    """A gateway with the test's keys and clock and other settings (failure_mode, buffer_limit, ...)."""

    def make(**settings: Any) -> Gateway:
        return Gateway(keys=KEYS, tmp_path=tmp_path, clock=clock, **settings)

    return make


def short_windows() -> dict[str, Tier]:
    """The chart's limits over windows that are no unit of the rate limit service (20 s, 30 s),
    the token window longer than the request window (the chart's is shorter)."""
    return {name: replace(t, requests_window=20, tokens_window=30) for name, t in chart_tiers().items()}


@pytest.fixture(params=["chart windows", "short windows"])
def gateway(make_gateway: Callable[..., Gateway], request: pytest.FixtureRequest) -> Gateway:
    """A gateway with the chart's tiers, and again with short_windows()."""
    return make_gateway(tiers=short_windows() if request.param == "short windows" else None)
