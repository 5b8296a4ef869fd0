"""Cluster targets give the e2e suite what the local target gives it: the rendered manifests, the
gateway URL llama-stack sees, a PostgreSQL connection, and stopping/starting components.

Every plan runs against a RecordingRunner: no binary, no cluster.
"""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from harness.cluster import state
from harness.cluster.components import UnknownComponent
from harness.cluster.portforward import PortForward
from harness.cluster.runner import CommandResult, RecordingRunner
from harness.redact import MASK
from harness.targets import TargetOptions
from harness.targets.kind import KindTarget
from harness.waiting import FakeClock

NS = "rag-e2e"
CTX = "kind-rag-e2e"
SEL = "app.kubernetes.io/instance=rag"
GATEWAY_KEY = "dev-enterprise-01-59996229"
PG_PASSWORD = "pg-Secret-Value-42"
MANIFEST = f"""---
# Source: rag/charts/maas-gateway/templates/secret-api-keys.yaml
apiVersion: v1
kind: Secret
metadata: {{name: rag-maas-gateway-keys}}
data:
  api-keys: {base64.b64encode(f"enterprise u {GATEWAY_KEY}".encode()).decode()}
---
apiVersion: v1
kind: ConfigMap
metadata: {{name: rag-maas-gateway-envoy}}
data:
  note: "a key that leaked into a ConfigMap: {GATEWAY_KEY}"
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: rag-embeddings}}
spec:
  template:
    spec:
      containers:
        - name: embeddings
          image: ghcr.io/huggingface/text-embeddings-inference:cpu-1.8
          args: ["--pooling=mean", "--default-prompt=query: "]
"""


@pytest.fixture(autouse=True)
def runs_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(state, "RUNS_DIR", tmp_path / "runs")
    return tmp_path / "runs"


def items(*objects: dict[str, Any]) -> str:
    return json.dumps({"items": list(objects)})


def service(name: str, port: int) -> dict[str, Any]:
    return {"metadata": {"name": name}, "spec": {"ports": [{"name": "http", "port": port}]}}


def workload(kind: str, name: str, component: str, replicas: int = 1) -> dict[str, Any]:
    labels = {"app.kubernetes.io/component": component}
    return {"kind": kind, "metadata": {"name": name, "labels": labels}, "spec": {"replicas": replicas}}


def secret(name: str, **data: str) -> dict[str, Any]:
    encoded = {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}
    return {"kind": "Secret", "metadata": {"name": name}, "data": encoded}


def component_selector(component: str) -> str:
    return f"{SEL},app.kubernetes.io/component={component}"


def runner_for(extra: dict[tuple[str, ...], Any] | None = None) -> RecordingRunner:
    kubectl = ("kubectl", "--context", CTX)
    responses: dict[tuple[str, ...], Any] = {
        ("kind", "get", "clusters"): CommandResult([], 0, "rag-e2e\n"),
        (*kubectl, "get", "deployment,statefulset"): CommandResult([], 0, items(
            workload("Deployment", "rag-maas-gateway", "gateway"),
            workload("Deployment", "rag-llama-stack", "llama-stack"),
        )),
        (*kubectl, "get", "services", "-n", NS, "-l", component_selector("gateway")):
            CommandResult([], 0, items(service("rag-maas-gateway", 8080))),
        (*kubectl, "get", "services", "-n", NS, "-l", component_selector("llama-stack")):
            CommandResult([], 0, items(service("rag-llama-stack", 8321))),
        (*kubectl, "get", "services", "-n", NS, "-l", component_selector("pgvector")):
            CommandResult([], 0, items(service("rag-pgvector", 5432))),
        (*kubectl, "get", "secrets", "-n", NS, "-l", component_selector("gateway")): CommandResult([], 0, items(
            secret("rag-maas-gateway-keys", **{"api-keys": f"enterprise u {GATEWAY_KEY}\n"})
        )),
        (*kubectl, "get", "secrets", "-n", NS, "-l", component_selector("pgvector")):
            CommandResult([], 0, items(secret("rag-pgvector", password=PG_PASSWORD))),
        ("helm", "get", "values"): CommandResult([], 0, json.dumps(
            {"pgvector": {"user": "llamastack", "database": "llamastack", "auth": {"secretKey": "password"}}}
        )),
        ("helm", "get", "manifest"): CommandResult([], 0, MANIFEST),
    }  # fmt: skip
    responses.update(extra or {})
    return RecordingRunner(responses=responses)


