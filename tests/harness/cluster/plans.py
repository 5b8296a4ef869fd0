"""Pure command-line builders for kind, helm and kubectl: one function per command, no side effects.

Keeping argv construction here lets unit tests compare whole plans, and keeps flag spelling in
one place (helm 3 and helm 4 accept every flag used below).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from harness.paths import REPO_ROOT

ROLLOUT_KINDS = ("deployment", "statefulset")


def rel(path: Path) -> str:
    """Repository paths are shown (and run, from the repo root) relative: plans read like the README."""
    try:
        return str(Path(path).resolve().relative_to(REPO_ROOT))
    except ValueError:
        return str(path)


def _ctx(context: str) -> list[str]:
    return ["--context", context] if context else []


def _kube_ctx(context: str) -> list[str]:
    return ["--kube-context", context] if context else []


# kind ------------------------------------------------------------------------------------------


def kind_get_clusters() -> list[str]:
    return ["kind", "get", "clusters"]


def kind_create_cluster(name: str, config: Path, wait: str = "120s") -> list[str]:
    return ["kind", "create", "cluster", "--name", name, "--config", rel(config), "--wait", wait]


def kind_delete_cluster(name: str) -> list[str]:
    return ["kind", "delete", "cluster", "--name", name]


def kind_context(name: str) -> str:
    """kind names the kubeconfig context of cluster X `kind-X`."""
    return f"kind-{name}"


# helm ------------------------------------------------------------------------------------------


def helm_upgrade_install(
    release: str, chart: Path, namespace: str, values: Sequence[Path], context: str = ""
) -> list[str]:
    # No --wait: Helm 3 then returns after applying, Helm 4 waits for hooks only; the harness
    # waits for each rollout itself so it can say what it is waiting for.
    argv = ["helm", "upgrade", "--install", release, rel(chart), "-n", namespace, *_kube_ctx(context)]
    for path in values:
        argv += ["-f", rel(path)]
    return argv


def helm_uninstall(release: str, namespace: str, context: str = "") -> list[str]:
    # --ignore-not-found makes cleanup idempotent (helm >= 3.13 and helm 4).
    return ["helm", "uninstall", release, "-n", namespace, *_kube_ctx(context), "--ignore-not-found", "--wait"]


def helm_test(release: str, namespace: str, context: str = "", timeout_s: int = 300) -> list[str]:
    """Run the release's test hooks; --logs prints the test pods' output (on failure too)."""
    return ["helm", "test", release, "-n", namespace, *_kube_ctx(context), f"--timeout={timeout_s}s", "--logs"]


def helm_get_values(release: str, namespace: str, context: str = "", output: str = "yaml") -> list[str]:
    return ["helm", "get", "values", release, "-n", namespace, *_kube_ctx(context), "--all", "-o", output]


def helm_get_manifest(release: str, namespace: str, context: str = "") -> list[str]:
    return ["helm", "get", "manifest", release, "-n", namespace, *_kube_ctx(context)]


def helm_status(release: str, namespace: str, context: str = "") -> list[str]:
    return ["helm", "status", release, "-n", namespace, *_kube_ctx(context), "-o", "json"]


# kubectl ---------------------------------------------------------------------------------------


def kubectl_current_context() -> list[str]:
    return ["kubectl", "config", "current-context"]


def kubectl_get_namespace(namespace: str, context: str = "") -> list[str]:
    return ["kubectl", *_ctx(context), "get", "namespace", namespace, "-o", "name", "--ignore-not-found"]


def kubectl_create_namespace(namespace: str, context: str = "") -> list[str]:
    return ["kubectl", *_ctx(context), "create", "namespace", namespace]


def kubectl_label_namespace(namespace: str, label: str, context: str = "") -> list[str]:
    return ["kubectl", *_ctx(context), "label", "namespace", namespace, label, "--overwrite"]


def kubectl_delete_namespace(namespace: str, context: str = "") -> list[str]:
    return ["kubectl", *_ctx(context), "delete", "namespace", namespace, "--ignore-not-found", "--wait=false"]


def kubectl_apply_stdin(namespace: str, context: str = "") -> list[str]:
    """`kubectl apply` of the manifest given on stdin."""
    return ["kubectl", *_ctx(context), "apply", "-n", namespace, "-f", "-"]


def instance_selector(release: str, component: str = "") -> str:
    selector = f"app.kubernetes.io/instance={release}"
    return f"{selector},app.kubernetes.io/component={component}" if component else selector


def kubectl_get_workloads(namespace: str, release: str, context: str = "", component: str = "") -> list[str]:
    return [
        "kubectl", *_ctx(context), "get", ",".join(ROLLOUT_KINDS), "-n", namespace,
        "-l", instance_selector(release, component), "-o", "json",
    ]  # fmt: skip


def kubectl_scale(workload: str, replicas: int, namespace: str, context: str = "") -> list[str]:
    return ["kubectl", *_ctx(context), "scale", workload, f"--replicas={replicas}", "-n", namespace]


def kubectl_rollout_status(workload: str, namespace: str, timeout_s: int, context: str = "") -> list[str]:
    return ["kubectl", *_ctx(context), "rollout", "status", workload, "-n", namespace, f"--timeout={timeout_s}s"]


def kubectl_get_pods(namespace: str, selector: str, context: str = "") -> list[str]:
    return ["kubectl", *_ctx(context), "get", "pods", "-n", namespace, "-l", selector, "-o", "json"]


def kubectl_get_endpointslices(namespace: str, selector: str, context: str = "") -> list[str]:
    # The EndpointSlice controller copies a Service's labels onto its slices.
    return ["kubectl", *_ctx(context), "get", "endpointslices", "-n", namespace, "-l", selector, "-o", "json"]


def kubectl_get_services(namespace: str, selector: str, context: str = "") -> list[str]:
    return ["kubectl", *_ctx(context), "get", "services", "-n", namespace, "-l", selector, "-o", "json"]


def kubectl_port_forward(
    target: str, local_port: int, remote_port: int, namespace: str, context: str = ""
) -> list[str]:
    return [
        "kubectl", *_ctx(context), "port-forward", "-n", namespace, "--address", "127.0.0.1",
        target, f"{local_port}:{remote_port}",
    ]  # fmt: skip


def kubectl_route_api(context: str = "") -> list[str]:
    return ["kubectl", *_ctx(context), "api-resources", "--api-group=route.openshift.io", "-o", "name"]


def kubectl_get_routes(namespace: str, selector: str, context: str = "") -> list[str]:
    kind = "routes.route.openshift.io"
    return ["kubectl", *_ctx(context), "get", kind, "-n", namespace, "-l", selector, "-o", "json"]


def kubectl_get_nodes(context: str = "") -> list[str]:
    return ["kubectl", *_ctx(context), "get", "nodes", "-o", "json"]


def kubectl_get_secrets(namespace: str, selector: str, context: str = "") -> list[str]:
    return ["kubectl", *_ctx(context), "get", "secrets", "-n", namespace, "-l", selector, "-o", "json"]


def kubectl_get_events(namespace: str, context: str = "") -> list[str]:
    return ["kubectl", *_ctx(context), "get", "events", "-n", namespace, "--sort-by=.lastTimestamp"]


def kubectl_get_all(namespace: str, context: str = "") -> list[str]:
    return ["kubectl", *_ctx(context), "get", "all,pvc,configmaps", "-n", namespace, "-o", "wide"]


def kubectl_describe_pod(pod: str, namespace: str, context: str = "") -> list[str]:
    return ["kubectl", *_ctx(context), "describe", "pod", pod, "-n", namespace]


def kubectl_logs(pod: str, container: str, namespace: str, context: str = "", previous: bool = False) -> list[str]:
    argv = ["kubectl", *_ctx(context), "logs", pod, "-c", container, "-n", namespace, "--timestamps"]
    return argv + ["--previous"] if previous else argv


def kubectl_namespace_owner(namespace: str, context: str = "") -> list[str]:
    """Prints the namespace's managed-by label (empty when absent): the harness deletes only its own."""
    return [
        "kubectl", *_ctx(context), "get", "namespace", namespace, "--ignore-not-found",
        "-o", r"jsonpath={.metadata.labels.app\.kubernetes\.io/managed-by}",
    ]  # fmt: skip


def kubectl_get_secret(name: str, namespace: str, context: str = "") -> list[str]:
    return ["kubectl", *_ctx(context), "get", "secret", name, "-n", namespace, "-o", "json"]
