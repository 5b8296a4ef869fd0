"""No second copy of any config: a value changed in a values file changes the running stack."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from local.conftest import start_stack

pytestmark = pytest.mark.local


def _chat(gateway_url: str, key: str) -> httpx.Response:
    return httpx.post(
        f"{gateway_url}/v1/chat/completions",
        headers={"Authorization": f"Bearer {key}"},
        json={"model": "simulated-model", "messages": [{"role": "user", "content": "one two three"}]},
        timeout=30,
    )


def test_tier_token_limit_comes_from_values(local_stack, tmp_path: Path):
    _, default = local_stack
    assert _chat(default.gateway_url, default.key("free", 0)).headers["x-ratelimit-limit-tokens"] == "200"

    overlay = {"maas-gateway": {"tiers": {"free": {"tokens": {"limit": 37, "window": "1m"}}}}}
    changed = start_stack("test-values", overlay, tmp_path)
    try:
        endpoints = changed.status()
        response = _chat(endpoints.gateway_url, endpoints.key("free", 0))
        assert response.status_code == 200
        assert response.headers["x-ratelimit-limit-tokens"] == "37"
    finally:
        changed.down()


def test_simulator_mode_comes_from_values(local_stack, tmp_path: Path):
    _, default = local_stack
    echoed = _chat(default.gateway_url, default.key("free", 1)).json()["choices"][0]["message"]["content"]
    assert echoed == "one two three"

    changed = start_stack("test-sim-mode", {"vllm-gpu": {"simulator": {"mode": "random"}}}, tmp_path)
    try:
        endpoints = changed.status()
        reply = _chat(endpoints.gateway_url, endpoints.key("free", 0)).json()["choices"][0]["message"]["content"]
        assert reply and reply != "one two three"
    finally:
        changed.down()
