"""Waiting for every workload of a release to roll out, saying what is awaited and why."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from harness.cluster import plans
from harness.cluster.runner import CommandRunner
from harness.errors import StackNotReady
from harness.waiting import ROLLOUT, Waiter, WaitPolicy

# Start order of the stack (docs/architecture.md rule 6); unknown components go last.
COMPONENT_ORDER = ("redis", "ratelimit", "model-server", "gateway", "pgvector", "embeddings", "llama-stack")

WHY = {
    "redis": "the rate limiter keeps its per-key counters there",
    "ratelimit": "the gateway asks it for every request's token and request budget",
    "model-server": "it serves the model (the simulator starts in seconds; vLLM downloads and loads weights, minutes)",
    "gateway": "it is the API-key and rate-limit entry point that tests and llama-stack call",
    "pgvector": "llama-stack keeps its RAG vector store there",
    "embeddings": "it embeds documents and queries for RAG (its first start downloads the model)",
    "llama-stack": "it becomes ready once its model providers answer, which registers the models",
}

# Waiting reasons that will not fix themselves: fail now with the pod's story instead of timing out.
FATAL_REASONS = {"CreateContainerConfigError", "InvalidImageName", "ErrImageNeverPull"}

Say = Callable[[str], None]


@dataclass(frozen=True)
class Workload:
    kind: str  # deployment | statefulset
    name: str
    component: str

    @property
    def ref(self) -> str:
        return f"{self.kind}/{self.name}"


class RolloutFailed(StackNotReady):
    pass


def parse_workloads(doc: str) -> list[Workload]:
    """Workloads from `kubectl get deployments,statefulsets -o json`, in start order."""
    items = json.loads(doc or "{}").get("items", [])
    found = [
        Workload(
            kind=item["kind"].lower(),
            name=item["metadata"]["name"],
            component=item["metadata"].get("labels", {}).get("app.kubernetes.io/component", ""),
        )
        for item in items
    ]
    return sorted(found, key=_start_rank)


def _start_rank(w: Workload) -> tuple[int, str]:
    rank = COMPONENT_ORDER.index(w.component) if w.component in COMPONENT_ORDER else len(COMPONENT_ORDER)
    return rank, w.name


def pod_problems(doc: str) -> list[str]:
    """One line per pod that is not ready, from `kubectl get pods -o json`: phase, reason, restarts."""
    lines = []
    for pod in json.loads(doc or "{}").get("items", []):
        name = pod["metadata"]["name"]
        status = pod.get("status", {})
        ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions", []))
        if ready:
            continue
        lines.append(f"{name}: {_pod_story(status)}")
    return lines


def _pod_story(status: dict[str, Any]) -> str:
    parts = [status.get("phase", "Unknown")]
    for cond in status.get("conditions", []):
        if cond.get("type") == "PodScheduled" and cond.get("status") == "False":
            parts.append(f"unschedulable: {cond.get('message', cond.get('reason', ''))}")
    for cs in status.get("initContainerStatuses", []) + status.get("containerStatuses", []):
        waiting = cs.get("state", {}).get("waiting")
        if waiting:
            parts.append(f"{cs['name']} {waiting.get('reason', 'waiting')}")
        if cs.get("restartCount"):
            parts.append(f"{cs['name']} restarted {cs['restartCount']}x")
    return ", ".join(parts)


def fatal_reason(doc: str) -> str | None:
    for pod in json.loads(doc or "{}").get("items", []):
        status = pod.get("status", {})
        for cs in status.get("initContainerStatuses", []) + status.get("containerStatuses", []):
            reason = cs.get("state", {}).get("waiting", {}).get("reason")
            if reason in FATAL_REASONS:
                return f"{pod['metadata']['name']}/{cs['name']}: {reason}"
    return None


@dataclass
class RolloutWaiter:
    runner: CommandRunner
    waiter: Waiter
    namespace: str
    release: str
    context: str = ""
    policy: WaitPolicy = ROLLOUT
    step_timeout_s: int = 30  # each `kubectl rollout status` call; the Waiter retries until policy.timeout
    say: Say = print

    def workloads(self) -> list[Workload]:
        doc = self.runner.run(plans.kubectl_get_workloads(self.namespace, self.release, self.context)).stdout
        return parse_workloads(doc)

    def wait_all(self, only: set[str] | None = None) -> list[Workload]:
        """Wait for every workload (or those whose component is in `only`), in start order."""
        workloads = [w for w in self.workloads() if only is None or w.component in only]
        if not workloads:
            raise RolloutFailed(f"no deployments or statefulsets with instance={self.release} in {self.namespace}")
        for index, workload in enumerate(workloads, 1):
            why = WHY.get(workload.component, "it is part of the release")
            self.say(f"[{index}/{len(workloads)}] waiting for {workload.ref} to roll out: {why}")
            self.wait_one(workload)
            self.say(f"[{index}/{len(workloads)}] {workload.ref} is ready")
        return workloads

    def wait_one(self, workload: Workload) -> None:
        argv = plans.kubectl_rollout_status(workload.ref, self.namespace, self.step_timeout_s, self.context)

        def attempt() -> bool | None:
            if self.runner.run(argv, check=False).ok:
                return True
            self._check_fatal(workload)
            return None

        def progress(_attempt: int, elapsed: float) -> None:
            problems = self._problems(workload) or ["pods starting"]
            self.say(f"      still waiting for {workload.ref} after {elapsed:.0f}s: {'; '.join(problems)}")

        self.waiter.until(attempt, self.policy, what=f"{workload.ref} in {self.namespace}", progress=progress)

    def _pods(self, workload: Workload) -> str:
        selector = plans.instance_selector(self.release, workload.component)
        return self.runner.run(plans.kubectl_get_pods(self.namespace, selector, self.context), check=False).stdout

    def _problems(self, workload: Workload) -> list[str]:
        return pod_problems(self._pods(workload)) if workload.component else []

    def _check_fatal(self, workload: Workload) -> None:
        if workload.component and (reason := fatal_reason(self._pods(workload))):
            raise RolloutFailed(f"{workload.ref} cannot start: {reason} (see `diagnose` for its events)")
