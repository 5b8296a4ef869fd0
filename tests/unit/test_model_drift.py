"""The drift check's comparison and id mapping (harness.model_drift): pure functions over listings."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest
from harness import model_drift as drift
from harness.cli import main
from harness.declared import Declared
from harness.loopback import free_port
from harness.model_drift import ABSENT, LLAMA_STACK, MAAS, MISSING, OK, UNEXPECTED, VALUES, Observed
from harness.registration import Models

pytestmark = pytest.mark.unit

GATEWAY_URL = "http://127.0.0.1:41000"
LOCAL: Models = {
    "maas": {"id": "simulated-model", "url": "http://127.0.0.1:8080/v1", "provider": "vllm"},
    "simulated-2": {"id": "simulated-model-2", "url": "http://127.0.0.1:8080/v1", "tiers": ["premium", "enterprise"]},
}
TIERS = ("enterprise", "free", "premium")


def entries(models: Models) -> list[drift.CatalogEntry]:
    return drift.catalog_entries(models, gateway_urls=[GATEWAY_URL, ""], gateway_port=8080)


def by_model_listing(**extra: list[str]) -> dict[str, list[str]]:
    listing = {
        "enterprise": ["simulated-model", "simulated-model-2"],
        "premium": ["simulated-model", "simulated-model-2"],
    }
    listing["free"] = ["simulated-model"]
    return {tier: listing[tier] + extra.get(tier, []) for tier in TIERS}


def rows_by_model(rows: list[drift.Row]) -> dict[str, dict[str, str]]:
    return {row.model: row.cells for row in rows}


def report(observed: Observed, models: Models = LOCAL, **kw: object) -> drift.CheckReport:
    columns, rows = drift.compare(entries(models), observed, **kw)  # type: ignore[arg-type]
    return drift.CheckReport(columns, rows, {})


STACK_IDS = ["maas/simulated-model", "simulated-2/simulated-model-2"]


def test_a_consistent_install_has_no_drift_and_a_tier_outside_an_entry_does_not_list_it() -> None:
    result = report(Observed(by_model_listing(), STACK_IDS), by_model=True)
    assert result.ok, result.render_table()
    cells = rows_by_model(result.rows)
    assert cells["simulated-model-2"]["gateway[free]"] == ABSENT  # not allowed, not listed: fine
    assert cells["simulated-model-2"]["gateway[premium]"] == OK
    assert cells["simulated-model"][LLAMA_STACK] == OK and cells["simulated-model"][VALUES] == OK
    assert "no drift" in result.render_table()


def test_a_model_missing_from_llama_stack_is_drift_naming_the_model_and_llama_stack() -> None:
    result = report(Observed(by_model_listing(), ["simulated-2/simulated-model-2"]), by_model=True)
    assert not result.ok
    assert rows_by_model(result.rows)["simulated-model"][LLAMA_STACK] == MISSING
    (line,) = result.drift_lines()
    assert "simulated-model" in line and "llama-stack" in line and "maas/simulated-model" in line


def test_a_model_only_the_gateway_lists_is_drift_naming_the_model_and_the_gateway() -> None:
    listing = by_model_listing(free=["drift-probe-model"], premium=["drift-probe-model"])
    result = report(Observed(listing, STACK_IDS), by_model=True)
    assert not result.ok
    row = rows_by_model(result.rows)["drift-probe-model"]
    assert row["gateway[free]"] == UNEXPECTED and row[VALUES] == ABSENT and row[LLAMA_STACK] == ABSENT
    assert all("drift-probe-model" in line and "[gateway]" in line for line in result.drift_lines())


def test_a_tier_listing_a_model_it_may_not_use_is_drift() -> None:
    listing = by_model_listing(free=["simulated-model-2"])
    result = report(Observed(listing, STACK_IDS), by_model=True)
    assert rows_by_model(result.rows)["simulated-model-2"]["gateway[free]"] == UNEXPECTED
    assert not result.ok


def test_a_tier_missing_a_model_it_may_use_is_drift() -> None:
    listing = by_model_listing()
    listing["premium"] = ["simulated-model"]
    result = report(Observed(listing, STACK_IDS), by_model=True)
    assert rows_by_model(result.rows)["simulated-model-2"]["gateway[premium]"] == MISSING


def test_llama_stack_and_the_gateway_list_a_gateway_entry_by_its_public_id() -> None:
    models: Models = {
        **LOCAL,
        "second": {"id": "second-model", "upstreamModel": "simulated-model", "url": GATEWAY_URL + "/v1"},
    }
    listing = by_model_listing(**{t: ["second-model"] for t in TIERS})
    result = report(Observed(listing, [*STACK_IDS, "second/second-model"]), models, by_model=True)
    assert result.ok, result.render_table()
    # Behind the gateway llama-stack sends (and is listed by) the public id: the served name there
    # is not the same model (it would skip the entry's budgets at the gateway): drift both ways.
    wrong = report(Observed(listing, [*STACK_IDS, "second/simulated-model"]), models, by_model=True)
    cells = rows_by_model(wrong.rows)
    assert cells["second-model"][LLAMA_STACK] == MISSING and cells["second/simulated-model"][LLAMA_STACK] == UNEXPECTED


def test_without_routing_by_model_the_gateway_relays_served_names_to_every_tier() -> None:
    kind: Models = {"maas": {"id": "simulated-model", "url": "http://{{ .Release.Name }}-maas-gateway:8080/v1"}}
    listing = {tier: ["simulated-model"] for tier in TIERS}
    result = report(
        Observed(listing, ["maas/simulated-model"]), kind, by_model=False, served_by_default=["simulated-model"]
    )
    assert result.ok, result.render_table()
    # The model server lost the name llama-stack calls it by.
    gone = report(Observed({t: [] for t in TIERS}, ["maas/simulated-model"]), kind, by_model=False)
    assert rows_by_model(gone.rows)["simulated-model"]["gateway[free]"] == MISSING


def test_a_model_server_name_no_entry_uses_is_expected_at_a_relaying_gateway_and_nothing_else_is() -> None:
    listing = {tier: ["simulated-model", "served-only"] for tier in TIERS}
    kind: Models = {"maas": {"id": "simulated-model", "url": "http://rag-maas-gateway:8080/v1"}}
    result = report(
        Observed(listing, ["maas/simulated-model"]), kind, by_model=False, served_by_default=["served-only"]
    )
    assert result.ok, result.render_table()
    stray = report(Observed(listing, ["maas/simulated-model"]), kind, by_model=False)
    assert rows_by_model(stray.rows)["served-only"]["gateway[free]"] == UNEXPECTED


def test_an_external_maas_model_is_expected_in_llama_stack_and_the_maas_not_at_the_gateway() -> None:
    external: Models = {**LOCAL, "maas-org-m": {"id": "org/m", "url": "https://maas.example/v1", "provider": "openai"}}
    ids = [*STACK_IDS, "maas-org-m/org/m"]
    result = report(Observed(by_model_listing(), ids, maas=["org/m", "org/other"]), external, by_model=True,
                    maas_url="https://maas.example")  # fmt: skip
    assert result.ok, result.render_table()
    cells = rows_by_model(result.rows)
    assert cells["org/m"][MAAS] == OK and cells["org/m"]["gateway[free]"] == ABSENT
    assert cells["simulated-model"][MAAS] == ABSENT  # not a MaaS model
    gone = report(Observed(by_model_listing(), ids, maas=["org/other"]), external, by_model=True,
                  maas_url="https://maas.example/v1")  # fmt: skip
    assert rows_by_model(gone.rows)["org/m"][MAAS] == MISSING and any("[maas]" in x for x in gone.drift_lines())


def test_the_catalog_keeps_a_declared_entry_a_registration_disabled_and_adds_registered_ones() -> None:
    applied: Models = {
        "maas": {"enabled": False},
        "maas-x": {"id": "x", "url": "https://m/v1"},
        "off": {"enabled": False},
    }
    catalog = drift.catalog_models(LOCAL, applied)
    assert sorted(catalog) == ["maas", "maas-x", "simulated-2"]
    assert catalog["maas"]["id"] == "simulated-model"


@pytest.mark.parametrize(
    ("url", "ours"),
    [
        ("http://127.0.0.1:8080/v1", True),  # the values' loopback placeholder
        (GATEWAY_URL + "/v1", True),  # the running gateway itself
        ("http://{{ .Release.Name }}-maas-gateway:8080/v1", True),
        ("http://rag-maas-gateway:8080/v1", True),
        ("http://127.0.0.1:8000/v1", False),  # the model server, directly
        ("https://maas.example/v1", False),
    ],
)
def test_which_urls_name_this_stacks_gateway(url: str, ours: bool) -> None:
    assert drift.names_gateway(url, [GATEWAY_URL], 8080) is ours


def test_sync_specs_carry_the_entry_and_move_the_loopback_placeholder_to_the_gateway_llama_stack_uses() -> None:
    models: Models = {
        "maas": {"id": "simulated-model", "url": "http://127.0.0.1:8080/v1", "provider": "vllm", "displayName": "S"},
        "ext": {"id": "e", "upstreamModel": "org/e", "url": "https://maas.example/v1", "provider": "openai",
                "apiTokenSecretRef": {"name": "maas-api-key", "key": "token"}, "tlsVerify": False, "external": True},
    }  # fmt: skip
    specs = {e.key: drift.spec_for(e, GATEWAY_URL) for e in entries(models)}
    assert specs["maas"].url == GATEWAY_URL + "/v1" and specs["maas"].llama_stack_id == "maas/simulated-model"
    ext = specs["ext"]
    assert (ext.url, ext.secret_ref, ext.tls_verify, ext.provider) == (
        "https://maas.example/v1", ("maas-api-key", "token"), False, "openai"
    )  # fmt: skip
    assert ext.external, "sync would register an external entry as one behind the gateway"
    assert ext.llama_stack_id == "ext/org/e"


def test_sync_registers_only_what_llama_stack_misses() -> None:
    result = report(Observed(by_model_listing(), ["simulated-2/simulated-model-2"]), by_model=True)
    assert [e.key for e in drift.missing_in_llama_stack(result, entries(LOCAL))] == ["maas"]


def test_an_unreachable_registry_is_one_line_naming_it_not_a_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(drift.RegistryUnreachable, match=r"^llama-stack unreachable .*python -m harness status"):
        drift.observe(GATEWAY_URL, url, {})
    # Through the CLI: the harness's one error line, exit 1.
    code = main(["models", "check", "--target", "local", "--run-name", "no-such-stack-here"])
    err = capsys.readouterr().err
    assert code == 1 and err.strip().splitlines()[-1].startswith("error: no local stack named 'no-such-stack-here'")
    assert "Traceback" not in err


def test_json_output_carries_every_cell_and_the_drift() -> None:
    result = report(Observed(by_model_listing(), ["simulated-2/simulated-model-2"]), by_model=True)
    text = result.render_json()
    assert '"ok": false' in text and "maas/simulated-model" in text


# --- check and sync against a small HTTP stand-in for the gateway and llama-stack -------------------


class _Registries(BaseHTTPRequestHandler):
    """GET /gw/v1/models (per key: free lists one model, premium two) and GET /ls/v1/models (what
    `listed` holds); the llama-stack routes registration waits for answer 200."""

    listed: ClassVar[list[str]] = []

    def log_message(self, *args: object) -> None:
        return

    def do_GET(self) -> None:
        gateway = {"Bearer f": ["simulated-model"], "Bearer p": ["simulated-model", "simulated-model-2"]}
        items: list[dict[str, object]]
        if self.path == "/gw/v1/models":
            items = [{"id": i} for i in gateway.get(self.headers.get("Authorization", ""), [])]
        elif self.path == "/ls/v1/models":
            items = [{"id": i, "custom_metadata": {"model_type": "llm"}} for i in self.listed]
            items.append({"id": "embeddings/e5", "custom_metadata": {"model_type": "embedding"}})
        elif self.path.startswith("/ls/v1/"):
            items = []
        else:
            self.send_response(404)
            self.end_headers()
            return
        data = json.dumps({"data": items}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@dataclass
class _AppliesModels:
    """A target whose apply restarts llama-stack with the applied catalog: it then lists each
    enabled entry as <key>/<id> (external: <key>/<upstreamModel or id>)."""

    applied: Models = dataclass_field(default_factory=dict)
    calls: list[Models] = dataclass_field(default_factory=list)

    def applied_models(self) -> Models:
        return dict(self.applied)

    def apply_models(self, models: Models) -> None:
        self.calls.append(models)
        self.applied = models
        keep = [m for m in _Registries.listed if m.split("/", 1)[0] not in models]
        _Registries.listed = keep + [
            f"{k}/{e.get('upstreamModel') or e['id']}" for k, e in models.items() if e.get("enabled", True)
        ]

    def model_ca_path(self, path: str) -> str:
        return path


@pytest.fixture
def registries() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Registries)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


def _stack(base: str, applied: Models) -> drift.Stack:
    values = {"global": {"models": LOCAL}, "maas-gateway": {"routing": {"byModel": True}, "envoy": {"port": 8080}}}
    return drift.Stack(
        gateway_url=f"{base}/gw", llama_stack_url=f"{base}/ls", keys={"free": ["f"], "premium": ["x", "p"]},
        declared=Declared(values, ("test",)), applied=applied,
    )  # fmt: skip


def test_sync_registers_what_llama_stack_misses_through_registration_and_removes_nothing(registries: str) -> None:
    # `register --remove` took simulated-model out of llama-stack; a stray model stays listed.
    _Registries.listed = ["simulated-2/simulated-model-2", "stray/m"]
    target = _AppliesModels(applied={"maas": {"enabled": False}})
    stack = _stack(registries, target.applied)
    before = drift.check(stack)
    assert [line.split(":")[0] for line in before.drift_lines()] == ["DRIFT simulated-model", "DRIFT stray/m"]
    assert drift.sync(target, stack, before, dry_run=True) == (["maas/simulated-model"], None)
    assert target.calls == []

    names, registration = drift.sync(target, stack, before)
    assert names == ["maas/simulated-model"] and registration is not None and registration.ok
    (applied,) = target.calls
    assert applied["maas"] == {
        "id": "simulated-model",
        "url": f"{registries}/gw/v1",
        "enabled": True,
        "provider": "vllm",
    }
    after = drift.check(_stack(registries, target.applied))
    assert [line.split(":")[0] for line in after.drift_lines()] == ["DRIFT stray/m"]  # sync never removes
    assert "stray/m" in _Registries.listed
