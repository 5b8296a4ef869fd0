"""maas-gateway `routing.byModel`: each catalog entry of `global.models` becomes a route target
(its own Envoy cluster when `routing.upstreams` names it), the model-call route picks the cluster
from the header the Lua step sets, the Lua step gets the catalog (served name, tiers, metadata),
Envoy accepts the config, and bad catalog or routing values fail at render naming the field."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from harness.paths import values_file

from charts import requirements
from charts.cases import assert_render_check_refuses, render_ok
from charts.helm import HelmBinary, Renderer
from charts.layout import chart_present
from charts.test_gateway import envoy_configs, envoy_validate

pytestmark = pytest.mark.charts

CHART = "maas-gateway"
URL = "http://gateway.example.svc:8080/v1"
CATALOG: dict[str, Any] = {
    "open": {"id": "open-model", "url": URL, "displayName": "Open model", "capabilities": ["chat"]},
    "premium": {"id": "premium-model", "url": URL, "upstreamModel": "served-premium", "tiers": ["premium"]},
    "off": {"id": "off-model", "url": URL, "enabled": False},
}
ROUTED: dict[str, Any] = {
    "global": {"models": CATALOG},
    "routing": {"byModel": True, "upstreams": {"premium": {"host": "premium-server", "port": 9001}}},
}
MODELS_JSON = re.compile(r"MODELS_JSON = \[==\[(.*)\]==\]")


def envoy_of(renderer: Renderer, helm: HelmBinary, values: dict[str, Any], chart: str = CHART) -> str:
    configs = envoy_configs(render_ok(renderer, helm, chart, values=values))
    assert len(configs) == 1, f"expected one envoy.yaml, got {sorted(configs)}"
    return next(iter(configs.values()))


def catch_all_route(envoy: dict[str, Any]) -> dict[str, Any]:
    hcm = envoy["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    routes = hcm["route_config"]["virtual_hosts"][0]["routes"]
    return next(r for r in routes if r["match"] == {"prefix": "/"})


def clusters(envoy: dict[str, Any]) -> dict[str, str]:
    """Cluster name -> host:port."""
    out = {}
    for c in envoy["static_resources"]["clusters"]:
        address = c["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]["socket_address"]
        out[c["name"]] = f"{address['address']}:{address['port_value']}"
    return out


def test_each_catalog_entry_gets_its_route_target(helm: HelmBinary, renderer: Renderer) -> None:
    text = envoy_of(renderer, helm, ROUTED)
    envoy = yaml.safe_load(text)
    route = catch_all_route(envoy)
    assert route["route"]["cluster_header"] == "x-maas-cluster", route
    assert "x-maas-cluster" in route["request_headers_to_remove"], "the routing header reaches the model server"
    assert clusters(envoy)["maas_model_premium"] == "premium-server:9001"
    assert "maas_upstream" in clusters(envoy), "entries without an upstream of their own lose their server"
    found = MODELS_JSON.search(text)
    assert found, "the Lua step gets no catalog"
    assert "ROUTE_BY_MODEL = true" in text
    assert json.loads(found.group(1)) == {
        "open-model": {
            "cluster": "maas_upstream",
            "served": "open-model",
            "key": "open",
            "meta": {"displayName": "Open model", "capabilities": ["chat"]},
            "cost": {"input": 1, "output": 1},
        },
        "premium-model": {
            "cluster": "maas_model_premium",
            "served": "served-premium",
            "key": "premium",
            "tiers": ["premium"],
            "meta": {},
            "cost": {"input": 1, "output": 1},
        },
    }


def test_llama_stack_names_each_gateway_model_by_its_catalog_key(helm: HelmBinary, renderer: Renderer) -> None:
    """The front door knows llama-stack's name of a gateway model as `<key>/<public id>` (to refuse
    another tier's model before llama-stack): llama-stack's provider for it must be that key, serving
    that id."""
    values = {"global": {"models": CATALOG}, "maas-gateway": {"routing": ROUTED["routing"]}}
    docs = render_ok(renderer, helm, "rag", values=values)
    found = MODELS_JSON.search(next(iter(envoy_configs(docs).values())))
    assert found, "the Lua step gets no catalog"
    table = json.loads(found.group(1))
    (config,) = [
        yaml.safe_load(d["data"]["config.yaml"])
        for d in docs
        if d.get("kind") == "ConfigMap" and "config.yaml" in (d.get("data") or {})
        and "registered_resources" in d["data"]["config.yaml"]
    ]  # fmt: skip
    registered = {(m["provider_id"], m["provider_model_id"]) for m in config["registered_resources"]["models"]}
    assert table, "the gateway routes no model"
    for public_id, entry in table.items():
        served = (entry["key"], public_id)
        assert served in registered, f"llama-stack does not serve {public_id} as {entry['key']}: {registered}"


def test_an_external_entry_is_not_the_gateways(helm: HelmBinary, renderer: Renderer) -> None:
    """An entry marked `external` (llama-stack calls it directly, e.g. an external MaaS) is neither
    routed nor listed: a gateway that listed it would send its calls to a server that lacks it."""
    external = {"id": "org/external-model", "url": "https://maas.example/v1", "external": True}
    values = {**ROUTED, "global": {"models": {**CATALOG, "maas": external}}}
    found = MODELS_JSON.search(envoy_of(renderer, helm, values))
    assert found, "the Lua step gets no catalog"
    table = json.loads(found.group(1))
    assert "org/external-model" not in table, f"the gateway routes and lists an external model: {table}"
    assert set(table) == {"open-model", "premium-model"}


def test_without_routing_every_call_goes_to_the_one_upstream(helm: HelmBinary, renderer: Renderer) -> None:
    """routing.byModel off (the default): the single `upstream` as before, whatever the catalog says."""
    values = {
        "global": {"models": {"open": CATALOG["open"]}},
        "routing": {"upstreams": {"open": {"host": "h", "port": 1}}},
    }
    text = envoy_of(renderer, helm, values)
    envoy = yaml.safe_load(text)
    assert catch_all_route(envoy)["route"]["cluster"] == "maas_upstream"
    # maas_admin: the metrics listener's way to the admin interface's /stats/prometheus.
    assert set(clusters(envoy)) == {"maas_upstream", "maas_ratelimit", "maas_admin"}
    assert "ROUTE_BY_MODEL = false" in text


def test_envoy_accepts_the_routed_config(helm: HelmBinary, renderer: Renderer, tmp_path: Path) -> None:
    envoy = requirements.envoy()
    for values, chart in (
        (ROUTED, CHART),
        ({"global": ROUTED["global"], CHART: {"routing": ROUTED["routing"]}}, "rag"),
    ):
        chart_present(chart)
        result = envoy_validate(envoy, envoy_of(renderer, helm, values, chart), tmp_path)
        assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]


REFUSALS = [
    # (id, chart, bad, good, field, hint)
    (
        "catalog-tier-unknown",
        CHART,
        {**ROUTED, "global": {"models": {"premium": {**CATALOG["premium"], "tiers": ["gold"]}}}},
        {**ROUTED, "global": {"models": {"premium": {**CATALOG["premium"], "tiers": ["premium"]}}}},
        "global.models.premium.tiers[0]",
        "name one of them or add it under tiers",
    ),
    (
        "catalog-tier-unknown-umbrella",
        "rag",
        {
            "global": {"models": {"premium": {**CATALOG["premium"], "tiers": ["gold"]}}},
            CHART: {"routing": {"byModel": True}},
        },
        {
            "global": {"models": {"premium": {**CATALOG["premium"], "tiers": ["free"]}}},
            CHART: {"routing": {"byModel": True}},
        },
        "global.models.premium.tiers[0]",
        "name one of them or add it under tiers",
    ),
    (
        "catalog-tiers-unenforced",
        CHART,
        {"global": {"models": {"premium": CATALOG["premium"]}}},
        {"global": {"models": {"premium": CATALOG["premium"]}}, "routing": {"byModel": True}},
        "global.models.premium.tiers",
        "routing.byModel: true",
    ),
    (
        "catalog-upstream-model-unsent",
        CHART,
        {"global": {"models": {"open": {**CATALOG["open"], "upstreamModel": "served-open"}}}},
        {
            "global": {"models": {"open": {**CATALOG["open"], "upstreamModel": "served-open"}}},
            "routing": {"byModel": True},
        },
        "global.models.open.upstreamModel",
        "set routing.byModel: true",
    ),
    (
        "catalog-tiers-on-external",
        CHART,
        {**ROUTED, "global": {"models": {"premium": {**CATALOG["premium"], "external": True}}}},
        {**ROUTED, "global": {"models": {"premium": {**CATALOG["premium"], "external": False}}}},
        "global.models.premium.tiers",
        "remove tiers or external",
    ),
    (
        "upstream-of-no-catalog-entry",
        CHART,
        {**ROUTED, "routing": {"byModel": True, "upstreams": {"premum": {"host": "h", "port": 1}}}},
        {**ROUTED, "routing": {"byModel": True, "upstreams": {"premium": {"host": "h", "port": 1}}}},
        "routing.upstreams.premum",
        "use the key of an entry of global.models",
    ),
    (
        "routing-in-kuadrant-mode",
        CHART,
        {"mode": "kuadrant", "routing": {"byModel": True}},
        {"mode": "kuadrant", "routing": {"byModel": False}},
        "routing.byModel",
        "mode: standalone",
    ),
]


@pytest.mark.parametrize(("id_", "chart", "bad", "good", "field", "hint"), REFUSALS, ids=[r[0] for r in REFUSALS])
def test_bad_routing_values_fail_at_render_naming_the_field(
    helm: HelmBinary,
    renderer: Renderer,
    id_: str,
    chart: str,
    bad: dict[str, Any],
    good: dict[str, Any],
    field: str,
    hint: str,
) -> None:
    assert_render_check_refuses(renderer, helm, chart, bad, good, field, hint)


SCHEMA_REJECTIONS = [
    # (id, chart, bad, good, field)
    (
        "tiers-not-a-list",
        "llama-stack",
        {"global": {"models": {"m": {"id": "m", "url": URL, "tiers": "free"}}}},
        {"global": {"models": {"m": {"id": "m", "url": URL, "tiers": ["free"]}}}},
        "tiers",
    ),
    (
        "tiers-not-a-list-gateway",
        CHART,
        {**ROUTED, "global": {"models": {"m": {"id": "m", "tiers": "free"}}}},
        {**ROUTED, "global": {"models": {"m": {"id": "m", "tiers": ["free"]}}}, "routing": {"byModel": True}},
        "tiers",
    ),
    (
        "upstream-without-port",
        CHART,
        {"routing": {"upstreams": {"m": {"host": "h"}}}},
        {"routing": {"upstreams": {}}},
        "port",
    ),
    ("by-model-not-boolean", CHART, {"routing": {"byModel": "yes"}}, {"routing": {"byModel": True}}, "byModel"),
]


@pytest.mark.parametrize(
    ("id_", "chart", "bad", "good", "field"), SCHEMA_REJECTIONS, ids=[r[0] for r in SCHEMA_REJECTIONS]
)
def test_schema_rejects_bad_routing_values_naming_the_field(
    helm: HelmBinary, renderer: Renderer, id_: str, chart: str, bad: dict[str, Any], good: dict[str, Any], field: str
) -> None:
    chart_present(chart)
    ok = renderer.template(helm, chart, values=good)
    assert ok.ok, f"control render (field fixed) must pass:\n{ok.describe()}"
    refused = renderer.template(helm, chart, values=bad)
    assert not refused.ok, f"helm accepted the bad value of {field!r}"
    assert "schema" in refused.stderr.lower(), f"rejected, but not by values.schema.json:\n{refused.stderr}"
    assert re.search(rf"\b{re.escape(field)}\b", refused.stderr), (
        f"the error does not name {field!r}:\n{refused.stderr}"
    )


def test_the_dev_overlays_declare_one_catalog() -> None:
    """values/local.yaml and values/kind.yaml carry the same catalog and routing, written twice
    (each overlay is complete on its own); only the gateway's address differs: loopback locally,
    the release's Service in a cluster. So the routing and model-limit e2e tests prove the same
    catalog on the local and kube targets."""
    local, kind = (yaml.safe_load(values_file(name).read_text()) for name in ("local", "kind"))

    def without_url(models: dict[str, Any]) -> dict[str, Any]:
        return {key: {k: v for k, v in entry.items() if k != "url"} for key, entry in models.items()}

    assert without_url(local["global"]["models"]) == without_url(kind["global"]["models"])
    assert local["maas-gateway"]["routing"] == kind["maas-gateway"]["routing"]
    assert local["maas-gateway"]["tiers"] == kind["maas-gateway"]["tiers"]
