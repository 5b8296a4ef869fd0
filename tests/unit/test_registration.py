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
from harness.maas import MaasSettings

pytestmark = pytest.mark.unit


@dataclass
class FakeLlamaStack:
    """State of a fake llama-stack: its version, listed models, and the calls it saw."""

    version: str | None  # None: no /v1/version route (probe branch)
    register_route: bool  # POST /v1/models exists (servers < 0.7)
    models: list[str] = field(default_factory=list)
    calls: list[tuple[str, str, Any]] = field(default_factory=list)
    stores_up: bool = True  # the files/vector store/responses routes answer (False: a half-ready restart)


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
            elif self.path.split("?")[0] in ("/v1/files", "/v1/vector_stores", "/v1/responses") and state.stores_up:
                self._send(200, {"object": "list", "data": []})
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
    """Keeps the applied `global.models` like a target's models file; records every apply and
    optionally makes the fake server list what the applied set enables (a restart's result)."""

    def __init__(self, state: FakeLlamaStack | None = None, applied: dict[str, dict[str, Any]] | None = None) -> None:
        self.applied: list[dict[str, Any]] = []
        self.current: dict[str, dict[str, Any]] = dict(applied or {})
        self.state = state

    def applied_models(self) -> dict[str, dict[str, Any]]:
        return dict(self.current)

    def model_ca_path(self, path: str) -> str:
        return path  # llama-stack on this machine

    def apply_models(self, models: dict[str, dict[str, Any]]) -> None:
        self.applied.append(models)
        self.current = dict(models)
        if self.state is not None:  # the values file's model plus every enabled applied entry
            enabled = [reg.listed_id(k, v) for k, v in models.items() if v.get("enabled", True) and v.get("id")]
            disabled = {k for k, v in models.items() if v.get("enabled") is False}
            base = [m for m in self.state.models if m.startswith("maas/") and "maas" not in disabled]
            self.state.models = base + enabled


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


EARLIER = {
    "maas-session": {"id": "meta-llama/Llama-3.2-3B-Instruct", "url": "https://maas.example/v1", "enabled": True},
    "by-hand": {"id": "other", "url": "https://other.example/v1", "enabled": True, "apiToken": "tok-hand"},
}


def test_merge_models_changes_only_the_requested_entries() -> None:
    merged = reg.merge_models(EARLIER, {SPEC.key: SPEC})
    assert merged == {**EARLIER, SPEC.key: SPEC.to_values()}, "an earlier registration was changed or dropped"


def test_merge_models_removal_disables_only_the_removed_key() -> None:
    merged = reg.merge_models({**EARLIER, SPEC.key: SPEC.to_values()}, {}, remove=[SPEC.key])
    assert merged == {**EARLIER, SPEC.key: {"enabled": False}}


def test_merge_models_disables_a_values_file_model_not_yet_applied() -> None:
    # `maas` lives in values/local.yaml only: an {enabled: false} overlay removes it under Helm's merge.
    assert reg.merge_models(EARLIER, {}, remove=["maas"])["maas"] == {"enabled": False}


def test_merge_models_readding_a_removed_key_enables_it_again() -> None:
    merged = reg.merge_models({SPEC.key: {"enabled": False}}, {SPEC.key: SPEC}, remove=[SPEC.key])
    assert merged[SPEC.key] == SPEC.to_values()


def test_changed_keys_spots_a_new_url_or_tls_setting() -> None:
    applied = {SPEC.key: SPEC.to_values()}
    assert reg.changed_keys(applied, {SPEC.key: SPEC}) == []
    moved = reg.ModelSpec(SPEC.key, SPEC.id, "https://elsewhere/v1", api_token="tok-123")
    assert reg.changed_keys(applied, {SPEC.key: moved}) == [SPEC.key]
    private_ca = reg.ModelSpec(SPEC.key, SPEC.id, SPEC.url, api_token="tok-123", tls_verify="/ca.pem")
    assert reg.changed_keys(applied, {SPEC.key: private_ca}) == [SPEC.key]
    assert private_ca.to_values()["tlsVerify"] == "/ca.pem"


