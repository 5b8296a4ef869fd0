"""The umbrella: each dependency sits behind `<name>.enabled`, and so do pgvector and embeddings;
switching one off removes exactly its objects."""

from __future__ import annotations

import pytest
import yaml
from harness.paths import CHARTS_DIR

from charts.cases import render_ok
from charts.helm import HelmBinary, Renderer
from charts.layout import UMBRELLA
from charts.manifests import Obj, ref

pytestmark = pytest.mark.charts

SUBCHARTS = ("llama-stack", "maas-gateway", "vllm-gpu")
IN_CHART = ("pgvector", "embeddings")


def dependencies() -> dict[str, dict]:
    meta = yaml.safe_load((CHARTS_DIR / UMBRELLA / "Chart.yaml").read_text()) or {}
    return {d.get("alias") or d["name"]: d for d in meta.get("dependencies") or []}


# The second model server: vllm-gpu again under an alias, off by default.
@pytest.mark.parametrize("name", (*SUBCHARTS, "vllm-gpu-2"))
def test_dependency_is_conditional_file_dependency(name: str) -> None:
    dep = dependencies().get(name)
    assert dep, f"rag does not depend on {name}"
    assert dep.get("condition") == f"{name}.enabled"
    assert str(dep.get("repository", "")).startswith("file://"), dep


def owned_by(docs: list[Obj], name: str) -> list[str]:
    return [
        ref(d)
        for d in docs
        if name
        in (
            ((d.get("metadata") or {}).get("labels") or {}).get("app.kubernetes.io/name"),
            ((d.get("metadata") or {}).get("labels") or {}).get("app.kubernetes.io/component"),
        )
    ]


@pytest.mark.parametrize("name", SUBCHARTS + IN_CHART)
def test_disabling_a_component_removes_it(helm: HelmBinary, renderer: Renderer, name: str) -> None:
    on = render_ok(renderer, helm, UMBRELLA)
    assert owned_by(on, name), f"rag defaults render nothing labelled {name}"
    off = render_ok(renderer, helm, UMBRELLA, values={name: {"enabled": False}})
    assert not owned_by(off, name), f"{name}.enabled=false still renders {owned_by(off, name)}"
    assert len(off) < len(on)
