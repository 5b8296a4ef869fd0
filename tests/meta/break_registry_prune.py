"""Meta-test plugin (`-p meta.break_registry_prune`): the local runner ignores the pods'
initContainers, so llama-stack's registry is never pruned and a removed model stays listed.
The registration test must then fail."""

from __future__ import annotations

from typing import Any

from harness.local import pods, stack


def _without_init(rendered: Any) -> list[pods.ContainerSpec]:
    specs = _original(rendered)
    for spec in specs:
        spec.init = []
    return specs


_original = pods.container_specs
stack.container_specs = _without_init
