"""The kind target: create (or reuse) a named Kind cluster from kind/cluster.yaml and install rag there.

Plan: a Docker or Podman daemon answers -> `kind get clusters` -> `kind create cluster` (only when
absent) -> namespace -> `helm upgrade --install` with values/kind.yaml (+ values/kind-maas.yaml) ->
rollout waits with progress -> port-forwards to the gateway and llama-stack (reconnecting).
`down` uninstalls, deletes the namespace, and deletes the cluster when this target created it.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.cluster import kindconfig, plans, state
from harness.cluster.target import ClusterTarget
from harness.errors import ToolMissing
from harness.paths import values_file

NAMESPACE = "rag-e2e"  # a Kind cluster is disposable: one fixed namespace is enough
ENGINES = ("docker", "podman")  # the node providers kind tries (nerdctl is experimental)
ENGINE_INFO_TIMEOUT = 20.0  # `docker info` answers in well under a second when the daemon runs


class NoContainerEngine(ToolMissing):
    pass


def container_engine_ready() -> bool:
    """True when `docker info` or `podman info` succeeds: kind runs its nodes as containers."""
    for engine in ENGINES:
        path = shutil.which(engine)
        if path is None:
            continue
        try:
            result = subprocess.run([path, "info"], capture_output=True, timeout=ENGINE_INFO_TIMEOUT)
        except subprocess.TimeoutExpired:
            continue
        if result.returncode == 0:
            return True
    return False


class KindTarget(ClusterTarget):
    name = "kind"

    def __init__(
        self,
        options: Any,
        *,
        config: Path = kindconfig.DEFAULT_CONFIG,
        delete_cluster: bool | None = None,
        engine_ready: Callable[[], bool] = container_engine_ready,
        **kwargs: Any,
    ) -> None:
        super().__init__(options, **kwargs)
        self.config = config
        self.engine_ready = engine_ready
        # None: delete the cluster on down() only if this target created it.
        self.delete_cluster = delete_cluster
        self.created_cluster = False

    @property
    def cluster(self) -> str:
        return str(self.options.cluster_name)

    def cluster_exists(self) -> bool:
        result = self.runner.run(plans.kind_get_clusters(), check=False)
        return self.cluster in result.stdout.split()

    def prepare(self) -> str:
        kindconfig.load(self.config)  # fail before kind spends minutes on a bad config
        if not self.dry_run and not self.engine_ready():
            raise NoContainerEngine(
                "Kind needs a running Docker or Podman daemon: start one, or use --target local (no daemon needed)"
            )
        if self.cluster_exists():
            self.say(f"reusing kind cluster {self.cluster}")
        else:
            self.say(f"creating kind cluster {self.cluster} from {plans.rel(self.config)} (takes about a minute)")
            self.runner.run(plans.kind_create_cluster(self.cluster, self.config))
            self.created_cluster = True
        return self.current_context()

    def _created_cluster_flag(self) -> bool:
        return self.created_cluster

    def current_context(self) -> str:
        return plans.kind_context(self.cluster)

    def new_namespace(self) -> str:
        return NAMESPACE

    def default_namespace(self) -> str:
        return NAMESPACE

    def own_values(self) -> list[Path]:
        return [values_file("kind")]

    def use_routes(self) -> bool:
        return False  # Kind has no Routes API; port-forwards always

    def down(self) -> None:
        """Idempotent: a missing cluster, release or namespace is not an error."""
        if not self.cluster_exists():
            self.say(f"kind cluster {self.cluster} does not exist: nothing to clean up")
            state.forget(self.name)
            return
        saved = state.load(self.name)
        namespace = self.options.namespace or (saved.namespace if saved else NAMESPACE)
        deployment = self.deployment(self.current_context(), namespace)
        deployment.close()
        deployment.uninstall(delete_namespace=self._owned(namespace, self.current_context()))
        created = self.created_cluster or bool(saved and saved.created_cluster)
        if self.delete_cluster or (self.delete_cluster is None and created):
            self.say(f"deleting kind cluster {self.cluster}")
            self.runner.run(plans.kind_delete_cluster(self.cluster))
        state.forget(self.name)