def kind(runner: RecordingRunner) -> KindTarget:
    return KindTarget(
        TargetOptions(),
        runner=runner,
        waiter=FakeClock().waiter(),
        say=lambda line: None,
        deployment_overrides={"probe": lambda port: True, "list_models": lambda url, key: ["simulated-model"]},
        engine_ready=lambda: True,
    )


def helm_upgrades(runner: RecordingRunner) -> list[list[str]]:
    return [c for c in runner.calls if c[:2] == ["helm", "upgrade"]]


def values_files(argv: list[str]) -> list[str]:
    return [Path(argv[i + 1]).name for i, arg in enumerate(argv) if arg == "-f"]


# 1. rendered manifests -------------------------------------------------------------------------


def test_up_records_the_release_manifest_in_the_run_folder_with_secrets_masked() -> None:
    target = kind(runner_for())
    try:
        endpoints = target.up()
        rendered = Path(endpoints.run_dir) / "rendered.yaml"
        text = rendered.read_text()
    finally:
        target.close()
    assert "--default-prompt=query: " in text, "the TEI Deployment's args are not in the recorded manifest"
    assert base64.b64encode(f"enterprise u {GATEWAY_KEY}".encode()).decode() not in text, "Secret data unmasked"
    assert GATEWAY_KEY not in text, "a known gateway key reached rendered.yaml"
    assert MASK in text
    # Parsed as test_embeddings reads it: only the Deployment (redacted values are bare ****).
    (doc,) = [d for d in re.split(r"^---\s*$", text, flags=re.M) if "kind: Deployment" in d]
    assert yaml.safe_load(doc)["spec"]["template"]["spec"]["containers"][0]["args"][0] == "--pooling=mean"


def test_rendered_objects_are_the_installed_manifest_with_secret_data_masked() -> None:
    target = kind(runner_for())
    target.deploy()
    objects = target.rendered_objects()
    assert [o["kind"] for o in objects] == ["Secret", "ConfigMap", "Deployment"]
    assert objects[0]["data"] == {"api-keys": MASK}


# 2. the gateway as llama-stack sees it ---------------------------------------------------------


def test_endpoints_name_the_gateway_service_llama_stack_reaches() -> None:
    target = kind(runner_for())
    try:
        endpoints = target.up()
    finally:
        target.close()
    assert endpoints.in_cluster_gateway_url == "http://rag-maas-gateway:8080"
    assert endpoints.gateway_url.startswith("http://127.0.0.1:")


# 3. PostgreSQL ---------------------------------------------------------------------------------


def test_postgres_dsn_forwards_to_the_pgvector_service_and_reads_the_password_from_its_secret() -> None:
    runner = runner_for()
    target = kind(runner)
    target.deploy()
    try:
        dsn = target.postgres_dsn()
        forward = next(c for c in runner.calls if "port-forward" in c and "svc/rag-pgvector" in c)
        assert forward[-1] == f"{dsn.port}:5432"
        login = ("127.0.0.1", "llamastack", "llamastack", PG_PASSWORD)
        assert (dsn.host, dsn.user, dsn.database, dsn.password) == login
        assert target.postgres_dsn().port == dsn.port, "a second call opened another forward"
        argv = " ".join(arg for call in runner.calls for arg in call)
        assert PG_PASSWORD not in argv, "the password reached a command line"
    finally:
        target.close()


