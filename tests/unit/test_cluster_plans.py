"""The kind and existing targets' command plans: exact helm/kubectl/kind calls, order, waiting policy.

A RecordingRunner stands in for the binaries; a FakeClock stands in for time, so nothing here
sleeps or needs a cluster.
"""

from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest
from harness.cluster import plans, state
from harness.cluster.deploy import ClusterDeployment
from harness.cluster.diagnostics import ClusterDiagnostics
from harness.cluster.portforward import PortForward
from harness.cluster.profile import InstallProfile
from harness.cluster.rollout import RolloutFailed, RolloutWaiter, parse_workloads
from harness.cluster.routes import route_urls
from harness.cluster.runner import CommandResult, RecordingRunner
from harness.cluster.secrets import keys_from_secret_list
from harness.maas import MaasSettings
from harness.redact import MASK, mask_secret_manifest
from harness.targets import TargetOptions
from harness.targets.existing import ExistingTarget
from harness.targets.kind import KindTarget
from harness.waiting import FakeClock, WaitPolicy, WaitTimeout

NS = "rag-e2e"
CTX = "kind-rag-e2e"
KEY_FILE = "free free-user-01 dev-free-01\nfree free-user-02 dev-free-02\npremium premium-user-01 dev-premium-01\n"


@pytest.fixture(autouse=True)
def runs_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Keep target state files out of the repository's .cache."""
    monkeypatch.setattr(state, "RUNS_DIR", tmp_path / "runs")
    return tmp_path / "runs"


def workloads_doc() -> str:
    def item(kind: str, name: str, component: str) -> dict[str, Any]:
        return {"kind": kind, "metadata": {"name": name, "labels": {"app.kubernetes.io/component": component}}}

    # Deliberately out of start order: the waiter sorts by dependency order.
    return json.dumps({"items": [
        item("Deployment", "rag-llama-stack", "llama-stack"),
        item("Deployment", "rag-maas-gateway", "gateway"),
        item("StatefulSet", "rag-pgvector", "pgvector"),
        item("Deployment", "rag-vllm-gpu", "model-server"),
    ]})  # fmt: skip


def services_doc(name: str, port: int) -> str:
    return json.dumps({"items": [{"metadata": {"name": name}, "spec": {"ports": [{"name": "http", "port": port}]}}]})


def keys_secret_doc() -> str:
    data = {"api-keys": base64.b64encode(KEY_FILE.encode()).decode()}
    return json.dumps({"items": [{"kind": "Secret", "metadata": {"name": "rag-maas-gateway-keys"}, "data": data}]})


def cluster_runner(context: str, namespace: str, clusters: str = "", extra: dict | None = None) -> RecordingRunner:
    ctx = ("--context", context) if context else ()
    sel = "app.kubernetes.io/instance=rag"
    responses: dict[tuple[str, ...], Any] = {
        ("kind", "get", "clusters"): CommandResult([], 0, clusters),
        ("kubectl", *ctx, "get", "deployment,statefulset"): CommandResult([], 0, workloads_doc()),
        ("kubectl", *ctx, "get", "services", "-n", namespace, "-l", f"{sel},app.kubernetes.io/component=gateway"):
            CommandResult([], 0, services_doc("rag-maas-gateway", 8080)),
        ("kubectl", *ctx, "get", "services", "-n", namespace, "-l", f"{sel},app.kubernetes.io/component=llama-stack"):
            CommandResult([], 0, services_doc("rag-llama-stack", 8321)),
        ("kubectl", *ctx, "get", "secrets"): CommandResult([], 0, keys_secret_doc()),
        ("helm", "get", "values"): CommandResult([], 0, "{}"),
    }  # fmt: skip
    responses.update(extra or {})
    return RecordingRunner(responses=responses)


class RecordedKind(KindTarget):
    """A KindTarget that keeps the progress lines it says."""

    lines: list[str]


