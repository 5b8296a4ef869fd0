"""Fixtures shared by the e2e modules (the session fixtures come from harness.pytest_plugin)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from harness import http
from harness.declared import Declared, RoutedModel
from harness.pytest_plugin import llm_ids

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


@pytest.fixture(scope="module")
def gateway_chat_model(llama_stack_url: str, endpoints: Any) -> str:
    """A llama-stack LLM served through this stack's gateway by a remote::vllm provider: the
    model calls whose budget the caller's forwarded key pays (a MaaS's remote::openai models are
    paid by the key llama-stack holds for that MaaS)."""
    _, providers = http.json_request("GET", llama_stack_url + "/v1/providers")
    vllm = {p["provider_id"] for p in (providers or {}).get("data", []) if p.get("provider_type") == "remote::vllm"}
    _, models = http.json_request("GET", llama_stack_url + "/v1/models")
    listed = list(endpoints.gateway_models)
    found = [m for m in llm_ids(models) if m.partition("/")[0] in vllm and m.partition("/")[2] in listed]
    if not found:
        pytest.skip(f"llama-stack lists no remote::vllm model of this stack's gateway ({listed})")
    # The gateway's first (llama-stack names a gateway entry <key>/<public id>): the tests compare
    # charges with usage, which a catalog entry with token weights would not charge one to one.
    return min(found, key=lambda m: listed.index(m.partition("/")[2]))
