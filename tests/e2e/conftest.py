"""Fixtures shared by the e2e modules (the session fixtures come from harness.pytest_plugin)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .support import Gateway


@pytest.fixture(scope="session")
def gateway(gateway_url: str, gateway_model: str) -> Iterator[Gateway]:
    client = Gateway(gateway_url, gateway_model)
    yield client
    client.http.close()