def make_kind(runner: RecordingRunner, clock: FakeClock, **kwargs: Any) -> RecordedKind:
    lines: list[str] = []
    target = RecordedKind(
        TargetOptions(**kwargs.pop("options", {})),
        runner=runner,
        waiter=clock.waiter(),
        say=lines.append,
        deployment_overrides={"probe": lambda port: True, "list_models": lambda url, key: ["simulated-model"]},
        engine_ready=kwargs.pop("engine_ready", lambda: True),
        **kwargs,
    )
    target.lines = lines
    return target


def without_queries(calls: list[list[str]]) -> list[list[str]]:
    """The plan's actions plus the decisive queries, minus the read-only pod/service/secret lookups."""
    skip = {("get", "services"), ("get", "secrets"), ("get", "pods"), ("get", "values")}
    return [c for c in calls if not any(tuple(c[i : i + 2]) in skip for i in range(len(c)))]


def test_kind_up_creates_cluster_installs_waits_and_forwards_in_order() -> None:
    clock = FakeClock()
    runner = cluster_runner(CTX, NS, clusters="other-cluster\n")
    target = make_kind(runner, clock)
    endpoints = target.up()
    try:
        rollout = ["kubectl", "--context", CTX, "rollout", "status"]
        assert without_queries(runner.calls) == [
            ["kind", "get", "clusters"],
            ["kind", "create", "cluster", "--name", "rag-e2e", "--config", "kind/cluster.yaml", "--wait", "120s"],
            ["kubectl", "--context", CTX, "get", "namespace", NS, "-o", "name", "--ignore-not-found"],
            ["kubectl", "--context", CTX, "create", "namespace", NS],
            ["kubectl", "--context", CTX, "label", "namespace", NS, "app.kubernetes.io/managed-by=rag-harness",
             "--overwrite"],
            ["helm", "upgrade", "--install", "rag", "charts/rag", "-n", NS, "--kube-context", CTX,
             "-f", "values/kind.yaml"],
            ["kubectl", "--context", CTX, "get", "deployment,statefulset", "-n", NS,
             "-l", "app.kubernetes.io/instance=rag", "-o", "json"],
            # dependency order, whatever order the API listed them in
            [*rollout, "deployment/rag-vllm-gpu", "-n", NS, "--timeout=30s"],
            [*rollout, "deployment/rag-maas-gateway", "-n", NS, "--timeout=30s"],
            [*rollout, "statefulset/rag-pgvector", "-n", NS, "--timeout=30s"],
            [*rollout, "deployment/rag-llama-stack", "-n", NS, "--timeout=30s"],
            ["kubectl", "--context", CTX, "get", "namespace", NS, "--ignore-not-found",
             "-o", r"jsonpath={.metadata.labels.app\.kubernetes\.io/managed-by}"],
            ["kubectl", "--context", CTX, "port-forward", "-n", NS, "--address", "127.0.0.1",
             "svc/rag-maas-gateway", f"{target.deployment().forwards[0].local_port}:8080"],
            ["kubectl", "--context", CTX, "port-forward", "-n", NS, "--address", "127.0.0.1",
             "svc/rag-llama-stack", f"{target.deployment().forwards[1].local_port}:8321"],
            # the installed manifest, recorded as <run_dir>/rendered.yaml
            ["helm", "get", "manifest", "rag", "-n", NS, "--kube-context", CTX],
        ]  # fmt: skip
        assert endpoints.keys == {"free": ["dev-free-01", "dev-free-02"], "premium": ["dev-premium-01"]}
        assert endpoints.gateway_url.startswith("http://127.0.0.1:")
        assert endpoints.gateway_models == ["simulated-model"]
        assert clock.sleeps == []  # every rollout succeeded at the first check
        assert any(
            "waiting for deployment/rag-vllm-gpu" in line and "serves the model" in line for line in target.lines
        )
        assert "--wait" not in " ".join(c for call in runner.calls if call[:2] == ["helm", "upgrade"] for c in call)
    finally:
        target.close()


