"""Which model URLs of the values follow the local stack's chosen ports (the rest stay as written)."""

from __future__ import annotations

import pytest
from harness.local.ports import Ports, model_url_values

PORTS = Ports(gateway=41001, model_server=41002)


@pytest.mark.parametrize(
    ("url", "moved"),
    [
        ("http://127.0.0.1:8080/v1", "http://127.0.0.1:41001/v1"),
        ("http://localhost:8080/v1", "http://127.0.0.1:41001/v1"),
        ("http://{{ .Release.Name }}-maas-gateway:8080/v1", "http://127.0.0.1:41001/v1"),
        ("http://rag-maas-gateway:8080/v1", "http://127.0.0.1:41001/v1"),
        ("http://127.0.0.1:8000/v1", "http://127.0.0.1:41002/v1"),
        ("http://{{ .Release.Name }}-vllm-gpu:8000/v1", "http://127.0.0.1:41002/v1"),
        ("https://maas.example.com:8080/v1", None),  # someone else's server on the same port number
        ("http://127.0.0.1:9999/v1", None),  # a server the user runs next to the stack
        ("https://maas.example.com/v1", None),
    ],
)
def test_urls_at_the_gateway_or_model_server_follow_the_ports(url: str, moved: str | None) -> None:
    values = model_url_values({"m": {"id": "x", "url": url}}, PORTS)
    assert values == ({"m": {"url": moved}} if moved else {})
