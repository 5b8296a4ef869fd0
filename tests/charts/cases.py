"""The renders every generic check (schemas, labels, security) runs over, and a helper to get them."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from charts.helm import HelmBinary, Renderer
from charts.layout import CHARTS, UMBRELLA, chart_present, overlays
from charts.manifests import Obj

# Two enabled models (inline token, Secret reference) and one disabled: the global.models contract.
INLINE_TOKEN = "sk-ci-inline-7f3a9c1e5b2d4680"
MODELS: dict[str, Any] = {
    "primary": {
        "id": "qwen3-0.6b",
        "url": "http://maas.example.test:8000/v1",
        "apiToken": INLINE_TOKEN,
        "enabled": True,
        "provider": "vllm",
        "maxTokens": 2048,
        "tlsVerify": False,
    },
    "secondary": {
        "id": "granite-3-8b",
        "url": "https://api.example.test/v1",
        "apiTokenSecretRef": {"name": "ci-external-token", "key": "token"},
        "enabled": True,
        "provider": "openai",
    },
    "retired": {
        "id": "retired-model-ci-x9",
        "url": "http://retired-endpoint-ci.example.test/v1",
        "apiToken": "sk-ci-retired-should-not-render",
        "enabled": False,
    },
}
MODELS_VALUES: dict[str, Any] = {"global": {"models": MODELS}}


@dataclass(frozen=True)
class Case:
    id: str
    chart: str
    overlay: Path | None = None
    values: dict[str, Any] | None = field(default=None, hash=False, compare=False)


def all_cases() -> list[Case]:
    cases = [Case(f"{chart}-defaults", chart) for chart in CHARTS]
    cases += [Case(f"{UMBRELLA}-{path.stem}", UMBRELLA, overlay=path) for path in overlays()]
    cases += [
        Case("maas-gateway-kuadrant", "maas-gateway", values={"mode": "kuadrant"}),
        Case("vllm-gpu-simulator", "vllm-gpu", values={"mode": "simulator"}),
        Case("llama-stack-models", "llama-stack", values=MODELS_VALUES),
        Case("rag-models", UMBRELLA, values=MODELS_VALUES),
    ]
    cases += [Case(f"vllm-gpu-{p}", "vllm-gpu", values={"mode": "gpu", "preset": p}) for p in ("t4", "a100", "h100")]
    return cases


CASES = all_cases()
CASE_IDS = [c.id for c in CASES]


def render_ok(
    renderer: Renderer,
    helm: HelmBinary,
    chart: str,
    overlay: Path | None = None,
    values: dict[str, Any] | None = None,
    sets: tuple[str, ...] = (),
) -> list[Obj]:
    """Render or fail the test with helm's own error."""
    chart_present(chart)
    files = (overlay,) if overlay else ()
    result = renderer.template(helm, chart, values_files=files, values=values, sets=sets)
    if not result.ok:
        pytest.fail(f"render failed:\n{result.describe()}", pytrace=False)
    return result.docs()


def render_case(renderer: Renderer, helm: HelmBinary, case: Case) -> list[Obj]:
    return render_ok(renderer, helm, case.chart, case.overlay, case.values)


def assert_render_check_refuses(
    renderer: Renderer, helm: HelmBinary, chart: str, bad: dict[str, Any], good: dict[str, Any], field: str, hint: str
) -> None:
    """`good` renders; `bad` fails in a chart's own render check (`ERROR:`), naming `field` and
    saying what to do (`hint`)."""
    chart_present(chart)
    ok = renderer.template(helm, chart, values=good)
    assert ok.ok, f"control render (field fixed) must pass:\n{ok.describe()}"
    refused = renderer.template(helm, chart, values=bad)
    assert not refused.ok, f"helm accepted the bad value of {field}"
    assert "ERROR:" in refused.stderr, f"rejected, but not by the chart's render check:\n{refused.stderr}"
    assert field in refused.stderr, f"the error does not name {field}:\n{refused.stderr}"
    assert hint in refused.stderr, f"the error does not say what to do ({hint!r}):\n{refused.stderr}"
