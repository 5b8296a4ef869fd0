"""Deployment targets: local (embedded processes), kind, existing cluster."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from harness.errors import HarnessError
from harness.targets.base import Target

TARGET_NAMES = ("local", "kind", "existing")


@dataclass
class TargetOptions:
    release: str = "rag"
    namespace: str = ""  # empty: the target picks one (kind/existing: one per run)
    keep: bool = False  # leave the deployment running after the tests
    values: list[Path] = field(default_factory=list)  # extra overlays after the target's own
    cluster_name: str = "rag-e2e"  # kind only
    maas: bool = False  # kind: use values/kind-maas.yaml (external MaaS) instead of the simulator
    run_name: str = "default"  # local: the run folder under .cache/runs/ (one stack per name)


def get_target(name: str, options: TargetOptions) -> Target:
    """Import lazily so that the local target needs no cluster libraries and vice versa."""
    if name == "local":
        from harness.targets.local import LocalTarget

        return LocalTarget(options)
    if name == "kind":
        from harness.targets.kind import KindTarget

        return KindTarget(options)
    if name == "existing":
        from harness.targets.existing import ExistingTarget

        return ExistingTarget(options)
    raise HarnessError(f"unknown target {name!r}; choose one of {', '.join(TARGET_NAMES)}")
