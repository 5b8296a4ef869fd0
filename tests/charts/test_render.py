"""Acceptance 2: every chart renders with its defaults and rag with every overlay in values/;
every rendered object validates offline (Kubernetes 1.34 strict, CRD schemas for custom kinds)."""

from __future__ import annotations

from typing import Any

import pytest

from charts import validation
from charts.cases import CASE_IDS, CASES, Case, render_case
from charts.helm import HelmBinary, Renderer
from charts.layout import EXPECTED_OVERLAYS, overlays
from charts.manifests import ref

pytestmark = pytest.mark.charts


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_renders_and_validates(helm: HelmBinary, renderer: Renderer, case: Case) -> None:
    docs = render_case(renderer, helm, case)
    assert docs, "the render produced no objects"
    problems = {f"{ref(d)} ({d.get('apiVersion')})": errs for d in docs if (errs := validation.validate(d))}
    assert not problems, "invalid objects:\n" + "\n".join(f"{k}: {v}" for k, v in problems.items())


@pytest.mark.parametrize("name", EXPECTED_OVERLAYS)
def test_overlay_exists_and_says_when_to_use_it(name: str) -> None:
    found = {p.stem: p for p in overlays()}
    assert name in found, f"values/{name}.yaml missing; found {sorted(found)}"
    first = found[name].read_text().lstrip().splitlines()[0]
    assert first.startswith("#"), f"values/{name}.yaml should open with a comment saying when to use it"


def test_vendored_crd_schemas_reject_bad_objects() -> None:
    """The CRD validator is not vacuous: unknown fields, bad enums and missing required fields fail."""
    route: dict[str, Any] = {
        "apiVersion": "route.openshift.io/v1",
        "kind": "Route",
        "metadata": {"name": "r"},
        "spec": {"to": {"name": "svc"}, "tls": {"termination": "edge"}, "port": {"targetPort": "http"}},
    }
    assert validation.validate(route) == []
    bad_route = {**route, "spec": {**route["spec"], "tls": {"termination": "sideways"}, "bogus": 1}}
    assert len(validation.validate(bad_route)) == 2
    policy = {
        "apiVersion": "kuadrant.io/v1",
        "kind": "RateLimitPolicy",
        "metadata": {"name": "p"},
        "spec": {
            "targetRef": {"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "name": "r"},
            "limits": {"free": {"rates": [{"limit": 5, "window": "2m"}]}},
        },
    }
    assert validation.validate(policy) == []
    bad_policy = {**policy, "spec": {"limits": {"free": {"rates": [{"limit": 5, "window": "two minutes"}]}}}}
    errors = validation.validate(bad_policy)
    assert any("targetRef" in e for e in errors) and any("window" in e for e in errors), errors
    unknown = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}
    assert validation.validate(unknown), "an object with no schema anywhere must not pass"
