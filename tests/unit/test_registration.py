"""Registration logic: values rendering, planning, idempotence, and the pre-0.7 register API.

The HTTP servers here are tiny local fakes of llama-stack's model routes, named for the
server version they stand for; they record the calls so the branch taken is visible.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from harness import registration as reg

pytestmark = pytest.mark.unit


@dataclass
class FakeLlamaStack:
    """State of a fake llama-stack: its version, listed models, and the calls it saw."""

    version: str | None  # None: no /v1/version route (probe branch)
    register_route: bool  # POST /v1/models exists (servers < 0.7)
    models: list[str] = field(default_factory=list)
    calls: list[tuple[str, str, Any]] = field(default_factory=list)


def _handler(state: FakeLlamaStack) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:  # keep test output clean
            pass

        def _send(self, status: int, body: Any) -> None:
            raw = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def do_GET(self) -> None:
            state.calls.append(("GET", self.path, None))
            if self.path == "/v1/version" and state.version:
                self._send(200, {"version": state.version})
            elif self.path == "/v1/models":
                self._send(200, {"data": [{"id": m, "custom_metadata": {"model_type": "llm"}} for m in state.models]})
            else:
                self._send(404, {"detail": "Not Found"})

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"null")
            state.calls.append(("POST", self.path, body))
            if self.path != "/v1/models":
                self._send(404, {"detail": "Not Found"})
            elif not state.register_route:
                self._send(405, {"detail": "Method Not Allowed"})
            elif not body or "model_id" not in body:
                self._send(400, {"detail": "model_id is required"})
            else:
                state.models.append(body["model_id"])
                self._send(200, {"identifier": body["model_id"]})

    return Handler


@pytest.fixture
def serve() -> Iterator[Any]:
    servers: list[ThreadingHTTPServer] = []

    def start(state: FakeLlamaStack) -> str:
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


class RecordingTarget:
    """Records apply_models calls; optionally makes the fake server list what was applied."""

    def __init__(self, state: FakeLlamaStack | None = None) -> None:
        self.applied: list[dict[str, Any]] = []
        self.state = state

    def apply_models(self, models: dict[str, dict[str, Any]]) -> None:
        self.applied.append(models)
        if self.state is not None:  # what a restart with the new config would list
            keep = [m for m in self.state.models if models.get(m.split("/")[0]) == {}]
            self.state.models = keep + [f"{k}/{v['id']}" for k, v in models.items() if v.get("enabled") and v.get("id")]


SPEC = reg.ModelSpec("maas-granite", "granite-8b", "https://maas.example/v1", api_token="tok-123")


def test_model_key_is_a_safe_provider_id() -> None:
    assert reg.model_key("RedHat/Granite-3.1 8B") == "maas-redhat-granite-3-1-8b"
    assert len(reg.model_key("x" * 200)) <= 50


def test_v1_url_normalises_the_endpoint() -> None:
    assert reg.v1_url("https://maas.example") == reg.v1_url("https://maas.example/v1/") == "https://maas.example/v1"


def test_spec_values_use_a_secret_ref_over_a_literal_token() -> None:
    assert SPEC.to_values() == {
        "id": "granite-8b",
        "url": "https://maas.example/v1",
        "enabled": True,
        "provider": "vllm",
        "apiToken": "tok-123",
    }
    ref = reg.ModelSpec("k", "m", "u", api_token="tok", secret_ref=("maas-token", "token")).to_values()
    assert ref["apiTokenSecretRef"] == {"name": "maas-token", "key": "token"} and "apiToken" not in ref


def test_models_values_keeps_base_entries_and_disables_removed() -> None:
    gone = reg.ModelSpec("old", "m", "u")
    values = reg.models_values({SPEC.key: SPEC}, remove={"old": gone}, keep=["maas"])
    assert values["maas"] == {}
    assert values[SPEC.key]["id"] == "granite-8b"
    assert values["old"]["enabled"] is False


def test_base_models_merges_overlays(tmp_path: Path) -> None:
    overlay = tmp_path / "o.yaml"
    overlay.write_text("global:\n  models:\n    maas: {enabled: false}\n    extra: {id: e, url: http://x/v1}\n")
    base = reg.base_models("local", [overlay])
    assert "maas" not in base and base["extra"]["id"] == "e"
    assert reg.base_models("local")["maas"]["id"] == "simulated-model"


def test_new_server_applies_config_and_is_idempotent(serve: Any) -> None:
    state = FakeLlamaStack(version="0.7.3", register_route=False, models=["maas/simulated-model"])
    url = serve(state)
    target = RecordingTarget(state)
    first = reg.register(target, url, {SPEC.key: SPEC}, keep=["maas"], timeout=5)
    assert first.ok and first.method == "config" and first.applied, first.render()
    assert first.registered == ["maas-granite/granite-8b"]
    assert target.applied == [{"maas": {}, SPEC.key: SPEC.to_values()}]
    second = reg.register(target, url, {SPEC.key: SPEC}, keep=["maas"], timeout=5)
    assert (second.method, second.applied, second.already) == ("none", False, ["maas-granite/granite-8b"])
    assert len(target.applied) == 1, "a second registration of the same models restarted the stack"
    assert not [c for c in state.calls if c[0] == "POST"], "a 0.7 server was sent POST /v1/models"


def test_removal_disables_and_waits_until_gone(serve: Any) -> None:
    state = FakeLlamaStack(
        version="0.7.3", register_route=False, models=["maas/simulated-model", "maas-granite/granite-8b"]
    )
    target = RecordingTarget(state)
    report = reg.register(target, serve(state), {}, remove={SPEC.key: SPEC}, keep=["maas"], timeout=5)
    assert report.ok and report.removed == ["maas-granite/granite-8b"], report.render()
    assert state.models == ["maas/simulated-model"]


def test_missing_model_is_reported_with_a_reason(serve: Any) -> None:
    state = FakeLlamaStack(version="0.7.3", register_route=False, models=["maas/simulated-model"])
    target = RecordingTarget()  # applies nothing: the model never shows up
    report = reg.register(target, serve(state), {SPEC.key: SPEC}, keep=["maas"], timeout=1)
    assert not report.ok
    assert "provider maas-granite not loaded" in report.missing["maas-granite/granite-8b"]
    assert "MISSING     maas-granite/granite-8b" in report.render()


def test_old_server_by_version_uses_the_register_api(serve: Any) -> None:
    state = FakeLlamaStack(version="0.2.23", register_route=True, models=["maas/simulated-model"])
    target = RecordingTarget()
    report = reg.register(target, serve(state), {SPEC.key: SPEC}, keep=["maas"], timeout=5)
    assert report.ok and report.method == "register-api", report.render()
    assert target.applied == [], "an old server was restarted instead of using its register API"
    posts = [body for method, path, body in state.calls if method == "POST"]
    assert posts == [
        {
            "model_id": "maas-granite/granite-8b",
            "provider_id": "maas-granite",
            "provider_model_id": "granite-8b",
            "model_type": "llm",
        }
    ]


def test_probe_without_version_detects_both_kinds(serve: Any) -> None:
    old = FakeLlamaStack(version=None, register_route=True)
    new = FakeLlamaStack(version=None, register_route=False)
    assert reg.has_register_api(serve(old)) is True
    assert reg.has_register_api(serve(new)) is False


def test_discovery_lists_models_and_hides_the_key_on_error(serve: Any) -> None:
    state = FakeLlamaStack(version="0.7.3", register_route=False, models=["granite-8b", "llama-3"])
    url = serve(state)
    assert reg.discover_models(url, "tok-123") == ["granite-8b", "llama-3"]
    with pytest.raises(LookupError, match="unreachable"):
        reg.discover_models("http://127.0.0.1:9", "tok-123", timeout=2)
