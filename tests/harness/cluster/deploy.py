"""One release of the rag chart on a cluster: install, wait, reach, read keys, diagnose, remove.

The kind and existing targets differ only in how they get a cluster, a context and a
namespace, and in how they reach services (port-forward or Routes); this class does the rest.
"""

from __future__ import annotations

import atexit
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import yaml

from harness import gateway_keys
from harness.chart_archives import refuse_stale_archives
from harness.cluster import model_ca, plans, routes, secrets
from harness.cluster.components import ComponentControl
from harness.cluster.diagnostics import ClusterDiagnostics
from harness.cluster.portforward import PortForward, port_open
from harness.cluster.rollout import RolloutWaiter
from harness.cluster.runner import CommandRunner
from harness.endpoints import Endpoints
from harness.http import list_models
from harness.maas import MaasSettings
from harness.paths import chart
from harness.redact import mask_secret_manifest, redact
from harness.waiting import ROLLOUT, Waiter, WaitPolicy

# Components the tests reach from outside the cluster.
GATEWAY = "gateway"
LLAMA_STACK = "llama-stack"
PROMETHEUS = "prometheus"  # the rag chart's Prometheus (prometheus.enabled)
NAMESPACE_LABEL = "app.kubernetes.io/managed-by=rag-harness"
# Private values files applied after the target's values on every upgrade, in this order.
MODELS_FILE = "models.yaml"  # global.models of registrations (entries may carry apiToken)
MODEL_CA_FILE = "model-ca.yaml"  # llama-stack's mounts of the CA bundles those models trust
OVERRIDES_FILE = "overrides.yaml"  # the fault tests' temporary overrides


def first_service(doc: str) -> tuple[str, int] | None:
    """(name, port) of the first Service in `kubectl get services -o json`; prefers a port named http."""
    items = json.loads(doc or "{}").get("items", [])
    if not items:
        return None
    svc = items[0]
    ports = svc["spec"].get("ports", [])
    port = next((p for p in ports if p.get("name") == "http"), ports[0] if ports else None)
    return (svc["metadata"]["name"], int(port["port"])) if port else None


