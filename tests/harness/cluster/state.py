"""What a cluster target remembers between processes (install, then verify/cleanup): no secrets."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from harness.paths import RUNS_DIR


@dataclass
class ClusterState:
    target: str
    context: str
    namespace: str
    release: str
    created_namespace: bool = False
    created_cluster: bool = False
    openshift: bool = False


def state_path(target: str) -> Path:
    return RUNS_DIR / f"{target}-cluster.json"


def run_dir(target: str, namespace: str) -> Path:
    """Where a cluster run's diagnostics go (CI uploads .cache/runs/**/diagnostics*)."""
    path = RUNS_DIR / f"{target}-{namespace}"
    path.mkdir(parents=True, exist_ok=True)
    return path


def load(target: str) -> ClusterState | None:
    path = state_path(target)
    if not path.is_file():
        return None
    return ClusterState(**json.loads(path.read_text()))


def save(state: ClusterState) -> Path:
    path = state_path(state.target)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(asdict(state), indent=2) + "\n")
    return path


def forget(target: str) -> None:
    state_path(target).unlink(missing_ok=True)
