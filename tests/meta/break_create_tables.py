"""Meta-test plugin (`-p meta.break_create_tables`): the local runner skips llama-stack's
create-tables init container, so the server creates its SQL tables lazily on the first
requests, as llama-stack 0.7.3 does alone. The fresh-volume test must then fail."""

from __future__ import annotations

from typing import Any

from harness.local import pods, stack


def _without_create_tables(rendered: Any) -> list[pods.ContainerSpec]:
    specs = _original(rendered)
    for spec in specs:
        spec.init = [init for init in spec.init if not init.name.endswith("create-tables")]
    return specs


_original = pods.container_specs
stack.container_specs = _without_create_tables
