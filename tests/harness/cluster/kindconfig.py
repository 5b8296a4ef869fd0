"""The Kind cluster config kept in the repository (kind/cluster.yaml): load and sanity-check it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from harness.errors import ClusterError
from harness.paths import REPO_ROOT

DEFAULT_CONFIG = REPO_ROOT / "kind" / "cluster.yaml"
API_VERSION = "kind.x-k8s.io/v1alpha4"


class KindConfigError(ClusterError, ValueError):
    pass


@dataclass(frozen=True)
class KindConfig:
    path: Path
    nodes: list[dict[str, Any]]

    @property
    def roles(self) -> list[str]:
        return [str(node.get("role", "")) for node in self.nodes]


def load(path: Path = DEFAULT_CONFIG) -> KindConfig:
    """Parse the config and reject what `kind create cluster` would reject late (after pulling images)."""
    if not path.is_file():
        raise KindConfigError(f"kind config {path} not found")
    doc = yaml.safe_load(path.read_text()) or {}
    if doc.get("kind") != "Cluster" or doc.get("apiVersion") != API_VERSION:
        raise KindConfigError(f"{path}: expected kind: Cluster, apiVersion: {API_VERSION}")
    nodes = doc.get("nodes") or [{"role": "control-plane"}]
    if not any(node.get("role") == "control-plane" for node in nodes):
        raise KindConfigError(f"{path}: needs at least one control-plane node")
    return KindConfig(path=path, nodes=nodes)
