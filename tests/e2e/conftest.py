"""Fixtures shared by the e2e modules (the session fixtures come from harness.pytest_plugin)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from harness.declared import Declared, RoutedModel

from .support import Gateway


@pytest.fixture(scope="session")
def gateway(gateway_url: str, gateway_model: str) -> Iterator[Gateway]:
    client = Gateway(gateway_url, gateway_model)
    yield client
    client.http.close()


@pytest.fixture(scope="module")
def routed(declared: Declared) -> dict[str, RoutedModel]:
    """Public id -> catalog entry of the models the gateway routes by model; skips when it does not."""
    models = declared.routed_models()
    if not models:
        pytest.skip(f"the values ({declared.describe()}) do not route by model (maas-gateway.routing.byModel)")
    return models
