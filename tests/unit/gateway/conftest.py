"""Fixtures for the gateway's Lua under unit test: an injected clock and one gateway worker with
one key per tier (and a second free key)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from envoy_model import Clock, Gateway

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


@pytest.fixture
def gateway(make_gateway: Callable[..., Gateway]) -> Gateway:
    return make_gateway()