def test_kind_reuses_an_existing_cluster() -> None:
    runner = cluster_runner(CTX, NS, clusters="rag-e2e\n")
    target = make_kind(runner, FakeClock())
    target.deploy()
    assert not any(c[:3] == ["kind", "create", "cluster"] for c in runner.calls)
    assert not any(c[:2] == ["helm", "dependency"] for c in runner.calls)  # symlinked subcharts: nothing to build
    assert state.load("kind") is not None and state.load("kind").created_cluster is False  # type: ignore[union-attr]


def test_kind_maas_lane_key_goes_through_stdin_never_argv(tmp_path: Path) -> None:
    secret = "sk-maas-secret-value-42"
    maas = MaasSettings(endpoint="https://maas.example.com/v1", api_key=secret, model="llama-3")
    runner = cluster_runner(CTX, NS, clusters="rag-e2e\n")
    target = make_kind(runner, FakeClock(), maas=maas)
    deployment = target.deploy()
    try:
        assert not any(secret in arg for call in runner.calls for arg in call)
        apply = runner.calls.index(["kubectl", "--context", CTX, "apply", "-n", NS, "-f", "-"])
        assert secret in (runner.inputs[apply] or "")
        upgrade = next(c for c in runner.calls if c[:2] == ["helm", "upgrade"])
        files = [upgrade[i + 1] for i, arg in enumerate(upgrade) if arg == "-f"]
        assert files[:2] == ["values/kind.yaml", "values/kind-maas.yaml"]
        generated = Path(files[2])
        assert stat.S_IMODE(generated.stat().st_mode) == 0o600
        assert stat.S_IMODE(generated.parent.stat().st_mode) == 0o700
        assert "https://maas.example.com/v1" in generated.read_text() and secret not in generated.read_text()
        assert apply < runner.calls.index(upgrade)  # the Secret exists before the chart references it
    finally:
        deployment.close()
    assert not generated.exists()  # private files are removed on close


def test_existing_on_openshift_uses_routes_and_a_namespace_per_run() -> None:
    ctx = "admin/api-ocp-example-com:6443"
    ns = "rag-e2e-abc123"
    routes_doc = json.dumps({"items": [
        {"metadata": {"labels": {"app.kubernetes.io/component": "gateway"}},
         "spec": {"host": "gw-rag.apps.ocp.example.com", "tls": {"termination": "edge"}}},
        {"metadata": {"labels": {"app.kubernetes.io/component": "llama-stack"}},
         "spec": {"host": "ls-rag.apps.ocp.example.com", "tls": {"termination": "edge"}}},
    ]})  # fmt: skip
    runner = cluster_runner(ctx, ns, extra={
        ("kubectl", "config", "current-context"): CommandResult([], 0, ctx + "\n"),
        ("kubectl", "--context", ctx, "api-resources"): CommandResult([], 0, "routes.route.openshift.io\n"),
        ("kubectl", "--context", ctx, "get", "routes.route.openshift.io"): CommandResult([], 0, routes_doc),
    })  # fmt: skip
    target = ExistingTarget(
        TargetOptions(), runner=runner, waiter=FakeClock().waiter(), say=lambda _: None, run_id=lambda: "abc123",
        deployment_overrides={"list_models": lambda url, key: []},
    )  # fmt: skip
    endpoints = target.up()
    calls = without_queries(runner.calls)
    assert calls[:2] == [
        ["kubectl", "config", "current-context"],
        ["kubectl", "--context", ctx, "api-resources", "--api-group=route.openshift.io", "-o", "name"],
    ]
    upgrade = next(c for c in calls if c[:2] == ["helm", "upgrade"])
    assert upgrade == ["helm", "upgrade", "--install", "rag", "charts/rag", "-n", ns, "--kube-context", ctx,
                       "-f", "values/kind.yaml", "-f", "values/openshift.yaml"]  # fmt: skip
    assert ["kubectl", "--context", ctx, "create", "namespace", ns] in calls
    assert not any("port-forward" in c for c in runner.calls)  # Routes, not port-forwards
    assert endpoints.gateway_url == "https://gw-rag.apps.ocp.example.com"
    assert endpoints.llama_stack_url == "https://ls-rag.apps.ocp.example.com"
    saved = state.load("existing")
    assert saved is not None and (saved.namespace, saved.context, saved.openshift) == (ns, ctx, True)


