"""Deployment targets: local (embedded processes), kind, existing cluster, kube (a real cluster built here)."""

from __future__ import annotations

from harness.errors import HarnessError
from harness.targets.base import TARGET_NAMES, Target, TargetOptions
from harness.targets.existing import ExistingTarget
from harness.targets.kind import KindTarget
from harness.targets.kube import KubeTarget
from harness.targets.local import LocalTarget

__all__ = ["TARGET_NAMES", "Target", "TargetOptions", "get_target"]


def get_target(name: str, options: TargetOptions) -> Target:
    if name == "local":
        return LocalTarget(options)
    if name == "kind":
        return KindTarget(options)
    if name == "existing":
        return ExistingTarget(options)
    if name == "kube":
        return KubeTarget(options)
    raise HarnessError(f"unknown target {name!r}; choose one of {', '.join(TARGET_NAMES)}")
