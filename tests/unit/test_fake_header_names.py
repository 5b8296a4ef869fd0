"""The FAKE model server's two gateway-facing promises: it reports usage in streams in every
mode when told to (as vLLM's --enable-force-include-usage does), and it tells tests which header
names reached it (never their values)."""

from __future__ import annotations

import http.client
import json

import pytest
from harness.fakes import model_server as fms
from test_fake_model_server import MODEL, raw_request, running, sse_events, user

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("mode", fms.MODES)
@pytest.mark.parametrize("options", [None, {"include_usage": False}])
def test_forced_usage_in_streams_in_every_mode(mode: str, options: dict | None) -> None:
    doc = {"model": MODEL, "messages": [user("a b")], "stream": True, "max_tokens": 2}
    if options is not None:
        doc["stream_options"] = options
    with running(["--model", MODEL, "--mode", mode, "--enable-force-include-usage"]) as server:
        status, payload = raw_request(server, "POST", "/v1/chat/completions", json.dumps(doc).encode())
    assert status == 200
    last = json.loads(sse_events(payload)[-2])
    assert last["choices"] == [] and last["usage"]["total_tokens"] == 4, last


def test_without_the_flag_a_stream_that_does_not_ask_has_no_usage() -> None:
    doc = {"model": MODEL, "messages": [user("a b")], "stream": True}
    with running(["--model", MODEL, "--mode", "echo"]) as server:
        _, payload = raw_request(server, "POST", "/v1/chat/completions", json.dumps(doc).encode())
    assert not any("usage" in json.loads(e) for e in sse_events(payload)[:-1])


def test_received_header_names_are_recorded_without_values() -> None:
    with running(["--model", MODEL, "--mode", "echo"]) as server:
        conn = http.client.HTTPConnection(*server.server_address[:2], timeout=10)
        conn.request("GET", "/v1/models", headers={"Authorization": "Bearer secret-value-123", "X-Tier": "gold"})
        conn.getresponse().read()
        conn.close()
        status, payload = raw_request(server, "GET", fms.RECEIVED_HEADERS_PATH)
    assert status == 200
    seen = json.loads(payload)
    assert seen["count"] == 1, seen  # reading the record is not recorded
    (entry,) = seen["requests"]
    assert entry["path"] == "/v1/models" and {"authorization", "x-tier"} <= set(entry["names"]), entry
    assert "secret-value-123" not in payload.decode() and "gold" not in payload.decode()