def test_registration_keeps_earlier_registrations(serve: Any) -> None:
    earlier = ["maas/simulated-model", "maas-session/meta-llama/Llama-3.2-3B-Instruct", "by-hand/other"]
    state = FakeLlamaStack(version="0.7.3", register_route=False, models=list(earlier))
    target = RecordingTarget(state, applied=EARLIER)
    url = serve(state)
    added = reg.register(target, url, {SPEC.key: SPEC}, timeout=5)
    assert added.ok, added.render()
    removed = reg.register(target, url, {}, remove=[SPEC.key], timeout=5)
    assert removed.ok and removed.removed == [SPEC.llama_stack_id], removed.render()
    for applied in target.applied:
        assert {k: applied[k] for k in EARLIER} == EARLIER, f"a registration dropped an earlier model: {applied}"
    assert set(state.models) == set(earlier)


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
    first = reg.register(target, url, {SPEC.key: SPEC}, timeout=5)
    assert first.ok and first.method == "config" and first.applied, first.render()
    assert first.registered == ["maas-granite/granite-8b"]
    assert target.applied == [{SPEC.key: SPEC.to_values()}]
    second = reg.register(target, url, {SPEC.key: SPEC}, timeout=5)
    assert (second.method, second.applied, second.already) == ("none", False, ["maas-granite/granite-8b"])
    assert len(target.applied) == 1, "a second registration of the same models restarted the stack"
    assert not [c for c in state.calls if c[0] == "POST"], "a 0.7 server was sent POST /v1/models"


def test_removal_disables_and_waits_until_gone(serve: Any) -> None:
    state = FakeLlamaStack(
        version="0.7.3", register_route=False, models=["maas/simulated-model", "maas-granite/granite-8b"]
    )
    target = RecordingTarget(state)
    report = reg.register(target, serve(state), {}, remove=[SPEC.key], timeout=5)
    assert report.ok and report.removed == ["maas-granite/granite-8b"], report.render()
    assert state.models == ["maas/simulated-model"]


def test_missing_model_is_reported_with_a_reason(serve: Any) -> None:
    state = FakeLlamaStack(version="0.7.3", register_route=False, models=["maas/simulated-model"])
    target = RecordingTarget()  # applies nothing: the model never shows up
    report = reg.register(target, serve(state), {SPEC.key: SPEC}, timeout=1)
    assert not report.ok
    assert "provider maas-granite not loaded" in report.missing["maas-granite/granite-8b"]
    assert "MISSING     maas-granite/granite-8b" in report.render()


def test_old_server_by_version_uses_the_register_api(serve: Any) -> None:
    state = FakeLlamaStack(version="0.2.23", register_route=True, models=["maas/simulated-model"])
    target = RecordingTarget()
    report = reg.register(target, serve(state), {SPEC.key: SPEC}, timeout=5)
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


def test_discovery_lists_models_and_names_the_endpoint_on_error(serve: Any) -> None:
    state = FakeLlamaStack(version="0.7.3", register_route=False, models=["granite-8b", "llama-3"])
    url = serve(state)
    assert reg.discover_models(url, "tok-123") == ["granite-8b", "llama-3"]
    with pytest.raises(reg.MaasError, match=r"MaaS endpoint http://127.0.0.1:9/v1/models unreachable"):
        reg.discover_models("http://127.0.0.1:9", "tok-123")


def test_registration_waits_for_every_route_the_workflows_use(serve: Any) -> None:
    state = FakeLlamaStack(version="0.7.3", register_route=False, models=["maas/simulated-model"], stores_up=False)
    report = reg.register(RecordingTarget(state), serve(state), {SPEC.key: SPEC}, timeout=2)
    assert not report.ok, "a restart whose stores do not answer counted as ready"
    assert "/v1/files?limit=1" in report.missing["llama-stack"], report.render()