def test_postgres_dsn_reads_an_existing_secret_when_the_values_name_one() -> None:
    values = {"pgvector": {"user": "u", "database": "d", "auth": {"existingSecret": "pg-creds", "secretKey": "pw"}}}
    runner = runner_for({
        ("helm", "get", "values"): CommandResult([], 0, json.dumps(values)),
        ("kubectl", "--context", CTX, "get", "secret", "pg-creds"): CommandResult([], 0, json.dumps(
            secret("pg-creds", pw="from-existing")
        )),
    })  # fmt: skip
    target = kind(runner)
    target.deploy()
    try:
        assert target.postgres_dsn().password == "from-existing"
    finally:
        target.close()


def test_postgres_dsn_fails_naming_the_secret_when_it_has_no_password() -> None:
    secrets = ("kubectl", "--context", CTX, "get", "secrets", "-n", NS, "-l", component_selector("pgvector"))
    runner = runner_for({secrets: CommandResult([], 0, items())})
    target = kind(runner)
    target.deploy()
    try:
        with pytest.raises(KeyError, match="no 'password'"):
            target.postgres_dsn()
    finally:
        target.close()


# 4. faults -------------------------------------------------------------------------------------


def fault_runner(pods_left: list[str]) -> RecordingRunner:
    """Redis pods: listed while `pods_left` has entries (one popped per query), then none."""
    kubectl = ("kubectl", "--context", CTX)

    def pods(_argv: list[str]) -> CommandResult:
        names = [pods_left.pop(0)] if pods_left else []
        doc = items(*({"metadata": {"name": n}, "spec": {"containers": [{"name": "redis"}]}} for n in names))
        return CommandResult([], 0, doc)

    redis = workload("Deployment", "rag-maas-gateway-redis", "redis", replicas=2)
    return runner_for({
        (*kubectl, "get", "deployment,statefulset"): CommandResult([], 0, items(
            redis, workload("Deployment", "rag-maas-gateway", "gateway")
        )),
        (*kubectl, "get", "deployment,statefulset", "-n", NS, "-l", component_selector("redis")):
            CommandResult([], 0, items(redis)),
        (*kubectl, "get", "pods", "-n", NS, "-l", component_selector("redis")): pods,
    })  # fmt: skip


def test_stop_scales_to_zero_and_waits_for_the_pods_then_start_restores_the_replicas() -> None:
    runner = fault_runner(["rag-maas-gateway-redis-1", "rag-maas-gateway-redis-1"])
    target = kind(runner)
    target.deploy()
    runner.calls.clear()
    target.stop_component("redis")
    scale = ["kubectl", "--context", CTX, "scale", "deployment/rag-maas-gateway-redis"]
    assert [*scale, "--replicas=0", "-n", NS] in runner.calls
    pod_queries = [c for c in runner.calls if c[3:5] == ["get", "pods"]]
    assert len(pod_queries) == 3, "stop returned before the pods were gone"
    runner.calls.clear()
    target.start_component("redis")
    assert runner.calls[0] == [*scale, "--replicas=2", "-n", NS]
    rollouts = [c for c in runner.calls if c[3:5] == ["rollout", "status"]]
    assert rollouts == [["kubectl", "--context", CTX, "rollout", "status", "deployment/rag-maas-gateway-redis",
                         "-n", NS, "--timeout=30s"]]  # fmt: skip


def test_stopping_a_component_the_release_lacks_names_it() -> None:
    workloads = ("kubectl", "--context", CTX, "get", "deployment,statefulset")
    absent = (*workloads, "-n", NS, "-l", component_selector("vectordb"))
    target = kind(runner_for({absent: CommandResult([], 0, items())}))
    target.deploy()
    with pytest.raises(UnknownComponent, match="'vectordb'"):
        target.stop_component("vectordb")


def test_component_log_joins_every_container_log_of_its_pods() -> None:
    runner = fault_runner(["rag-maas-gateway-redis-0"])
    runner.responses[("kubectl", "--context", CTX, "logs")] = CommandResult([], 0, "ready to accept connections\n")
    target = kind(runner)
    target.deploy()
    assert target.component_log("redis") == "ready to accept connections\n"
    assert ["kubectl", "--context", CTX, "logs", "rag-maas-gateway-redis-0", "-c", "redis", "-n", NS,
            "--timestamps"] in runner.calls  # fmt: skip


