"""What every target offers; tests see only this and `Endpoints`."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from harness.capabilities import Capability
from harness.endpoints import Endpoints
from harness.gateway_keys import KeyStore
from harness.vector_rows import Dsn

TARGET_NAMES = ("local", "kind", "existing", "kube")


@dataclass
class TargetOptions:
    release: str = "rag"
    namespace: str = ""  # empty: the target picks one (kind/existing: one per run)
    keep: bool = False  # leave the deployment running after the tests
    values: list[Path] = field(default_factory=list)  # extra overlays after the target's own
    cluster_name: str = "rag-e2e"  # kind only
    maas: bool = False  # kind: use values/kind-maas.yaml (external MaaS) instead of the simulator
    run_name: str = "default"  # local: the run folder under .cache/runs/ (one stack per name)


class Target(Protocol):
    """Every target implements every method. The optional ones belong to a `Capability` the class
    declares in `capabilities`; without it they raise `harness.capabilities.Unsupported`."""

    name: str
    capabilities: frozenset[Capability]

    def up(self) -> Endpoints:
        """Deploy (or reuse) the stack and return its endpoints once healthy."""
        ...

    def down(self) -> None:
        """Remove everything `up` created."""
        ...

    def status(self) -> Endpoints:
        """Endpoints of the running stack; raises if nothing runs."""
        ...

    def applied_models(self) -> dict[str, dict[str, Any]]:
        """The `global.models` entries applied on top of the values files so far (by earlier
        registrations; on a cluster: the release's values). Entries may carry tokens: never print."""
        ...

    def apply_models(self, models: dict[str, dict[str, Any]]) -> None:
        """Apply `models` as `global.models` over the values files (restart or helm upgrade) and
        return once llama-stack serves again. `models` is the complete applied set: start from
        `applied_models()` and change only what is meant to change."""
        ...

    def reconnect(self, component: str) -> None:
        """Follow a component that another process restarted (e.g. `python -m harness register`):
        return once this process's connection to it answers again at the same URL."""
        ...

    def diagnose(self, dest: Path) -> Path:
        """Write logs, events and rendered configs (secrets redacted) under dest; return it."""
        ...

    def internal_port(self, name: str) -> int:
        """A loopback port that reaches one of the gateway's internals, as a pod that is not part of
        the gateway would: `redis` (the counters' Redis), `gateway_health` (Envoy's readiness
        listener) or `gateway_metrics` (its Prometheus metrics). Raises KeyError for another name."""
        ...

    def model_ca_path(self, path: str) -> str:
        """A model's tlsVerify CA bundle (a path on this machine) as the target's llama-stack reads it:
        the same path locally; on a cluster, the bundle shipped as a ConfigMap and mounted."""
        ...

    def key_store(self) -> KeyStore:
        """The gateway's key store as `python -m harness keys` changes it (Capability.KEY_STORE)."""
        ...

    def close(self) -> None:
        """Release what this process holds (port-forwards); the deployment keeps running."""
        ...

    # Capability.MAAS_STANDIN

    def maas_standin_host(self) -> str:
        """The address a stand-in MaaS on this machine serves on so that the target's llama-stack reaches it."""
        ...

    # Capability.POSTGRES

    def postgres_dsn(self) -> Dsn:
        """How the tests log in to the release's PostgreSQL (the password is a secret: never print it)."""
        ...

    # Capability.FAULTS

    def stop_component(self, component: str) -> None:
        """Stop one component's processes or pods (`app.kubernetes.io/component`)."""
        ...

    def start_component(self, component: str) -> None:
        """Start a stopped component again and return once it is ready."""
        ...

    def override_values(self, values: dict[str, Any] | None, *, restart: str | tuple[str, ...]) -> None:
        """Apply extra values over the deployment's (None: drop them) and restart `restart` (one
        component or several, in that order)."""
        ...

    def component_log(self, component: str) -> str:
        """The log of one component's process or pod."""
        ...

    def rendered_objects(self) -> list[dict[str, Any]]:
        """The objects the deployment runs, as rendered (Secret values masked)."""
        ...
