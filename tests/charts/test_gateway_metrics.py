"""The gateway's usage metrics as the charts render them: a metrics listener that answers only
GET /metrics (the admin interface stays on loopback), labels the gateway decides, a metrics port that
only Prometheus reaches, a ServiceMonitor only where its API exists, a dashboard whose queries name
only the metrics the gateway exports, and the rag chart's Prometheus scraping every gateway pod."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import yaml
from harness import usage_metrics

from charts.cases import assert_render_check_refuses, render_ok
from charts.helm import HelmBinary, Renderer
from charts.manifests import Obj, config_map_files, of_kind

pytestmark = pytest.mark.charts

CHART = "maas-gateway"
EXPORTED = {
    usage_metrics.TOKENS,
    usage_metrics.CHARGED,
    usage_metrics.REQUESTS,
    usage_metrics.REFUSALS,
    *(f"{h}_{part}" for h in (usage_metrics.DURATION, usage_metrics.TTFT) for part in ("bucket", "sum", "count")),
}


def envoy(docs: list[Obj]) -> dict[str, Any]:
    (cm,) = [d for d in of_kind(docs, "ConfigMap") if d["metadata"]["name"].endswith("-envoy")]
    return yaml.safe_load(config_map_files(cm)["envoy.yaml"])


def listener(config: dict[str, Any], name: str) -> dict[str, Any] | None:
    return next((x for x in config["static_resources"]["listeners"] if x["name"] == name), None)


def stats_loggers(config: dict[str, Any]) -> list[dict[str, Any]]:
    maas = listener(config, "maas")
    assert maas is not None
    hcm = maas["filter_chains"][0]["filters"][0]["typed_config"]
    return [log for log in hcm.get("access_log", []) if log["name"] == "envoy.access_loggers.stats"]


def test_metrics_listener_answers_only_get_metrics_from_the_loopback_admin(
    helm: HelmBinary, renderer: Renderer
) -> None:
    docs = render_ok(renderer, helm, CHART)
    config = envoy(docs)
    metrics = listener(config, "metrics")
    assert metrics is not None, "no metrics listener"
    assert metrics["address"]["socket_address"]["port_value"] == 9102
    routes = metrics["filter_chains"][0]["filters"][0]["typed_config"]["route_config"]["virtual_hosts"][0]["routes"]
    first, rest = routes[0], routes[1:]
    assert first["match"]["path"] == "/metrics" and first["route"]["prefix_rewrite"] == "/stats/prometheus"
    assert first["match"]["headers"] == [{"name": ":method", "string_match": {"exact": "GET"}}]
    assert rest == [{"match": {"prefix": "/"}, "direct_response": {"status": 404}}]
    (admin,) = [c for c in config["static_resources"]["clusters"] if c["name"] == "maas_admin"]
    address = admin["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]["socket_address"]
    assert address["address"] == config["admin"]["address"]["socket_address"]["address"] == "127.0.0.1"
    (deployment,) = [d for d in of_kind(docs, "Deployment") if d["metadata"]["name"].endswith("maas-gateway")]
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true" and annotations["prometheus.io/port"] == "9102"
    assert annotations["prometheus.io/path"] == "/metrics"


def test_metrics_off_renders_none_of_it(helm: HelmBinary, renderer: Renderer) -> None:
    docs = render_ok(renderer, helm, CHART, values={"metrics": {"enabled": False}})
    config = envoy(docs)
    assert listener(config, "metrics") is None and not stats_loggers(config)
    text = yaml.safe_dump_all(docs)
    assert "9102" not in text and "prometheus.io/scrape" not in text and "maas-usage.json" not in text
    assert not [s for s in of_kind(docs, "Service") if s["metadata"]["name"].endswith("-metrics")]


def test_user_label_off_names_everyone_all(helm: HelmBinary, renderer: Renderer) -> None:
    for values, expected in (({}, "%DYNAMIC_METADATA(maas:user)%"), ({"metrics": {"userLabel": False}}, "all")):
        loggers = stats_loggers(envoy(render_ok(renderer, helm, CHART, values=values)))
        users = {
            tag["value_format"]
            for log in loggers
            for stat in log["typed_config"].get("counters", [])
            for tag in stat["stat"]["tags"]
            if tag["name"] == "user"
        }
        assert users == {expected}, (values, users)


def test_only_allow_from_reaches_the_metrics_port(helm: HelmBinary, renderer: Renderer) -> None:
    peers = [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "observability"}}}]
    docs = render_ok(renderer, helm, CHART, values={"metrics": {"allowFrom": peers}})
    (policy,) = [p for p in of_kind(docs, "NetworkPolicy") if p["metadata"]["name"].endswith("-gateway")]
    rules = policy["spec"]["ingress"]
    (metrics_rule,) = [r for r in rules if any(p["port"] == 9102 for p in r["ports"])]
    assert metrics_rule["from"] == peers
    assert all(p["port"] != 9102 for r in rules if "from" not in r for p in r["ports"])


def test_a_service_monitor_needs_the_prometheus_operator(helm: HelmBinary, renderer: Renderer) -> None:
    assert_render_check_refuses(
        renderer, helm, CHART,
        bad={"metrics": {"serviceMonitor": {"enabled": True}}}, good={},
        field="metrics.serviceMonitor.enabled", hint="install the Prometheus operator",
    )  # fmt: skip


def test_the_dashboard_queries_only_exported_metrics(helm: HelmBinary, renderer: Renderer) -> None:
    docs = render_ok(renderer, helm, CHART)
    (cm,) = [d for d in of_kind(docs, "ConfigMap") if "maas-usage.json" in (d.get("data") or {})]
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    dashboard = json.loads(cm["data"]["maas-usage.json"])
    for panel in dashboard["panels"]:
        assert panel.get("description"), f"panel {panel['title']!r} says nothing of what it shows"
        for query in panel["targets"]:
            names = set(re.findall(r"\benvoy_maas_\w+", query["expr"]))
            assert names and names <= EXPORTED, f"{panel['title']}: {sorted(names - EXPORTED)} are not exported"


def test_the_rag_prometheus_scrapes_every_gateway_pod(helm: HelmBinary, renderer: Renderer) -> None:
    docs = render_ok(renderer, helm, "rag", values={"prometheus": {"enabled": True}})
    (cm,) = [d for d in of_kind(docs, "ConfigMap") if d["metadata"]["name"].endswith("-prometheus")]
    (job,) = yaml.safe_load(config_map_files(cm)["prometheus.yml"])["scrape_configs"]
    (sd,) = job["dns_sd_configs"]
    (headless,) = [s for s in of_kind(docs, "Service") if s["spec"].get("clusterIP") == "None"]
    assert sd["names"] == [f"{headless['metadata']['name']}.{headless['metadata']['namespace']}.svc"]
    assert sd["port"] == headless["spec"]["ports"][0]["port"] == 9102
    static = render_ok(renderer, helm, "rag", values={"prometheus": {"enabled": True, "targets": ["127.0.0.1:1"]}})
    (cm,) = [d for d in of_kind(static, "ConfigMap") if d["metadata"]["name"].endswith("-prometheus")]
    (job,) = yaml.safe_load(config_map_files(cm)["prometheus.yml"])["scrape_configs"]
    assert job["static_configs"] == [{"targets": ["127.0.0.1:1"]}]


def test_the_rag_prometheus_needs_the_gateway_metrics(helm: HelmBinary, renderer: Renderer) -> None:
    assert_render_check_refuses(
        renderer, helm, "rag",
        bad={"prometheus": {"enabled": True}, "maas-gateway": {"metrics": {"enabled": False}}},
        good={"prometheus": {"enabled": True}},
        field="prometheus.enabled", hint="maas-gateway.metrics.enabled",
    )  # fmt: skip
