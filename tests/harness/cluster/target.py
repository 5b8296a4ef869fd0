"""What the kind and existing targets share: the Target protocol on top of ClusterDeployment.

A subclass says how it gets a kube context, which namespace a run uses, whether Routes are
used, and which values overlays are its own. Everything runs through `self.runner`, so a
recording runner in the unit tests sees the whole plan.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from harness.capabilities import Capability, Unsupported
from harness.cluster import gpu, plans, secrets, state
from harness.cluster.deploy import ClusterDeployment
from harness.cluster.key_secret import ClusterKeySecret
from harness.cluster.profile import InstallProfile
from harness.cluster.runner import CommandRunner, SubprocessRunner
from harness.endpoints import Endpoints
from harness.errors import HarnessError, StackNotReady
from harness.maas import MaasSettings
from harness.paths import values_file
from harness.vector_rows import Dsn
from harness.waiting import ROLLOUT, Waiter

OWNER = "rag-harness"  # value of the namespace label app.kubernetes.io/managed-by
RENDERED_FILE = "rendered.yaml"  # in the run folder, as the local target names its render


class NotInstalled(StackNotReady):
    pass


class ClusterTarget:
    name = "cluster"
    capabilities = frozenset({Capability.POSTGRES, Capability.FAULTS, Capability.KEY_STORE})
    helm_tests = False  # run `helm test` after every rollout is ready

    def __init__(
        self,
        options: Any,  # harness.targets.TargetOptions (not imported: the targets layer sits above this one)
        *,
        runner: CommandRunner | None = None,
        waiter: Waiter | None = None,
        profile: InstallProfile | None = None,
        maas: MaasSettings | None = None,
        say: Callable[[str], None] = print,
        dry_run: bool = False,
        deployment_overrides: dict[str, Any] | None = None,  # e.g. probe/list_models in unit tests
    ) -> None:
        self.options = options
        self.runner: CommandRunner = runner or SubprocessRunner()
        self.waiter = waiter or Waiter()
        self.profile = profile
        self.say = say
        self.dry_run = dry_run
        self.deployment_overrides = deployment_overrides or {}
        if maas is None and getattr(options, "maas", False):
            maas = MaasSettings.from_env()
        self.maas = maas
        self._deployment: ClusterDeployment | None = None
        self._openshift = False

    # hooks for subclasses ----------------------------------------------------------------------

    def prepare(self) -> str:
        """Make sure a cluster exists; return the kube context to use."""
        raise NotImplementedError

    def new_namespace(self) -> str:
        raise NotImplementedError

    def own_values(self) -> list[Path]:
        """The target's overlays (before profile overlays and the user's --values)."""
        raise NotImplementedError

    def detect_openshift(self, context: str) -> bool:
        return False

    def use_routes(self) -> bool:
        """Reach the stack through Routes: --openshift-routes/--no-openshift-routes, else auto-detected."""
        if self.profile is not None and self.profile.openshift_routes is not None:
            return self.profile.openshift_routes
        return self._openshift

    # shared -----------------------------------------------------------------------------------

    def values(self) -> list[Path]:
        files = self.own_values()
        if self.maas is not None:
            files.append(values_file("kind-maas"))
        if self.use_routes():
            files.append(values_file("openshift"))
        if self.profile is not None:
            files += self.profile.overlay_files()
            if generated := self.profile.generated_values():
                files.append(self.deployment().private_values("install-flags.yaml", generated))
        return files + [Path(p) for p in self.options.values]

    def deployment(self, context: str | None = None, namespace: str | None = None) -> ClusterDeployment:
        if self._deployment is None:
            if context is None or namespace is None:
                raise NotInstalled(f"{self.name}: no deployment selected yet")
            policy = replace(ROLLOUT, timeout=self.profile.rollout_timeout) if self.profile else ROLLOUT
            self._deployment = ClusterDeployment(
                self.runner, self.waiter, namespace, context, self.options.release,
                say=self.say, rollout_policy=policy, maas=self.maas, **self.deployment_overrides,
            )  # fmt: skip
        return self._deployment

    def deploy(self) -> ClusterDeployment:
        """Install (or upgrade) the release and wait for every rollout; what `install` and `up` share."""
        if self.maas is not None and (missing := self.maas.missing()) and not self.dry_run:
            raise HarnessError(f"the MaaS lane needs {' and '.join(missing)} in the environment: export and re-run")
        created_cluster = self._created_cluster_flag()
        context = self.prepare()
        self._openshift = self.detect_openshift(context)
        if self.profile is not None and self.profile.check_gpu:
            self._check_gpu(context)
        namespace = self.options.namespace or self.new_namespace()
        deployment = self.deployment(context, namespace)
        deployment.install(self.values())
        if self.dry_run:
            return deployment
        deployment.wait()
        if self.helm_tests:
            deployment.helm_test()
        state.save(
            state.ClusterState(
                self.name, context, namespace, self.options.release,
                created_namespace=self._owned(namespace, context),
                created_cluster=created_cluster or self._created_cluster_flag(),
                openshift=self.use_routes(),
            )
        )  # fmt: skip
        return deployment

    def _created_cluster_flag(self) -> bool:
        return False

    def _check_gpu(self, context: str) -> None:
        assert self.profile is not None
        if self.dry_run:
            self.runner.run(plans.kubectl_get_nodes(context))
            return
        gpu.check_gpu(self.runner, self.waiter, context=context, timeout=self.profile.gpu_timeout, say=self.say)

    def _owned(self, namespace: str, context: str) -> bool:
        result = self.runner.run(plans.kubectl_namespace_owner(namespace, context), check=False)
        return result.ok and result.stdout.strip() == OWNER

    # Target protocol --------------------------------------------------------------------------

    def up(self) -> Endpoints:
        deployment = self.deploy()
        endpoints = deployment.endpoints(self.use_routes(), self.run_dir(deployment.namespace))
        if not endpoints.keys:
            self.say("warning: no gateway keys found in the release's gateway Secret; auth tests will skip")
        self._record_render(deployment)
        return endpoints

    def status(self) -> Endpoints:
        deployment = self._existing_deployment()
        endpoints = deployment.endpoints(self.use_routes(), self.run_dir(deployment.namespace))
        self._record_render(deployment)
        return endpoints

    def _record_render(self, deployment: ClusterDeployment) -> Path:
        """`<run_dir>/rendered.yaml`: the release's manifest as installed (Secret data masked, known
        keys redacted), as the local target records its render; rewritten after every upgrade."""
        path = Path(self.run_dir(deployment.namespace)) / RENDERED_FILE
        path.write_text(deployment.rendered_manifest())
        return path

    def run_dir(self, namespace: str) -> str:
        return str(state.run_dir(self.name, namespace))

    def _existing_deployment(self) -> ClusterDeployment:
        saved = state.load(self.name)
        namespace = self.options.namespace or (saved.namespace if saved else self.default_namespace())
        if not namespace:
            hint = f"run `install --target {self.name}` or pass --namespace"
            raise NotInstalled(f"no {self.name} install recorded; {hint}")
        context = saved.context if saved and saved.namespace == namespace else self.current_context()
        self._openshift = bool(saved and saved.openshift) or self.detect_openshift(context)
        if not self.runner.run(plans.helm_status(self.options.release, namespace, context), check=False).ok:
            raise NotInstalled(f"release {self.options.release} not found in namespace {namespace} ({context})")
        return self.deployment(context, namespace)

    def default_namespace(self) -> str:
        return ""

    def current_context(self) -> str:
        raise NotImplementedError

    def applied_models(self) -> dict[str, dict[str, Any]]:
        deployment = self._deployment or self._existing_deployment()
        return deployment.applied_models()

    def apply_models(self, models: dict[str, dict[str, Any]]) -> None:
        deployment = self._deployment or self._existing_deployment()
        deployment.apply_models(self.values(), models)
        self._record_render(deployment)

    def model_ca_path(self, path: str) -> str:
        """A model's tlsVerify CA bundle, given as a path on this machine, as llama-stack's pod sees
        it: shipped as a ConfigMap that the chart mounts (harness.cluster.model_ca)."""
        return (self._deployment or self._existing_deployment()).trust_ca_bundle(path)

    # Faults: the fault tests stop and start one component's pods (app.kubernetes.io/component).

    def stop_component(self, component: str) -> None:
        """Scale the component's workloads to 0 and return once its pods are gone."""
        (self._deployment or self._existing_deployment()).components().stop(component)

    def start_component(self, component: str) -> None:
        """Scale the component back to its replicas and return once it is rolled out (ready) and
        a port-forward to it (if the tests hold one) answers again."""
        deployment = self._deployment or self._existing_deployment()
        deployment.components().start(component)
        deployment.reconnect({component})

    def reconnect(self, component: str) -> None:
        """Restart this process's port-forward to `component` (if it holds one) and wait until it
        answers: after another process's helm upgrade the running kubectl still points at a pod
        that is gone. The URL stays the same."""
        (self._deployment or self._existing_deployment()).reconnect({component})

    def override_values(self, values: dict[str, Any] | None, *, restart: str | tuple[str, ...]) -> None:
        """helm upgrade with `values` over everything else (None removes them); returns once the
        `restart` components have rolled out and their port-forwards answer again."""
        deployment = self._deployment or self._existing_deployment()
        deployment.override_values(self.values(), values, {restart} if isinstance(restart, str) else set(restart))
        self._record_render(deployment)

    def component_log(self, component: str) -> str:
        """The logs of the component's current pods (may hold keys: callers must not print them whole)."""
        return (self._deployment or self._existing_deployment()).components().log(component)

    def postgres_dsn(self) -> Dsn:
        """How the tests reach the release's PostgreSQL: a supervised port-forward to its Service
        and the login from the release (password from its Secret; never printed)."""
        deployment = self._deployment or self._existing_deployment()
        forward = deployment.forward_ready(secrets.PGVECTOR)
        if forward is None:
            raise NotInstalled(f"release {self.options.release} has no {secrets.PGVECTOR} Service")
        user, database, password = secrets.read_pgvector_login(
            self.runner, deployment.namespace, deployment.release, deployment.context
        )
        return Dsn("127.0.0.1", forward.local_port, user, password, database)

    def internal_port(self, name: str) -> int:
        """A supervised port-forward to Redis's Service, or to the gateway pod's readiness or
        metrics port (per pod: the Service does not carry readiness, and metrics are each
        replica's own). kubectl reaches the pod the way another pod would, so the internal's own
        checks (Redis's password, the listener's routes) are what answers."""
        deployment = self._deployment or self._existing_deployment()
        if name == "redis":
            forward = deployment.forward_ready("redis")
        elif name == "gateway_health":
            forward = deployment.forward_pod_port("gateway", "health")
        elif name == "gateway_metrics":
            forward = deployment.forward_pod_port("gateway", "metrics")
        else:
            raise KeyError(f"no internal named {name!r}; choose redis, gateway_health or gateway_metrics")
        if forward is None:
            raise NotInstalled(f"release {self.options.release} has no {name} to reach")
        return forward.local_port

    def rendered_objects(self) -> list[dict[str, Any]]:
        """The objects of the installed release (`helm get manifest`), Secret data masked."""
        return (self._deployment or self._existing_deployment()).rendered_objects()

    def diagnose(self, dest: Path) -> Path:
        deployment = self._deployment or self._existing_deployment()
        path = deployment.diagnose(dest)
        self.say(f"diagnostics written to {path}")
        return path

    def maas_standin_host(self) -> str:
        raise Unsupported(self.name, Capability.MAAS_STANDIN)  # its pods do not reach this machine

    def key_store(self) -> ClusterKeySecret:
        """The release's key Secret, through the Kubernetes API."""
        deployment = self._deployment or self._existing_deployment()
        return ClusterKeySecret(self.runner, deployment.namespace, self.options.release, deployment.context)

    def close(self) -> None:
        if self._deployment is not None:
            self._deployment.close()
