"""The embedded local target: the rag chart's render run as processes on 127.0.0.1."""

from __future__ import annotations

import json
import secrets
from collections.abc import Collection
from pathlib import Path
from typing import Any

from harness import gateway_keys
from harness.capabilities import Capability, Unsupported
from harness.endpoints import Endpoints
from harness.errors import StackNotReady
from harness.http import REQUEST_TIMEOUT_S, list_models
from harness.local import stack
from harness.local.key_files import LocalKeyFiles
from harness.local.pods import container_specs
from harness.local.ports import Ports, port_values
from harness.local.state import OVERRIDES_FILE, RunFolder
from harness.redact import redact
from harness.registration import base_models, routing_upstreams, unready_routes
from harness.render import Rendered
from harness.targets.base import TargetOptions
from harness.vector_rows import Dsn
from harness.waiting import Waiter, WaitPolicy

KEYS_FILE = "keys.json"
INTERNALS = ("redis", "gateway_health", "gateway_metrics")  # what Target.internal_port reaches
MODELS_FILE = "models.yaml"  # registrations' global.models, applied after the values files
READY_TIMEOUT_S = 60.0  # after /v1/health: the stores behind every route the workflows use
READY = WaitPolicy(READY_TIMEOUT_S, initial=0.5, cap=0.5)  # a route check every half second


class NotRunning(StackNotReady):
    pass