def test_override_values_upgrade_with_the_overrides_last_and_none_removes_them() -> None:
    runner = runner_for()
    target = kind(runner)
    target.deploy()
    try:
        target.apply_models({"extra": {"id": "m", "url": "http://x/v1"}})
        target.override_values({"maas-gateway": {"failureMode": "open"}}, restart="gateway")
        with_overrides = helm_upgrades(runner)[-1]
        assert values_files(with_overrides) == ["kind.yaml", "models.yaml", "overrides.yaml"]
        assert yaml.safe_load(Path(with_overrides[-1]).read_text()) == {"maas-gateway": {"failureMode": "open"}}
        gateway_rollouts = [c for c in runner.calls if c[3:5] == ["rollout", "status"] and "gateway" in c[5]]
        assert gateway_rollouts, "override_values did not wait for the gateway"
        target.override_values(None, restart="gateway")
        assert values_files(helm_upgrades(runner)[-1]) == ["kind.yaml", "models.yaml"], "the overrides stayed"
    finally:
        target.close()


def test_override_values_keeps_the_models_an_earlier_process_registered() -> None:
    applied = {"global": {"models": {"e2e-extra": {"id": "m", "url": "http://x/v1"}}}}
    runner = runner_for({("helm", "get", "values"): CommandResult([], 0, json.dumps(applied))})
    target = kind(runner)
    target.deploy()
    try:
        target.override_values({"maas-gateway": {"failureMode": "open"}}, restart="gateway")
        upgrade = helm_upgrades(runner)[-1]
        models = next(Path(upgrade[i + 1]) for i, a in enumerate(upgrade) if a == "-f" and "models" in upgrade[i + 1])
        assert yaml.safe_load(models.read_text()) == applied, "the upgrade dropped a registered model"
    finally:
        target.close()


def test_a_model_ca_bundle_ships_as_a_configmap_and_is_mounted_on_every_upgrade(tmp_path: Path) -> None:
    from harness.cluster import model_ca

    pem = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
    bundle = tmp_path / "ca.pem"
    bundle.write_bytes(pem)
    runner = runner_for()
    target = kind(runner)
    target.deploy()
    try:
        path = target.model_ca_path(str(bundle))
        name = model_ca.configmap_name(pem)
        assert path == model_ca.in_container_path(name)
        apply_at = next(i for i, call in enumerate(runner.calls) if "apply" in call and call[-2:] == ["-f", "-"])
        applied = runner.inputs[apply_at]
        assert applied is not None, "kubectl apply -f - was given no manifest on stdin"
        configmap = json.loads(applied)
        assert (configmap["kind"], configmap["metadata"]["name"], configmap["data"]) == (
            "ConfigMap", name, {"ca.pem": pem.decode()},
        )  # fmt: skip
        target.apply_models({"private": {"id": "m", "url": "https://x/v1", "tlsVerify": path}})
        upgrade = helm_upgrades(runner)[-1]
        assert values_files(upgrade) == ["kind.yaml", "models.yaml", "model-ca.yaml"]
        mounts = yaml.safe_load(next(Path(a) for a in upgrade if a.endswith("model-ca.yaml")).read_text())
        assert mounts["llama-stack"]["extraVolumes"] == [{"name": name, "configMap": {"name": name}}]
        # Removing the model removes its mount from the next upgrade.
        target.apply_models({"private": {"enabled": False}})
        assert values_files(helm_upgrades(runner)[-1]) == ["kind.yaml", "models.yaml"]
    finally:
        target.close()