@dataclass
class ClusterDeployment:
    runner: CommandRunner
    waiter: Waiter
    namespace: str
    context: str
    release: str = "rag"
    chart_dir: Path = field(default_factory=lambda: chart("rag"))
    say: Callable[[str], None] = print
    rollout_policy: WaitPolicy = ROLLOUT
    maas: MaasSettings | None = None  # external MaaS (values/kind-maas.yaml); None: in-cluster simulator
    forwards: list[PortForward] = field(default_factory=list)
    probe: Callable[[int], bool] = port_open  # injectable for unit tests (no sockets)
    list_models: Callable[[str, str], list[str]] = partial(list_models, missing_ok=True)
    _tmp: Path | None = None
    _components: ComponentControl | None = None

    # install ------------------------------------------------------------------------------------

    def ensure_namespace(self) -> bool:
        """Create the namespace when absent; True if this call created it."""
        found = self.runner.run(plans.kubectl_get_namespace(self.namespace, self.context), check=False)
        if found.ok and found.stdout.strip():
            return False
        self.runner.run(plans.kubectl_create_namespace(self.namespace, self.context))
        self.runner.run(plans.kubectl_label_namespace(self.namespace, NAMESPACE_LABEL, self.context))
        return True

    def private_values(self, name: str, values: dict[str, Any]) -> Path:
        """A 0600 values file in this deployment's private temp dir (removed by `close`)."""
        if self._tmp is None:
            self._tmp = secrets.private_dir()
        return secrets.write_private_values(self._tmp, name, values)

    def private_files(self) -> list[Path]:
        return sorted(self._tmp.glob("*.yaml")) if self._tmp else []

    def values_with_maas(self, values: list[Path]) -> list[Path]:
        if not self.maas or not (extra := secrets.maas_model_values(self.maas.endpoint, self.maas.model)):
            return values
        return [*values, self.private_values("maas-model.yaml", extra)]

    def install(self, values: list[Path]) -> None:
        """Namespace, MaaS Secret, helm upgrade --install (no waiting here).

        No `helm dependency build`: the subcharts are symlinked into charts/rag/charts, and the
        build would only leave .tgz files and a Chart.lock in the source tree.
        """
        refuse_stale_archives(self.chart_dir)
        where = self.context or "current context"
        self.say(f"installing release {self.release} into namespace {self.namespace} ({where})")
        self.ensure_namespace()
        if self.maas and self.maas.api_key:
            self.say(f"creating Secret {secrets.MAAS_SECRET_NAME} from MAAS_API_KEY (via stdin)")
            secrets.apply_maas_secret(self.runner, self.maas.api_key, self.namespace, self.context)
        argv = plans.helm_upgrade_install(
            self.release, self.chart_dir, self.namespace, self.values_with_maas(values), self.context
        )
        self.runner.run(argv)

    def wait(self, only: set[str] | None = None) -> None:
        RolloutWaiter(
            self.runner, self.waiter, self.namespace, self.release, self.context, self.rollout_policy, say=self.say
        ).wait_all(only)

    def helm_test(self) -> None:
        """`helm test`: the chart's own test hooks against the running release."""
        self.say(f"running helm test for release {self.release} (the charts' own test pods)")
        self.runner.run(plans.helm_test(self.release, self.namespace, self.context))

    # reach ---------------------------------------------------------------------------------------

    def forward(self, component: str) -> PortForward | None:
        """Port-forward the component's Service; None when the release has no such Service."""
        selector = plans.instance_selector(self.release, component)
        svc = first_service(self.runner.run(plans.kubectl_get_services(self.namespace, selector, self.context)).stdout)
        if svc is None:
            return None
        name, port = svc
        pf = PortForward(
            self.runner, f"svc/{name}", port, self.namespace, self.context, probe=self.probe, component=component
        )
        pf.start()
        self.forwards.append(pf)
        return pf

    def forward_ready(self, component: str, ready_timeout: float = 30.0) -> PortForward | None:
        """The component's supervised forward (opened on first use), once its local port answers."""
        pf = next((f for f in self.forwards if f.component == component and not f.port_name), None)
        if pf is None and (pf := self.forward(component)) is not None:
            atexit.register(self.close)
            pf.wait_ready(self.waiter, ready_timeout)
            pf.start_supervisor()
        return pf

    def forward_pod_port(self, component: str, port_name: str, ready_timeout: float = 30.0) -> PortForward | None:
        """A supervised forward to the named container port of the component's Deployment (for a
        port its Service does not carry); None when the release has no such Deployment or port."""
        if pf := next((f for f in self.forwards if (f.component, f.port_name) == (component, port_name)), None):
            return pf
        found = [
            (doc["metadata"]["name"], port["containerPort"])
            for doc in self.rendered_objects()
            if doc.get("kind") == "Deployment"
            and doc["metadata"].get("labels", {}).get("app.kubernetes.io/component") == component
            for container in doc["spec"]["template"]["spec"]["containers"]
            for port in container.get("ports", [])
            if port.get("name") == port_name
        ]
        if not found:
            return None
        name, remote = found[0]
        pf = PortForward(
            self.runner,
            f"deploy/{name}",
            remote,
            self.namespace,
            self.context,
            probe=self.probe,
            component=component,
            port_name=port_name,
        )
        pf.start()
        self.forwards.append(pf)
        atexit.register(self.close)
        pf.wait_ready(self.waiter, ready_timeout)
        pf.start_supervisor()
        return pf

    def reconnect(self, components: set[str], ready_timeout: float = 60.0) -> None:
        """Restart the forwards of `components` and wait until they answer: after a rollout the
        running kubectl may still hold a connection to a pod that is going away. A rollout reports
        ready while the old pod still terminates, and a Service forward may pick that pod: wait
        until it is gone first. A forward to one of a component's pod ports (its readiness or
        metrics) follows the component too: kubectl keeps forwarding to the pod it picked, and
        once that pod is gone each connection through it is dropped unanswered."""
        for pf in (f for f in self.forwards if f.component in components):
            self._wait_no_terminating(pf.component, ready_timeout)
            pf.restart()
            pf.wait_ready(self.waiter, ready_timeout)
            pf.start_supervisor()

    def _wait_no_terminating(self, component: str, timeout: float) -> None:
        argv = plans.kubectl_get_pods(self.namespace, plans.instance_selector(self.release, component), self.context)

        def none_terminating() -> bool | None:
            done = self.runner.run(argv, check=False)
            if done.returncode != 0:
                return True  # nothing to wait for that we can see; the forward's own wait follows
            items = (json.loads(done.stdout or "{}") or {}).get("items") or []
            return not any((pod.get("metadata") or {}).get("deletionTimestamp") for pod in items) or None

        self.waiter.until(
            none_terminating, WaitPolicy(timeout, initial=0.5, cap=2), what=f"old {component} pods to terminate"
        )

    def service_url(self, component: str) -> str:
        """The component's Service as pods in the namespace reach it (http://NAME:PORT); "" when absent."""
        selector = plans.instance_selector(self.release, component)
        argv = plans.kubectl_get_services(self.namespace, selector, self.context)
        svc = first_service(self.runner.run(argv, check=False).stdout)
        return f"http://{svc[0]}:{svc[1]}" if svc else ""

    def connect(self, use_routes: bool, ready_timeout: float = 30.0) -> tuple[str, str]:
        """(gateway_url, llama_stack_url) through Routes or port-forwards (supervised, reconnecting)."""
        if use_routes:
            urls = routes.discover_routes(self.runner, self.namespace, self.release, self.context)
            return urls.get(GATEWAY, self._maas_url()), urls.get(LLAMA_STACK, "")
        atexit.register(self.close)
        found = {c: self.forward(c) for c in (GATEWAY, LLAMA_STACK)}
        for pf in (pf for pf in found.values() if pf):
            pf.wait_ready(self.waiter, ready_timeout)
            pf.start_supervisor()
        gateway, stack = found[GATEWAY], found[LLAMA_STACK]
        return (gateway.url if gateway else self._maas_url()), (stack.url if stack else "")

    def _maas_url(self) -> str:
        """Without an in-cluster gateway (maas lane) the external MaaS is the gateway the tests use."""
        endpoint = self.maas.endpoint.rstrip("/") if self.maas else ""
        return endpoint.removesuffix("/v1")

    def keys(self) -> dict[str, list[str]]:
        keys = secrets.read_gateway_keys(self.runner, self.namespace, self.release, self.context)
        if not keys and self.maas and self.maas.api_key:
            keys = {self.maas.tier: [self.maas.api_key]}
        return keys

    def endpoints(self, use_routes: bool, run_dir: str = "") -> Endpoints:
        gateway_url, stack_url = self.connect(use_routes)
        keys = self.keys()
        some_key = gateway_keys.listing_key(keys) or ""
        endpoints = Endpoints(
            gateway_url=gateway_url,
            llama_stack_url=stack_url,
            keys=keys,
            gateway_models=self.list_models(gateway_url, some_key) if gateway_url else [],
            run_dir=run_dir,
        )
        # Created first: the Endpoints remember llama-stack's credentials for keyless calls.
        endpoints.llama_stack_models = self.list_models(stack_url, "") if stack_url else []
        endpoints.in_cluster_gateway_url = self.service_url(GATEWAY)
        prometheus = self.forward_ready(PROMETHEUS)
        endpoints.prometheus_url = prometheus.url if prometheus else ""
        return endpoints

    # apply / diagnose / remove ------------------------------------------------------------------

    def trust_ca_bundle(self, path: str) -> str:
        """Ship the CA bundle at `path` (on this machine) to the release's namespace as a ConfigMap
        and return the path llama-stack reads it at, for a model's tlsVerify (see harness.cluster.model_ca).
        Idempotent: the same bundle gives the same ConfigMap and path."""
        pem = model_ca.read_bundle(path)
        name = model_ca.configmap_name(pem)
        self.say(f"CA bundle {path} -> ConfigMap {name}, mounted into llama-stack (the model's tlsVerify)")
        manifest = model_ca.configmap_manifest(name, pem, self.namespace)
        self.runner.run(plans.kubectl_apply_stdin(self.namespace, self.context), input=manifest)
        return model_ca.in_container_path(name)

    def applied_models(self) -> dict[str, dict[str, Any]]:
        """`global.models` of the installed release (`helm get values`): what earlier installs and
        registrations applied. Read, never printed: entries may carry apiToken."""
        result = self.runner.run(plans.helm_get_values(self.release, self.namespace, self.context, output="json"))
        values = json.loads(result.stdout or "{}") or {}
        return dict((values.get("global") or {}).get("models") or {})

    def apply_models(self, base_values: list[Path], models: dict[str, dict[str, Any]]) -> None:
        """helm upgrade with `models` as the last `global.models` overlay (a 0600 file: entries may
        carry apiToken), then wait for llama-stack and the gateway. `models` holds every applied
        entry (see `applied_models`), so the upgrade, which does not reuse the release's values,
        keeps models earlier registrations added."""
        self.private_values(MODELS_FILE, {"global": {"models": models}})
        self.upgrade(base_values)
        # The gateway's config carries the catalog, so a catalog change rolls it too: wait for both
        # and restart this process's forwards (a running kubectl still points at the old pod).
        self.wait(only={LLAMA_STACK, GATEWAY})
        self.reconnect({LLAMA_STACK, GATEWAY})

    def override_values(self, base_values: list[Path], values: dict[str, Any] | None, restart: set[str]) -> None:
        """helm upgrade with `values` as the last overlay (None removes it), then wait for the
        `restart` components and reconnect their forwards."""
        # The models the release has now, read back from it: another process (the models CLI, a
        # registration) may have changed them since this process last wrote its models file, and
        # the upgrade must keep them (see apply_models).
        models = self.private_values(MODELS_FILE, {"global": {"models": self.applied_models()}})
        if values is None:
            models.with_name(OVERRIDES_FILE).unlink(missing_ok=True)
        else:
            self.private_values(OVERRIDES_FILE, values)
        self.upgrade(base_values)
        self.wait(only=restart)
        self.reconnect(restart)

    def upgrade(self, base_values: list[Path]) -> None:
        """helm upgrade with the target's values, then the applied models, the mounts of the CA
        bundles they trust, and the overrides (when written): `helm upgrade` does not reuse the
        release's values, so every run applies them all."""
        refuse_stale_archives(self.chart_dir)
        base = self.values_with_maas(base_values)
        self._write_model_ca_mounts(base)
        generated = [self._tmp / n for n in (MODELS_FILE, MODEL_CA_FILE, OVERRIDES_FILE)] if self._tmp else []
        values = [*base, *(p for p in generated if p.is_file())]
        argv = plans.helm_upgrade_install(self.release, self.chart_dir, self.namespace, values, self.context)
        self.runner.run(argv)

    def _write_model_ca_mounts(self, base_values: list[Path]) -> None:
        """MODEL_CA_FILE from the models file: a mount per CA bundle an applied model trusts (none: no file)."""
        models_file = self._tmp / MODELS_FILE if self._tmp else None
        if models_file is None or not models_file.is_file():
            return
        models = (yaml.safe_load(models_file.read_text()) or {}).get("global", {}).get("models") or {}
        mounts = model_ca.volume_values(models, base_values)
        if mounts:
            self.private_values(MODEL_CA_FILE, mounts)
        else:
            models_file.with_name(MODEL_CA_FILE).unlink(missing_ok=True)

    def components(self) -> ComponentControl:
        """One per deployment: it remembers the replicas of what it stopped until it starts them."""
        if self._components is None:
            self._components = ComponentControl(
                self.runner, self.waiter, self.namespace, self.release, self.context, say=self.say
            )
        return self._components

    def known_secrets(self) -> list[str]:
        """Values that must never be written out: the gateway keys and the MaaS key."""
        known = [k for tier_keys in self.keys().values() for k in tier_keys]
        return [*known, self.maas.api_key] if self.maas and self.maas.api_key else known

    def rendered_manifest(self) -> str:
        """`helm get manifest` of the release with Secret data masked and known keys redacted."""
        manifest = self.runner.run(plans.helm_get_manifest(self.release, self.namespace, self.context)).stdout
        return redact(mask_secret_manifest(manifest), self.known_secrets())

    def rendered_objects(self) -> list[dict[str, Any]]:
        """The release's objects as installed (`helm get manifest`), Secret data masked."""
        manifest = self.runner.run(plans.helm_get_manifest(self.release, self.namespace, self.context)).stdout
        return [doc for doc in yaml.safe_load_all(mask_secret_manifest(manifest)) if isinstance(doc, dict)]

    def diagnose(self, dest: Path) -> Path:
        known = self.known_secrets()
        return ClusterDiagnostics(self.runner, self.namespace, self.release, self.context, known).collect(dest)

    def uninstall(self, delete_namespace: bool) -> None:
        """Idempotent: a missing release or namespace is not an error."""
        self.say(f"uninstalling release {self.release} from namespace {self.namespace}")
        self.runner.run(plans.helm_uninstall(self.release, self.namespace, self.context))
        if delete_namespace:
            self.say(f"deleting namespace {self.namespace}")
            self.runner.run(plans.kubectl_delete_namespace(self.namespace, self.context))

    def close(self) -> None:
        for pf in self.forwards:
            pf.stop()
        self.forwards.clear()
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None
