"""Stopping and starting one component of a release, and reading its logs (the fault tests' needs).

A component is what the charts label `app.kubernetes.io/component` (gateway, ratelimit, redis,
model-server, ...). Stopping scales its Deployments and StatefulSets to zero replicas and waits
until its pods are gone, as a crash or a drained node leaves it; starting scales them back to the
replica counts they had and waits until they are rolled out (ready) and their Services route to
them again: a client reaches a component through its Service, so it has returned only once the
Service's EndpointSlices list the new pods as ready and no terminating one. Everything goes
through a CommandRunner, so unit tests see the exact plan.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from harness.cluster import plans
from harness.cluster.diagnostics import containers
from harness.cluster.rollout import RolloutWaiter
from harness.cluster.runner import CommandRunner
from harness.errors import ClusterError
from harness.waiting import Waiter, WaitPolicy

# Pods of a scaled-down workload end within their grace period (the charts keep the default 30 s).
STOP_TIMEOUT_S = 120.0


class UnknownComponent(ClusterError):
    pass


@dataclass
class Scaled:
    """A workload this session scaled down, and the replicas to give it back."""

    ref: str  # deployment/NAME or statefulset/NAME
    replicas: int


def workload_replicas(doc: str) -> list[Scaled]:
    """(kind/name, spec.replicas) of every workload in `kubectl get deployment,statefulset -o json`."""
    items = json.loads(doc or "{}").get("items", [])
    return [
        Scaled(f"{item['kind'].lower()}/{item['metadata']['name']}", int((item.get("spec") or {}).get("replicas", 1)))
        for item in items
    ]


def routed(doc: str) -> bool:
    """True when every EndpointSlice in `kubectl get endpointslices -o json` has a ready endpoint
    and none that is terminating (a component without a Service has no slices: nothing to wait for).

    Conditions per endpoint as in discovery.k8s.io/v1 EndpointConditions (ready, terminating).
    """
    for piece in json.loads(doc or "{}").get("items", []):
        conditions = [e.get("conditions") or {} for e in piece.get("endpoints") or []]
        if not any(c.get("ready") for c in conditions) or any(c.get("terminating") for c in conditions):
            return False
    return True


def pod_names(doc: str) -> list[str]:
    return [pod["metadata"]["name"] for pod in json.loads(doc or "{}").get("items", [])]


@dataclass
class ComponentControl:
    runner: CommandRunner
    waiter: Waiter
    namespace: str
    release: str
    context: str = ""
    say: Callable[[str], None] = print
    stop_policy: WaitPolicy = WaitPolicy(timeout=STOP_TIMEOUT_S, initial=0.5, cap=2)
    rollout_policy: WaitPolicy = WaitPolicy(timeout=300, initial=1, cap=5)
    route_policy: WaitPolicy = WaitPolicy(timeout=60, initial=0.2, cap=0.5)
    _stopped: dict[str, list[Scaled]] = field(default_factory=dict)

    def _selector(self, component: str) -> str:
        return plans.instance_selector(self.release, component)

    def _pods(self, component: str) -> dict[str, Any]:
        argv = plans.kubectl_get_pods(self.namespace, self._selector(component), self.context)
        found: dict[str, Any] = json.loads(self.runner.run(argv).stdout or "{}")
        return found

    def stop(self, component: str) -> None:
        """Scale the component's workloads to 0 and return once none of its pods is left."""
        argv = plans.kubectl_get_workloads(self.namespace, self.release, self.context, component)
        workloads = [w for w in workload_replicas(self.runner.run(argv).stdout) if w.replicas > 0]
        if not workloads and component not in self._stopped:
            raise UnknownComponent(f"release {self.release} has no running workload with component {component!r}")
        self._stopped.setdefault(component, []).extend(workloads)
        for workload in workloads:
            self.say(f"scaling {workload.ref} to 0 replicas to inject a fault ({component} down)")
            self.runner.run(plans.kubectl_scale(workload.ref, 0, self.namespace, self.context))

        def gone() -> bool | None:
            return not self._pods(component).get("items") or None

        self.waiter.until(gone, self.stop_policy, what=f"the {component} pods to terminate in {self.namespace}")

    def start(self, component: str) -> None:
        """Scale the component's workloads back to the replicas `stop` found, then wait until they
        are ready and their Services route to them."""
        workloads = self._stopped.pop(component, [])
        for workload in workloads:
            self.say(f"scaling {workload.ref} back to {workload.replicas} replica(s)")
            self.runner.run(plans.kubectl_scale(workload.ref, workload.replicas, self.namespace, self.context))
        RolloutWaiter(
            self.runner, self.waiter, self.namespace, self.release, self.context, self.rollout_policy, say=self.say
        ).wait_all({component})

        def back() -> bool | None:
            argv = plans.kubectl_get_endpointslices(self.namespace, self._selector(component), self.context)
            return routed(self.runner.run(argv).stdout) or None

        self.waiter.until(back, self.route_policy, what=f"the {component} Services to route to its new pods")
        self.say(f"{component} is back: its Services route to its ready pods")

    def log(self, component: str) -> str:
        """Every container log of the component's current pods (may hold keys: never print it whole)."""
        texts = []
        # Pods of a finished rollout that are still terminating are not the component any more.
        current = [p for p in self._pods(component).get("items", []) if not p["metadata"].get("deletionTimestamp")]
        for pod in current:
            name = pod["metadata"]["name"]
            for container in containers(pod):
                argv = plans.kubectl_logs(name, container, self.namespace, self.context)
                result = self.runner.run(argv, check=False)
                texts.append(result.stdout if result.ok else "")
        return "".join(texts)
