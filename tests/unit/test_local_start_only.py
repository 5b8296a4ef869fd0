"""Starting some components of the local stack only (the gateway benchmark starts the gateway's):
the start plan holds their containers, in render order, and an unknown name starts nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from harness.local import processes, stack
from harness.local.pods import ContainerSpec
from harness.local.programs import Launch
from harness.local.state import RunFolder
from harness.render import Rendered

pytestmark = pytest.mark.unit

SPECS = [
    ContainerSpec(component=c, name=f"rag-{c}", image="x", command=[], args=[], env={})
    for c in ("llama-stack", "gateway", "ratelimit", "redis", "model-server")
]


@pytest.fixture
def planned(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The container names each start plans; rendering and launching are replaced."""
    started: list[str] = []
    monkeypatch.setattr(stack, "render", lambda run: Rendered([]))
    monkeypatch.setattr(stack, "container_specs", lambda rendered: SPECS)
    monkeypatch.setattr(stack, "_component", lambda spec, run: stack.Component(spec, Launch([], {})))
    monkeypatch.setattr(stack, "_start_all", lambda plan, run: started.extend(c.spec.name for c in plan.components))
    return started


def test_only_the_named_components_start(planned: list[str], tmp_path: Path) -> None:
    stack.up(RunFolder("t", tmp_path), only=("redis", "ratelimit", "gateway"))
    assert planned == ["rag-gateway", "rag-ratelimit", "rag-redis"]


def test_without_only_every_component_starts(planned: list[str], tmp_path: Path) -> None:
    stack.up(RunFolder("t", tmp_path))
    assert planned == [spec.name for spec in SPECS]


def test_an_unknown_component_starts_nothing(planned: list[str], tmp_path: Path) -> None:
    with pytest.raises(processes.StartError, match="no rendered container"):
        stack.up(RunFolder("t", tmp_path), only=("gatway",))
    assert planned == []
