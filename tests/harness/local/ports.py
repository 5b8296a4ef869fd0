"""Loopback ports for one local stack and the chart values that carry them."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, fields
from typing import Any

import yaml

from harness.loopback import free_ports
from harness.paths import chart

# How a model URL in the values names the stack's own gateway or model server: a loopback
# address, or the in-cluster Service name (`<release>-maas-gateway`, with `{{ .Release.Name }}`
# or the release spelt out), on the port the chart listens on by default.
_URL = re.compile(r"^(?P<scheme>https?://)(?P<host>[^/:]+):(?P<port>\d+)(?P<path>/.*)?$")
LOOPBACK = ("127.0.0.1", "localhost")


@dataclass
class Ports:
    gateway: int = 0
    gateway_admin: int = 0
    gateway_health: int = 0
    gateway_metrics: int = 0
    ratelimit_grpc: int = 0
    ratelimit_http: int = 0
    ratelimit_debug: int = 0
    redis: int = 0
    model_server: int = 0
    model_server_2: int = 0  # the rag chart's second model server (vllm-gpu-2), when enabled
    pgvector: int = 0
    embeddings: int = 0
    llama_stack: int = 0
    prometheus: int = 0

    def fill_free(self) -> Ports:
        """Keep ports the user chose; pick free, distinct ones for the rest."""
        given = {f.name: getattr(self, f.name) for f in fields(self)}
        missing = [name for name, port in given.items() if not port]
        # One pick for all: independent picks could give two components one port.
        picked = iter(free_ports(len(missing), exclude=set(given.values())))
        return Ports(**{name: port or next(picked) for name, port in given.items()})

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def _chart_default(name: str, *path: str) -> int:
    value: Any = yaml.safe_load((chart(name) / "values.yaml").read_text())
    for key in path:
        value = value[key]
    return int(value)


def local_model_url(url: str, p: Ports) -> str | None:
    """`url` moved to this stack's gateway or model server port; None when it points elsewhere."""
    match = _URL.match(url.strip())
    if match is None:
        return None
    host, port = match["host"], int(match["port"])
    own = {
        "-maas-gateway": (_chart_default("maas-gateway", "envoy", "port"), p.gateway),
        "-vllm-gpu": (_chart_default("vllm-gpu", "port"), p.model_server),
    }
    for service, (default_port, chosen) in own.items():
        if port == default_port and (host in LOOPBACK or host.endswith(service)):
            return f"http://127.0.0.1:{chosen}{match['path'] or ''}"
    return None


def local_upstream(upstream: dict[str, Any], p: Ports) -> dict[str, Any] | None:
    """A `maas-gateway.routing.upstreams` entry naming one of the stack's model servers by its
    Service (`<release>-vllm-gpu` or `<release>-vllm-gpu-2`) on the chart's port, moved to that
    server's loopback port; None when it names another server."""
    host, port = str(upstream.get("host", "")), int(upstream.get("port", 0))
    default_port = _chart_default("vllm-gpu", "port")
    for service, chosen in (("-vllm-gpu-2", p.model_server_2), ("-vllm-gpu", p.model_server)):
        if port == default_port and host.endswith(service):
            return {"host": "127.0.0.1", "port": chosen}
    return None


def model_url_values(models: dict[str, dict[str, Any]], p: Ports) -> dict[str, dict[str, str]]:
    """`global.models` entries (merged from the values files) whose URL points at the stack's own
    gateway or model server, moved to the ports this stack chose: every such model works locally,
    not only the one values/local.yaml declares."""
    moved = {key: local_model_url(str(entry.get("url", "")), p) for key, entry in models.items()}
    return {key: {"url": url} for key, url in moved.items() if url}


def port_values(
    p: Ports, models: dict[str, dict[str, Any]] | None = None, upstreams: dict[str, dict[str, Any]] | None = None
) -> dict[str, Any]:
    """The rag chart values that put every component on its port (docs/architecture.md rule 1).

    `models`: the merged `global.models` of the values files, whose local URLs follow the ports.
    `upstreams`: the merged `maas-gateway.routing.upstreams`, whose model servers follow them too.
    """
    moved = {key: local_upstream(u, p) for key, u in (upstreams or {}).items() if u}
    return {
        "global": {"models": model_url_values(models or {}, p)},
        "vllm-gpu": {"port": p.model_server},
        "vllm-gpu-2": {"port": p.model_server_2},
        "maas-gateway": {
            "routing": {"upstreams": {key: u for key, u in moved.items() if u}},
            "envoy": {"port": p.gateway, "adminPort": p.gateway_admin, "healthPort": p.gateway_health},
            "metrics": {"port": p.gateway_metrics},
            "ratelimit": {"grpcPort": p.ratelimit_grpc, "httpPort": p.ratelimit_http, "debugPort": p.ratelimit_debug},
            "redis": {"port": p.redis},
            "upstream": {"port": p.model_server},
            "llamaStack": {"host": "127.0.0.1", "port": p.llama_stack},
        },
        "pgvector": {"port": p.pgvector},
        "prometheus": {"port": p.prometheus, "targets": [f"127.0.0.1:{p.gateway_metrics}"]},
        "embeddings": {"port": p.embeddings},
        "llama-stack": {
            "port": p.llama_stack,
            "auth": {"endpoint": f"http://127.0.0.1:{p.gateway}/auth/validate"},
            "embeddings": {"url": f"http://127.0.0.1:{p.embeddings}/v1"},
            "vectorStore": {"pgvector": {"port": p.pgvector}},
        },
    }
