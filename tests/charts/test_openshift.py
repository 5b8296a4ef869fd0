"""Acceptance 8 (first half): the openshift overlay renders Routes for llama-stack and the gateway,
each pointing at a rendered Service and one of its ports. (No fixed runAsUser: test_security.py.)"""

from __future__ import annotations

import pytest
from harness.paths import VALUES_DIR

from charts.cases import render_ok
from charts.helm import HelmBinary, Renderer
from charts.layout import UMBRELLA
from charts.manifests import Obj, of_kind, ref

pytestmark = pytest.mark.charts

OVERLAY = VALUES_DIR / "openshift.yaml"
ROUTED_COMPONENTS = ("llama-stack", "maas-gateway")


def render(renderer: Renderer, helm: HelmBinary) -> list[Obj]:
    if not OVERLAY.is_file():
        pytest.fail(f"{OVERLAY} is missing", pytrace=False)
    return render_ok(renderer, helm, UMBRELLA, overlay=OVERLAY)


def test_openshift_overlay_renders_routes(helm: HelmBinary, renderer: Renderer) -> None:
    routes = of_kind(render(renderer, helm), "Route")
    assert routes, "values/openshift.yaml renders no Route"
    assert {r["apiVersion"] for r in routes} == {"route.openshift.io/v1"}
    names = {(r.get("metadata") or {}).get("labels", {}).get("app.kubernetes.io/name") for r in routes}
    for component in ROUTED_COMPONENTS:
        listed = [ref(r) for r in routes]
        assert component in names, f"no Route labelled app.kubernetes.io/name={component}; routes: {listed}"


def test_routes_point_at_rendered_services(helm: HelmBinary, renderer: Renderer) -> None:
    docs = render(renderer, helm)
    services = {s["metadata"]["name"]: s for s in of_kind(docs, "Service")}
    problems = []
    for route in of_kind(docs, "Route"):
        spec = route["spec"]
        svc = services.get(spec["to"]["name"])
        if svc is None:
            problems.append(f"{ref(route)} -> Service {spec['to']['name']} not rendered")
            continue
        target = (spec.get("port") or {}).get("targetPort")
        declared = svc["spec"].get("ports", [])
        ports = {p.get("name") for p in declared} | {p.get("port") for p in declared}
        if target is not None and target not in ports:
            problems.append(f"{ref(route)} targetPort {target!r} not a port of {ref(svc)}: {ports}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("chart", ("llama-stack", "maas-gateway"))
def test_route_disabled_by_default(helm: HelmBinary, renderer: Renderer, chart: str) -> None:
    """Routes only exist on OpenShift: the charts' defaults must not render them (no CRD elsewhere)."""
    assert not of_kind(render_ok(renderer, helm, chart), "Route")
    assert of_kind(render_ok(renderer, helm, chart, values={"route": {"enabled": True}}), "Route")