def test_existing_given_namespace_is_used_and_not_deleted_when_not_ours() -> None:
    ctx = "dev"
    runner = cluster_runner(ctx, "team-rag", extra={
        ("kubectl", "config", "current-context"): CommandResult([], 0, "dev\n"),
        ("kubectl", "--context", "dev", "get", "namespace", "team-rag", "-o", "name"):
            CommandResult([], 0, "namespace/team-rag\n"),
        ("kubectl", "--context", "dev", "api-resources"): CommandResult([], 0, ""),
    })  # fmt: skip
    target = ExistingTarget(
        TargetOptions(namespace="team-rag"), runner=runner, waiter=FakeClock().waiter(), say=lambda _: None,
        profile=InstallProfile(simulator=True),
    )  # fmt: skip
    target.deploy()
    assert not any(c[2:4] == ["create", "namespace"] for c in runner.calls)
    upgrade = next(c for c in runner.calls if c[:2] == ["helm", "upgrade"])
    assert upgrade[:10] == ["helm", "upgrade", "--install", "rag", "charts/rag", "-n", "team-rag", "--kube-context",
                            "dev", "-f"]  # fmt: skip
    assert "values/kind.yaml" not in upgrade  # install profile: chart defaults + flags, not the e2e overlay
    runner.calls.clear()
    target.down()
    assert runner.calls == [
        ["kubectl", "--context", "dev", "get", "namespace", "team-rag", "--ignore-not-found",
         "-o", r"jsonpath={.metadata.labels.app\.kubernetes\.io/managed-by}"],
        ["helm", "uninstall", "rag", "-n", "team-rag", "--kube-context", "dev", "--ignore-not-found", "--wait"],
    ]  # fmt: skip


def test_existing_down_is_idempotent_without_anything_recorded() -> None:
    runner = RecordingRunner()
    target = ExistingTarget(TargetOptions(), runner=runner, say=lambda _: None)
    target.down()
    target.down()
    assert runner.calls == []


def test_kind_down_deletes_owned_namespace_and_the_cluster_it_created() -> None:
    owner = ("kubectl", "--context", CTX, "get", "namespace", NS, "--ignore-not-found")
    runner = cluster_runner(CTX, NS, extra={owner: CommandResult([], 0, "rag-harness")})
    target = make_kind(runner, FakeClock())
    target.deploy()  # creates the cluster (none listed)
    runner.responses[("kind", "get", "clusters")] = CommandResult([], 0, "rag-e2e\n")
    runner.calls.clear()
    target.down()
    assert runner.calls == [
        ["kind", "get", "clusters"],
        [*owner, "-o", r"jsonpath={.metadata.labels.app\.kubernetes\.io/managed-by}"],
        ["helm", "uninstall", "rag", "-n", NS, "--kube-context", CTX, "--ignore-not-found", "--wait"],
        ["kubectl", "--context", CTX, "delete", "namespace", NS, "--ignore-not-found", "--wait=false"],
        ["kind", "delete", "cluster", "--name", "rag-e2e"],
    ]
    # second cleanup: the cluster is gone, which is success, not an error
    runner.responses[("kind", "get", "clusters")] = CommandResult([], 0, "")
    runner.calls.clear()
    target.down()
    assert runner.calls == [["kind", "get", "clusters"]]


def test_kind_down_keeps_a_cluster_it_did_not_create() -> None:
    runner = cluster_runner(CTX, NS, clusters="rag-e2e\n")
    target = make_kind(runner, FakeClock())
    target.down()
    assert not any(c[:3] == ["kind", "delete", "cluster"] for c in runner.calls)
    assert any(c[:2] == ["helm", "uninstall"] for c in runner.calls)