def test_external_spec_with_upstream_model_is_listed_under_it() -> None:
    """llama-stack calls an external entry directly, with upstreamModel, and names it after it."""
    spec = reg.ModelSpec("alias", "public-name", "https://maas.example/v1", upstream_model="served-name", external=True)
    assert spec.llama_stack_id == "alias/served-name"
    assert spec.to_values()["upstreamModel"] == "served-name"
    assert "upstreamModel" not in SPEC.to_values()
    assert reg.listed_id("alias", spec.to_values()) == "alias/served-name"
    assert reg.listed_id(SPEC.key, SPEC.to_values()) == "maas-granite/granite-8b"


def test_gateway_spec_with_upstream_model_is_listed_under_its_public_id() -> None:
    """Behind the gateway llama-stack sends the public id (the gateway sends upstreamModel on), so
    the entry's own tiers, limits and token costs apply to calls made through llama-stack."""
    spec = reg.ModelSpec("alias", "public-name", "https://gw.example/v1", upstream_model="served-name")
    assert spec.llama_stack_id == "alias/public-name"
    assert reg.served_name(spec.to_values()) == "public-name"


def test_ids_declared_under_another_key_are_taken() -> None:
    """The chart refuses two entries with one public id: an id another key declares is taken;
    the key registration itself gives the id is not another entry."""
    declared: dict[str, dict[str, Any]] = {
        "external": {"id": "granite-8b", "url": "https://maas.example/v1"},
        "off": {"id": "llama-3b", "url": "https://maas.example/v1", "enabled": False},
        "maas-mistral": {"id": "mistral", "url": "https://maas.example/v1"},
    }
    taken = reg.declared_elsewhere(declared, ["granite-8b", "llama-3b", "mistral", "other"])
    assert taken == {"granite-8b"}


def test_a_taken_id_is_registered_under_a_public_id_of_its_own() -> None:
    specs = reg.declared_specs(["granite-8b", "other"], "https://maas.example", taken={"granite-8b"})
    own, free = specs["maas-granite-8b"], specs["maas-other"]
    assert (own.id, own.upstream_model, own.llama_stack_id) == (
        "maas-granite-8b",
        "granite-8b",
        "maas-granite-8b/maas-granite-8b",
    )
    assert (free.id, free.upstream_model) == ("other", "")


def test_maas_registration_of_a_declared_id_renders_one_entry_per_public_id(serve: Any) -> None:
    """The MaaS serves a model whose id the values already declare (another server's model):
    it is registered under its own public id, calling the MaaS by the served name, and the
    values plus the applied entries still name each public id once."""
    maas = serve(FakeLlamaStack(version="0.7.3", register_route=False, models=["simulated-model"]))
    state = FakeLlamaStack(version="0.7.3", register_route=False, models=["maas/simulated-model"])
    target = RecordingTarget(state)
    declared = {"maas": {"id": "simulated-model", "url": "http://127.0.0.1:8080/v1", "provider": "vllm"}}
    settings = MaasSettings(endpoint=maas, api_key="tok-123", model="simulated-model")
    report = reg.register_maas(target, serve(state), settings, declared=declared, timeout=5)
    assert report.ok and report.registered == ["maas-simulated-model/simulated-model"], report.render()
    entry = target.current["maas-simulated-model"]
    shown = (entry["id"], entry["upstreamModel"], entry["url"])
    assert shown == ("maas-simulated-model", "simulated-model", maas + "/v1"), entry
    public_ids = [e["id"] for e in [*declared.values(), *target.current.values()]]
    assert len(public_ids) == len(set(public_ids)), f"a public id declared twice: {public_ids}"
    again = reg.register_maas(target, serve(state), settings, declared=declared, timeout=5)
    assert (again.applied, again.already) == (False, ["maas-simulated-model/simulated-model"]), again.render()


def test_models_of_an_external_maas_are_marked_external() -> None:
    """The external provider's models are called by llama-stack directly: their entries say so,
    and the stack's gateway leaves them out of its catalog; the stack's own gateway's are not."""
    external = reg.declared_specs(["granite-8b"], "https://maas.example", provider=reg.EXTERNAL_PROVIDER)
    own = reg.declared_specs(["granite-8b"], "http://127.0.0.1:8080", provider=reg.DEFAULT_PROVIDER)
    assert external["maas-granite-8b"].to_values()["external"] is True
    assert "external" not in own["maas-granite-8b"].to_values()
