"""The kube target: a real single-node Kubernetes built and started on this machine.

Only cluster creation differs from kind/existing: `prepare()` checks the prerequisites, builds
(or reuses) the Kubernetes and CoreDNS binaries and the images, starts the cluster inside the
`rag-kube` network namespace (or reuses a running one), moves this process into that namespace
and returns the context of a kubeconfig written for it. Everything after that (`helm upgrade
--install`, rollout waits, `helm test`, port-forwards, keys, diagnostics) is ClusterTarget's.
The release namespace enforces PodSecurity `restricted`, as a hardened cluster would.
`down()` uninstalls, then removes every process, mount, namespace and file of the cluster.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from harness.capabilities import Capability
from harness.cluster import plans, state
from harness.cluster.deploy import NAMESPACE_LABEL, ClusterDeployment
from harness.cluster.runner import CommandRunner
from harness.cluster.target import ClusterTarget, NotInstalled
from harness.endpoints import Endpoints
from harness.kube import binaries, lock, netns, prereqs, teardown
from harness.kube.cluster import RUN_DIR, Cluster
from harness.kube.config import CONTEXT
from harness.kube.images import ensure_images
from harness.paths import values_file
from harness.redact import redact

NAMESPACE = "rag-e2e"
CLUSTER_LOG_LINES = 400  # per component log in a diagnostics bundle
POD_SECURITY = ("enforce", "audit", "warn")  # pod-security.kubernetes.io/<mode>=restricted


def restricted_namespace(runner: CommandRunner, ns: str) -> str:
    """Create `ns` (when missing) with PodSecurity `restricted` enforced, audited and warned, and
    the harness's label (so `down` and cleanup find it); returns `ns`."""
    if not runner.run(plans.kubectl_get_namespace(ns, CONTEXT), check=False).stdout.strip():
        runner.run(plans.kubectl_create_namespace(ns, CONTEXT))
    for label in (NAMESPACE_LABEL, *(f"pod-security.kubernetes.io/{mode}=restricted" for mode in POD_SECURITY)):
        runner.run(plans.kubectl_label_namespace(ns, label, CONTEXT))
    return ns


class KubeTarget(ClusterTarget):
    capabilities = ClusterTarget.capabilities | {Capability.MAAS_STANDIN}
    name = "kube"
    helm_tests = True  # a fresh real cluster: prove the chart's own tests pass there too

    def __init__(self, options: Any, *, run_dir: Path = RUN_DIR, **kwargs: Any) -> None:
        super().__init__(options, **kwargs)
        self.cluster = Cluster(run_dir, say=self.say)

    # cluster creation ---------------------------------------------------------------------

    def prepare(self) -> str:
        if self.dry_run:  # `install --dry-run` prints the helm/kubectl plan; it builds and starts nothing
            return CONTEXT
        prereqs.require()
        lock.hold(say=self.say)
        binaries.ensure_binaries(self.say)
        self.cluster.up(self._images())
        self._use_kubeconfig()
        return CONTEXT

    def _images(self) -> list[Path]:
        return ensure_images(say=self.say)

    def _use_kubeconfig(self) -> None:
        """helm and kubectl (children of this process) talk to the lane's cluster only."""
        os.environ["KUBECONFIG"] = str(self.cluster.admin_kubeconfig)

    def current_context(self) -> str:
        if not self.cluster.running():
            raise NotInstalled("the kube cluster is not running: `python -m harness up --target kube`")
        self._use_kubeconfig()
        return CONTEXT

    def _existing_deployment(self) -> ClusterDeployment:
        """A recorded install: first make sure the cluster runs, and enter it (a fresh process
        starts outside the namespace, without the lane's kubeconfig)."""
        self.current_context()
        return super()._existing_deployment()

    def new_namespace(self) -> str:
        """The release namespace, created with PodSecurity `restricted` enforced and the harness's label."""
        return restricted_namespace(self.runner, self.options.namespace or NAMESPACE)

    def default_namespace(self) -> str:
        return NAMESPACE

    def own_values(self) -> list[Path]:
        return [values_file("kind")]

    def use_routes(self) -> bool:
        return False  # no Routes API: port-forwards, from inside the namespace

    def maas_standin_host(self) -> str:
        """Where the stand-in MaaS serves so that llama-stack's pod reaches it: the node address, inside
        the cluster's network namespace (pods reach it through the CNI bridge; nothing outside can)."""
        return netns.NODE_IP

    # Target protocol ----------------------------------------------------------------------

    def up(self) -> Endpoints:
        """Deploy; when the install fails on the cluster, write the diagnostics bundle and name it."""
        try:
            return super().up()
        except Exception as error:
            if self._deployment is not None and self.cluster.running():
                dest = Path(self.run_dir(self._deployment.namespace)) / "diagnostics" / "install"
                error.add_note(f"diagnostics: {self.diagnose(dest)}")
            raise

    def diagnose(self, dest: Path) -> Path:
        """The release's bundle (ClusterDeployment.diagnose) plus the cluster components' logs."""
        path = super().diagnose(dest)
        known = [k for keys in self.deployment().keys().values() for k in keys]
        logs = path / "cluster-logs"
        logs.mkdir(parents=True, exist_ok=True)
        for log in sorted(self.cluster.layout.logs.glob("*.log")):
            tail = log.read_text(errors="replace").splitlines()[-CLUSTER_LOG_LINES:]
            (logs / log.name).write_text(redact("\n".join(tail), known))
        return path

    def down(self) -> None:
        """Uninstall (when the cluster still runs), then tear the whole cluster down. Idempotent."""
        lock.hold(say=self.say)
        saved = state.load(self.name)
        if self.cluster.running():
            self._use_kubeconfig()
            namespace = self.options.namespace or (saved.namespace if saved else NAMESPACE)
            deployment = self.deployment(CONTEXT, namespace)
            deployment.close()
            deployment.uninstall(delete_namespace=False)  # the namespace goes with the cluster
        else:
            self.close()
        self.say(f"tearing down the kube cluster ({self.cluster.layout.run}, netns {netns.NAME})")
        teardown.teardown(self.cluster.layout.run, say=self.say)
        state.forget(self.name)