# waiting policy ---------------------------------------------------------------------------------


def rollout_runner(failures: int, pods: dict | None = None) -> RecordingRunner:
    """`rollout status` fails `failures` times, then succeeds."""
    count = {"n": 0}

    def rollout(argv: list[str]) -> CommandResult:
        count["n"] += 1
        return CommandResult(argv, 1 if count["n"] <= failures else 0, "", "timed out waiting for the condition")

    pods_doc = json.dumps(pods or {"items": [{"metadata": {"name": "rag-llama-stack-7d9f"}, "status": {
        "phase": "Pending", "conditions": [{"type": "Ready", "status": "False"}],
        "containerStatuses": [{"name": "llama-stack", "restartCount": 2,
                               "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]}}]})  # fmt: skip
    one = json.dumps(
        {
            "items": [
                {
                    "kind": "Deployment",
                    "metadata": {"name": "rag-llama-stack", "labels": {"app.kubernetes.io/component": "llama-stack"}},
                }
            ]
        }
    )
    return RecordingRunner(responses={
        ("kubectl", "get", "deployment,statefulset"): CommandResult([], 0, one),
        ("kubectl", "rollout", "status"): rollout,
        ("kubectl", "get", "pods"): CommandResult([], 0, pods_doc),
    })  # fmt: skip


def test_rollout_retries_with_capped_exponential_backoff_and_explains_the_wait() -> None:
    clock = FakeClock()
    lines: list[str] = []
    runner = rollout_runner(failures=6)
    waiter = RolloutWaiter(
        runner, clock.waiter(), NS, "rag", policy=WaitPolicy(900, initial=2, cap=15), say=lines.append
    )
    waiter.wait_all()
    assert clock.sleeps == [2, 4, 8, 15, 15, 15]  # wait_exponential capped at 15 s, on the fake clock
    assert sum(1 for c in runner.calls if c[1:3] == ["rollout", "status"]) == 7
    progress = [line for line in lines if "still waiting for deployment/rag-llama-stack" in line]
    assert len(progress) == 6 and "llama-stack CrashLoopBackOff" in progress[0] and "restarted 2x" in progress[0]
    assert "registers the models" in lines[0]


def test_rollout_gives_up_at_the_policy_timeout_without_real_sleeping() -> None:
    clock = FakeClock()
    waiter = RolloutWaiter(rollout_runner(failures=10_000), clock.waiter(), NS, "rag",
                           policy=WaitPolicy(300, initial=2, cap=15), say=lambda _: None)  # fmt: skip
    with pytest.raises(WaitTimeout, match="deployment/rag-llama-stack"):
        waiter.wait_all()
    assert 300 <= clock.now <= 315


def test_rollout_fails_fast_on_a_reason_that_cannot_heal() -> None:
    pods = {
        "items": [
            {
                "metadata": {"name": "rag-llama-stack-1"},
                "status": {
                    "phase": "Pending",
                    "containerStatuses": [
                        {"name": "llama-stack", "state": {"waiting": {"reason": "CreateContainerConfigError"}}}
                    ],
                },
            }
        ]
    }
    clock = FakeClock()
    waiter = RolloutWaiter(rollout_runner(failures=10, pods=pods), clock.waiter(), NS, "rag", say=lambda _: None)
    with pytest.raises(RolloutFailed, match="CreateContainerConfigError"):
        waiter.wait_all()
    assert clock.sleeps == []


def test_parse_workloads_orders_by_dependency() -> None:
    assert [w.component for w in parse_workloads(workloads_doc())] == [
        "model-server",
        "gateway",
        "pgvector",
        "llama-stack",
    ]


# port-forward, routes, keys, diagnostics --------------------------------------------------------


def test_port_forward_reconnects_when_kubectl_exits() -> None:
    runner = RecordingRunner()
    pf = PortForward(runner, "svc/rag-maas-gateway", 8080, NS, CTX, local_port=18080)
    pf.start()
    assert pf.check() is False  # alive: nothing to do
    runner.started[-1].exit(1)  # connection to the pod lost
    assert pf.check() is True
    expected = ["kubectl", "--context", CTX, "port-forward", "-n", NS, "--address", "127.0.0.1",
                "svc/rag-maas-gateway", "18080:8080"]  # fmt: skip
    assert runner.calls == [expected, expected]  # same local port: the URL the tests hold stays valid
    pf.stop()
    runner.started[-1].exit(1)
    assert pf.check() is False  # stopped forwards stay stopped


def test_a_pod_port_forward_follows_its_components_rollout() -> None:
    """kubectl keeps forwarding to the pod it picked; once a rollout replaced that pod, each
    connection through the forward is dropped unanswered. The gateway's readiness port is
    forwarded per pod, so reconnecting the gateway restarts that forward too."""
    gateway = {
        "kind": "Deployment",
        "metadata": {"name": "rag-maas-gateway", "labels": {"app.kubernetes.io/component": "gateway"}},
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {
                            "name": "envoy",
                            "ports": [
                                {"name": "http", "containerPort": 8080},
                                {"name": "health", "containerPort": 8090},
                            ],
                        }
                    ]
                }
            }
        },
    }
    runner = cluster_runner(CTX, NS, clusters="rag-e2e\n", extra={
        ("helm", "get", "manifest"): CommandResult([], 0, json.dumps(gateway))})  # fmt: skip
    target = make_kind(runner, FakeClock())
    deployment = target.deploy()
    try:
        health = deployment.forward_pod_port("gateway", "health")
        assert health is not None and deployment.forward_pod_port("gateway", "health") is health
        forward = ["kubectl", "--context", CTX, "port-forward", "-n", NS, "--address", "127.0.0.1",
                   "deploy/rag-maas-gateway", f"{health.local_port}:8090"]  # fmt: skip
        assert runner.calls.count(forward) == 1
        deployment.reconnect({"llama-stack"})
        assert runner.calls.count(forward) == 1  # another component's rollout leaves it alone
        deployment.reconnect({"gateway"})
        assert runner.calls.count(forward) == 2  # same local port: the URL the tests hold stays valid
    finally:
        deployment.close()


def test_route_urls_use_https_for_tls_routes() -> None:
    doc = json.dumps({"items": [
        {"metadata": {"labels": {"app.kubernetes.io/component": "gateway"}}, "spec": {"host": "gw.apps.x"}},
        {"metadata": {"labels": {"app.kubernetes.io/component": "llama-stack"}},
         "spec": {"host": "ls.apps.x", "tls": {"termination": "edge"}}},
    ]})  # fmt: skip
    assert route_urls(doc) == {"gateway": "http://gw.apps.x", "llama-stack": "https://ls.apps.x"}


def test_keys_from_the_gateway_secret() -> None:
    assert keys_from_secret_list(keys_secret_doc()) == {
        "free": ["dev-free-01", "dev-free-02"],
        "premium": ["dev-premium-01"],
    }


def test_diagnostics_collect_everything_with_secrets_redacted(tmp_path: Path) -> None:
    pods = {"items": [
        {"metadata": {"name": "rag-llama-stack-1"},
         "spec": {"initContainers": [{"name": "wait"}], "containers": [{"name": "llama-stack"}]},
         "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "False"}],
                    "containerStatuses": [{"name": "llama-stack", "restartCount": 3}]}},
        {"metadata": {"name": "rag-redis-0"}, "spec": {"containers": [{"name": "redis"}]},
         "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}},
    ]}  # fmt: skip
    manifest = "apiVersion: v1\nkind: Secret\nmetadata: {name: keys}\ndata:\n  api-keys: ZnJlZSB1IGs=\n"
    runner = RecordingRunner(responses={
        ("kubectl", "get", "pods"): CommandResult([], 0, json.dumps(pods)),
        ("helm", "get", "manifest"): CommandResult([], 0, manifest),
        ("helm", "get", "values"): CommandResult([], 0, "global:\n  models:\n    maas:\n      apiToken: sk-live-1\n"),
        ("kubectl", "logs"): CommandResult([], 0, "request with Authorization: Bearer dev-free-01 ok\n"),
    })  # fmt: skip
    dest = ClusterDiagnostics(runner, NS, "rag", "", secrets=["dev-free-01"]).collect(tmp_path / "diag")
    files = {p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file()}
    assert {"events.txt", "overview.txt", "helm-values.yaml", "manifest.yaml",
            "pods/rag-llama-stack-1.describe.txt", "pods/rag-llama-stack-1.wait.log",
            "pods/rag-llama-stack-1.llama-stack.log", "pods/rag-llama-stack-1.llama-stack.previous.log",
            "pods/rag-redis-0.redis.log"} <= files  # fmt: skip
    assert "pods/rag-redis-0.describe.txt" not in files  # healthy pods are not described
    text = "".join(p.read_text() for p in dest.rglob("*") if p.is_file())
    assert "dev-free-01" not in text and "sk-live-1" not in text and "ZnJlZSB1IGs=" not in text
    assert MASK in (dest / "manifest.yaml").read_text()


def test_mask_secret_data_keeps_other_objects() -> None:
    text = mask_secret_manifest("kind: ConfigMap\ndata: {a: b}\n---\nkind: Secret\nstringData: {token: abc}\n")
    assert "a: b" in text and "abc" not in text


def test_private_values_file_is_0600(tmp_path: Path) -> None:
    deployment = ClusterDeployment(RecordingRunner(), FakeClock().waiter(), NS, CTX)
    path = deployment.private_values("x.yaml", {"global": {"models": {"m": {"apiToken": "t"}}}})
    try:
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    finally:
        deployment.close()


def test_plans_keep_repository_paths_relative() -> None:
    from harness.paths import REPO_ROOT

    assert plans.helm_upgrade_install("rag", REPO_ROOT / "charts/rag", "ns", [Path("/etc/x.yaml")]) == [
        "helm", "upgrade", "--install", "rag", "charts/rag", "-n", "ns", "-f", "/etc/x.yaml"
    ]  # fmt: skip


def test_repository_kind_config_loads(tmp_path: Path) -> None:
    from harness.cluster import kindconfig

    config = kindconfig.load()
    assert config.roles == ["control-plane"]
    bad = tmp_path / "cluster.yaml"
    bad.write_text("kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnodes:\n  - role: worker\n")
    with pytest.raises(kindconfig.KindConfigError, match="control-plane"):
        kindconfig.load(bad)


def test_cluster_registration_keeps_what_the_release_applied() -> None:
    """`helm upgrade` does not reuse the release's values: the models file it gets must carry every
    model earlier registrations applied (read back with `helm get values`), plus the change."""
    import yaml
    from harness import registration as reg

    applied = {"global": {"models": {"maas-session": {"id": "meta-llama/Llama-3.2-3B-Instruct", "url": "u"}}}}
    runner = rollout_runner(failures=0)
    runner.responses[("helm", "get", "values")] = CommandResult([], stdout=json.dumps(applied))
    deployment = ClusterDeployment(runner, FakeClock().waiter(), NS, "")
    try:
        assert deployment.applied_models() == applied["global"]["models"]
        extra = reg.ModelSpec("e2e-extra", "granite", "https://maas.example/v1")
        deployment.apply_models([], reg.merge_models(deployment.applied_models(), {extra.key: extra}))
        upgrade = next(c for c in runner.calls if c[:2] == ["helm", "upgrade"])
        models_file = Path(upgrade[-1])
        models = yaml.safe_load(models_file.read_text())["global"]["models"]
        assert set(models) == {"maas-session", "e2e-extra"}, f"the upgrade dropped a model: {models}"
    finally:
        deployment.close()
