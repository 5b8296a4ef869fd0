"""Does the cluster have a schedulable NVIDIA GPU? Answered from `kubectl get nodes -o json`.

Three states: some node advertises `nvidia.com/gpu` capacity (ready); nodes are labelled
`nvidia.com/gpu.present=true` by GPU feature discovery but the device plugin has not yet
registered capacity (the GPU operator is still initializing: wait); or no GPU at all (fail now).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from harness.cluster import plans
from harness.cluster.runner import CommandRunner
from harness.errors import ClusterError
from harness.waiting import Waiter, WaitPolicy, WaitTimeout

GPU_RESOURCE = "nvidia.com/gpu"
GPU_PRESENT_LABEL = "nvidia.com/gpu.present"


class GpuState(Enum):
    READY = "ready"
    INITIALIZING = "initializing"
    NONE = "none"


@dataclass(frozen=True)
class GpuReport:
    state: GpuState
    gpus: dict[str, int]  # node -> allocatable/capacity count (ready nodes only)
    labelled: list[str]  # nodes labelled gpu.present=true

    def describe(self) -> str:
        if self.state is GpuState.READY:
            nodes = ", ".join(f"{n} ({c})" for n, c in sorted(self.gpus.items()))
            return f"GPU capacity found: {nodes}"
        if self.state is GpuState.INITIALIZING:
            return (
                f"node(s) {', '.join(self.labelled)} carry {GPU_PRESENT_LABEL}=true but advertise no "
                f"{GPU_RESOURCE} capacity yet: the NVIDIA GPU operator is still initializing "
                "(driver, container toolkit and device plugin pods)"
            )
        return (
            f"no node advertises {GPU_RESOURCE} capacity and none is labelled {GPU_PRESENT_LABEL}=true: "
            "add a GPU node and install the NVIDIA GPU operator, or install with --simulator"
        )


def classify(nodes_json: str) -> GpuReport:
    gpus: dict[str, int] = {}
    labelled: list[str] = []
    for node in json.loads(nodes_json).get("items", []):
        name = node["metadata"]["name"]
        status = node.get("status", {})
        count = _count(status.get("capacity", {}).get(GPU_RESOURCE))
        if count > 0:
            gpus[name] = count
        if node["metadata"].get("labels", {}).get(GPU_PRESENT_LABEL) == "true":
            labelled.append(name)
    if gpus:
        return GpuReport(GpuState.READY, gpus, labelled)
    if labelled:
        return GpuReport(GpuState.INITIALIZING, gpus, sorted(labelled))
    return GpuReport(GpuState.NONE, gpus, labelled)


def _count(value: object) -> int:
    try:
        return int(str(value)) if value is not None else 0
    except ValueError:
        return 0


class NoGpu(ClusterError):
    pass


def check_gpu(
    runner: CommandRunner,
    waiter: Waiter,
    *,
    context: str = "",
    timeout: float = 600.0,
    say: Callable[[str], None] = print,
) -> GpuReport:
    """Return when a GPU is schedulable; wait while the operator initializes; raise NoGpu otherwise."""
    argv = plans.kubectl_get_nodes(context)
    report = classify(runner.run(argv).stdout)
    say(f"GPU check: {report.describe()}")
    if report.state is GpuState.READY:
        return report
    if report.state is GpuState.NONE:
        raise NoGpu(report.describe())

    say(f"GPU check: waiting up to {timeout:.0f}s for the device plugin to register {GPU_RESOURCE}")

    def ready() -> GpuReport | None:
        latest = classify(runner.run(argv).stdout)
        if latest.state is GpuState.NONE:
            raise NoGpu(f"GPU nodes disappeared while waiting: {latest.describe()}")
        return latest if latest.state is GpuState.READY else None

    def progress(_attempt: int, elapsed: float) -> None:
        say(f"GPU check: still initializing after {elapsed:.0f}s")

    try:
        report = waiter.until(ready, WaitPolicy(timeout, initial=5, cap=30), what="GPU capacity", progress=progress)
    except WaitTimeout as exc:
        raise NoGpu(f"{report.describe()}; {exc}. Check `kubectl get pods -n nvidia-gpu-operator`") from exc
    say(f"GPU check: {report.describe()}")
    return report
