"""OpenShift detection and Route discovery: on OpenShift the stack is reached through Routes."""

from __future__ import annotations

import json
from typing import Any

from harness.cluster import plans
from harness.cluster.runner import CommandRunner


def is_openshift(runner: CommandRunner, context: str = "") -> bool:
    """True when the API serves route.openshift.io (OpenShift, OKD, MicroShift)."""
    result = runner.run(plans.kubectl_route_api(context), check=False)
    return result.ok and "routes" in result.stdout


def route_urls(doc: str) -> dict[str, str]:
    """component label -> URL, from `kubectl get routes -o json`; https when the Route has TLS."""
    urls: dict[str, str] = {}
    for route in json.loads(doc or "{}").get("items", []):
        component = route["metadata"].get("labels", {}).get("app.kubernetes.io/component", "")
        spec = route.get("spec", {})
        host = spec.get("host") or _admitted_host(route)
        if not component or not host:
            continue
        scheme = "https" if spec.get("tls") else "http"
        urls[component] = f"{scheme}://{host}{spec.get('path', '').rstrip('/')}"
    return urls


def _admitted_host(route: dict[str, Any]) -> str:
    for ingress in route.get("status", {}).get("ingress", []):
        if ingress.get("host"):
            return str(ingress["host"])
    return ""


def discover_routes(runner: CommandRunner, namespace: str, release: str, context: str = "") -> dict[str, str]:
    doc = runner.run(plans.kubectl_get_routes(namespace, plans.instance_selector(release), context)).stdout
    return route_urls(doc)