def test_component_log_leaves_out_pods_that_are_terminating() -> None:
    pods = items(
        {
            "metadata": {"name": "old", "deletionTimestamp": "2026-01-01T00:00:00Z"},
            "spec": {"containers": [{"name": "c"}]},
        },
        {"metadata": {"name": "new"}, "spec": {"containers": [{"name": "c"}]}},
    )
    runner = runner_for({("kubectl", "--context", CTX, "get", "pods"): CommandResult([], 0, pods)})
    target = kind(runner)
    target.deploy()
    target.component_log("gateway")
    logged = [c[4] for c in runner.calls if c[3:4] == ["logs"]]
    assert logged == ["new"]


# port-forwards across restarts ----------------------------------------------------------------


def test_port_forward_restart_keeps_the_local_port_and_a_ready_forward_gets_a_fresh_budget() -> None:
    runner = RecordingRunner()
    pf = PortForward(runner, "svc/rag-maas-gateway", 8080, NS, CTX, local_port=18080, max_restarts=2,
                     probe=lambda port: True)  # fmt: skip
    pf.start()
    runner.started[-1].exit(1)
    pf.wait_ready(FakeClock().waiter())  # restarts the dead forward, then answers
    assert pf.restarts == 0
    pf.restart()
    assert runner.started[-2].returncode == -15, "the old kubectl kept running"
    assert runner.calls[-1][-1] == "18080:8080"
    pf.stop()


# 5. what reached the model ---------------------------------------------------------------------


def model_server_manifest(image: str) -> str:
    return f"""---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: rag-vllm-gpu
  labels: {{app.kubernetes.io/component: model-server}}
spec:
  template:
    spec:
      containers:
        - {{name: simulator, image: "{image}"}}
"""


def kube_with(tmp_path: Path, manifest: str) -> tuple[Any, RecordingRunner]:
    from harness.targets.kube import KubeTarget

    runner = runner_for({
        ("helm", "get", "manifest"): CommandResult([], 0, manifest),
        ("kubectl", "get", "services"): CommandResult([], 0, items(service("rag-vllm-gpu", 8000))),
    })  # fmt: skip
    target = KubeTarget(
        TargetOptions(), runner=runner, run_dir=tmp_path / "run", say=lambda _: None,
        waiter=FakeClock().waiter(), deployment_overrides={"probe": lambda port: True},
    )  # fmt: skip
    target.deployment("", NS)  # as after up(): the release is selected
    return target, runner


def test_cluster_targets_do_not_claim_a_record_of_model_calls(tmp_path: Path) -> None:
    """Kind pulls the real simulator and kube runs the same real binary: neither records what reached it."""
    target, _ = kube_with(tmp_path, model_server_manifest("ghcr.io/llm-d/llm-d-inference-sim:v0.10.2"))
    try:
        assert not hasattr(target, "model_calls_url")
        assert not hasattr(kind(runner_for()), "model_calls_url")
    finally:
        target.close()


def endpoint_slices(*conditions: dict[str, bool]) -> CommandResult:
    endpoints = [{"addresses": [f"10.0.0.{i}"], "conditions": c} for i, c in enumerate(conditions)]
    return CommandResult([], 0, items({"metadata": {"name": "rag-maas-gateway-redis-x"}, "endpoints": endpoints}))


def test_start_returns_only_once_the_services_route_to_ready_pods_and_no_terminating_one() -> None:
    answers = [
        endpoint_slices(),  # scaled up, not ready yet: no endpoints
        endpoint_slices({"ready": False, "terminating": True}, {"ready": True, "terminating": False}),
        endpoint_slices({"ready": True, "terminating": False}),
    ]
    runner = fault_runner(["rag-maas-gateway-redis-1"])
    slices = ("kubectl", "--context", CTX, "get", "endpointslices", "-n", NS, "-l", component_selector("redis"))
    runner.responses[slices] = lambda _argv: answers.pop(0)
    target = kind(runner)
    target.deploy()
    target.stop_component("redis")
    target.start_component("redis")
    assert not answers, "start returned before the Service routed to the new pod only"
    assert [c for c in runner.calls if c[3:5] == ["get", "endpointslices"]][-1] == [*slices, "-o", "json"]