class LocalTarget:
    name = "local"
    capabilities = frozenset({Capability.MAAS_STANDIN, Capability.FAULTS, Capability.KEY_STORE})

    def __init__(self, options: TargetOptions, ports: Ports | None = None) -> None:
        self.options = options
        self.run = RunFolder.named(options.run_name)
        self.ports = ports or Ports()

    def up(self) -> Endpoints:
        self._start()
        return self.status()

    def up_components(self, components: Collection[str]) -> Ports:
        """Start only these components of the render (app.kubernetes.io/component: the gateway's are
        `redis`, `ratelimit` and `gateway`), set up as `up` sets them up; returns the ports the run
        uses (a model server port given to the constructor included). `down` stops them."""
        self._start(components)
        return Ports(**self.run.get("ports"))

    def _start(self, components: Collection[str] = ()) -> None:
        """Render with fresh ports and generated secrets and start `components` (default: all)."""
        stack.refuse_if_running(self.run)  # before reset(), which clears the running stack's state
        self.run.reset(self.options.values)
        ports = self.ports.fill_free()
        self.run.put("ports", ports.as_dict())
        models = base_models("local", self.run.overlays())
        self.run.write_values("ports.yaml", port_values(ports, models, routing_upstreams("local", self.run.overlays())))
        # Fresh database and Redis passwords and key hashing secret per run; they reach the chart
        # through a 0600 values file (a chart-generated Redis password would change on every
        # re-render, and a restarted rate limit service would no longer match the running Redis;
        # a new hashing secret would invalidate the hashed keys of `harness keys create`).
        generated = {
            "pgvector": {"auth": {"password": secrets.token_urlsafe(24)}},
            "maas-gateway": {
                "redis": {"auth": {"password": secrets.token_urlsafe(24)}},
                "apiKeys": {"hmac": {"secret": secrets.token_urlsafe(32)}},
            },
        }
        self.run.write_values("secrets.yaml", generated, secret=True)
        rendered = stack.up(self.run, only=components)
        self.run.write_values(KEYS_FILE, gateway_keys.by_tier(_keys_from(rendered)), secret=True)

    def down(self) -> None:
        stopped = stack.down(self.run)
        print(f"[local] stopped {len(stopped)} processes; run folder kept: {self.run.root}")

    def status(self) -> Endpoints:
        """The endpoints of the running stack; NotRunning, listing each container's state, when the
        stack is not running or only partly (an interrupted start, a component that exited)."""
        states = self.run.component_states()
        detail = "\n".join(f"  {name}: {state}" for name, state in states.items())
        if not self.run.alive_pids():
            raise NotRunning(
                f"no local stack named {self.run.name!r} is running; start it with `make up`", detail=detail
            )
        keys_file = self.run.values_dir / KEYS_FILE
        if not keys_file.is_file() or any(not state.startswith("running") for state in states.values()):
            raise NotRunning(
                f"the local stack {self.run.name!r} is only partly running (an interrupted start or an exited "
                "component, listed above): stop it with `make down`, then start it with `make up`",
                detail=detail,
            )
        ports = Ports(**self.run.get("ports"))
        keys = json.loads(keys_file.read_text())
        endpoints = Endpoints(
            gateway_url=f"http://127.0.0.1:{ports.gateway}",
            llama_stack_url=f"http://127.0.0.1:{ports.llama_stack}",
            keys=keys,
            run_dir=str(self.run.root),
            values=self.run.overlay_fingerprints(),
        )
        if any(name.endswith("-prometheus") for name in self.run.alive_pids()):
            endpoints.prometheus_url = f"http://127.0.0.1:{ports.prometheus}"
        endpoints.gateway_models = _model_ids(endpoints.gateway_url, gateway_keys.listing_key(keys))
        endpoints.llama_stack_models = _model_ids(endpoints.llama_stack_url, None)
        return endpoints

    def reconnect(self, component: str) -> None:
        """Nothing to follow: a restarted local component listens on the same port again."""

    def maas_standin_host(self) -> str:
        """Where the stand-in MaaS serves so that this target's llama-stack reaches it: loopback."""
        return "127.0.0.1"

    def model_ca_path(self, path: str) -> str:
        """llama-stack runs on this machine and reads the bundle where it is."""
        return path

    def postgres_dsn(self) -> Dsn:
        raise Unsupported(self.name, Capability.POSTGRES)

    def key_store(self) -> LocalKeyFiles:
        """The running gateway's key file (and the copy a restarted gateway gets)."""
        return LocalKeyFiles.of(self.run)

    def close(self) -> None:
        """Nothing to release: the local stack's processes are reached directly."""

    def applied_models(self) -> dict[str, dict[str, Any]]:
        """The run's models file (`values/models.yaml`): every entry registrations applied."""
        path = self.run.values_dir / MODELS_FILE
        if not path.is_file():
            return {}
        return dict(json.loads(path.read_text()).get("global", {}).get("models") or {})

    def apply_models(self, models: dict[str, dict[str, Any]]) -> None:
        """Write `models` as the run's models file (over the values files) and restart what
        `helm upgrade` would roll: llama-stack, and the gateway's components when the catalog they
        read changed (a model behind the gateway is routed, listed and limited there); returns once
        every route the workflows use answers.

        The restart keeps llama-stack's data volume (a claim under the run folder): files,
        vector stores, conversations and responses survive; the chart's prune-registry init
        container drops models that left the config. Redis keeps its counters.
        """
        before = stack.render(self.run)
        self.run.write_values(MODELS_FILE, {"global": {"models": models}}, secret=True)
        rolled = [c for c in stack.changed_components(before, stack.render(self.run)) if c != "llama-stack"]
        for component in rolled:
            stack.restart(self.run, component)
        stack.restart(self.run, "llama-stack")
        url = f"http://127.0.0.1:{Ports(**self.run.get('ports')).llama_stack}"
        _wait_ready(url)

    # Faults: stop and start the real processes of one component (app.kubernetes.io/component).
    def stop_component(self, component: str) -> None:
        stack.stop_component(self.run, component)

    def start_component(self, component: str) -> None:
        stack.start_component(self.run, component)

    def override_values(self, values: dict[str, Any] | None, *, restart: str | tuple[str, ...]) -> None:
        """Render with `values` on top of everything else (None removes them) and restart `restart`
        (one component or several, in that order). Owner-only: overrides may hold a key."""
        path = self.run.values_dir / OVERRIDES_FILE
        if values is None:
            path.unlink(missing_ok=True)
        else:
            self.run.write_values(OVERRIDES_FILE, values, secret=True)
        for component in (restart,) if isinstance(restart, str) else restart:
            stack.restart(self.run, component)

    def component_log(self, component: str) -> str:
        """The logs of one component's processes (may hold keys: callers must not print them whole)."""
        specs = [s for s in container_specs(stack.render(self.run)) if s.component == component]
        return "".join(self.run.log(s.name).read_text(errors="replace") for s in specs if self.run.log(s.name).exists())

    def internal_port(self, name: str) -> int:
        """The port the local stack gave that internal (its processes listen on 127.0.0.1)."""
        if name not in INTERNALS:
            raise KeyError(f"no internal named {name!r}; choose one of {', '.join(INTERNALS)}")
        return int(self.run.get("ports")[name])

    def rendered_objects(self) -> list[dict[str, Any]]:
        """The objects the running stack's values render to (Secrets masked)."""
        return stack.render(self.run).masked_secrets().objects

    def diagnose(self, dest: Path) -> Path:
        """Logs and the redacted render; never the mounts (they hold the key file)."""
        dest.mkdir(parents=True, exist_ok=True)
        known = set(_all_keys(self.run))
        for log in stack.log_paths(self.run):
            (dest / log.name).write_text(redact(log.read_text(errors="replace"), known))
        (dest / "state.json").write_text(redact(self.run.state_file.read_text(), known))
        if self.run.rendered_file.exists():  # already redacted structurally; mask known keys too
            (dest / "rendered.yaml").write_text(redact(self.run.rendered_file.read_text(), known))
        return dest


def _wait_ready(url: str) -> None:
    """Until every READY_ROUTES answers 200; raises NotRunning naming the routes that do not."""
    down = Waiter().retrying(READY, on_result=bool)(unready_routes, url)
    if down:
        raise NotRunning(f"llama-stack at {url} restarted but these routes do not answer 200: {down}")


def _keys_from(rendered: Rendered) -> list[gateway_keys.ApiKey]:
    for secret in rendered.of_kind("Secret"):
        data = rendered.secret_data(secret["metadata"]["name"])
        if gateway_keys.KEYS_SECRET_KEY in data:
            return gateway_keys.parse(data[gateway_keys.KEYS_SECRET_KEY])
    return []


def _all_keys(run: RunFolder) -> list[str]:
    path = run.values_dir / KEYS_FILE
    if not path.exists():
        return []
    return [k for keys in json.loads(path.read_text()).values() for k in keys]


def _model_ids(base_url: str, key: str | None) -> list[str]:
    try:
        return sorted(list_models(base_url, key or "", timeout=REQUEST_TIMEOUT_S))
    except (OSError, LookupError) as exc:
        raise NotRunning(str(exc)) from exc
