"""The GPU check against recorded `kubectl get nodes -o json` lists: capacity, initializing, none."""

from __future__ import annotations

from pathlib import Path

import pytest
from harness.cluster.gpu import GpuState, NoGpu, check_gpu, classify
from harness.cluster.runner import CommandResult, RecordingRunner
from harness.waiting import FakeClock

DATA = Path(__file__).parent / "data"
CAPACITY = (DATA / "nodes-gpu-capacity.json").read_text()
INITIALIZING = (DATA / "nodes-gpu-initializing.json").read_text()
NONE = (DATA / "nodes-no-gpu.json").read_text()
GET_NODES = ["kubectl", "--context", "ctx", "get", "nodes", "-o", "json"]


def nodes_runner(*documents: str) -> RecordingRunner:
    """Answers `kubectl get nodes` with the documents in turn (the last one repeats)."""
    queue = list(documents)

    def answer(argv: list[str]) -> CommandResult:
        doc = queue.pop(0) if len(queue) > 1 else queue[0]
        return CommandResult(argv, 0, doc)

    return RecordingRunner(responses={("kubectl", "--context", "ctx", "get", "nodes"): answer})


def test_classify_capacity_names_the_gpu_node() -> None:
    report = classify(CAPACITY)
    assert report.state is GpuState.READY
    assert report.gpus == {"ip-10-0-45-67.ec2.internal": 1}


def test_classify_labelled_without_capacity_is_initializing() -> None:
    report = classify(INITIALIZING)
    assert report.state is GpuState.INITIALIZING
    assert report.labelled == ["ip-10-0-45-67.ec2.internal"]
    assert "GPU operator is still initializing" in report.describe()


def test_classify_no_gpu_at_all() -> None:
    report = classify(NONE)
    assert report.state is GpuState.NONE
    assert "--simulator" in report.describe()


def test_zero_capacity_is_not_a_gpu() -> None:
    doc = CAPACITY.replace('"nvidia.com/gpu": "1"', '"nvidia.com/gpu": "0"')
    assert classify(doc).state is GpuState.INITIALIZING  # still labelled present, but nothing schedulable


def test_check_passes_at_once_with_capacity() -> None:
    clock = FakeClock()
    lines: list[str] = []
    report = check_gpu(nodes_runner(CAPACITY), clock.waiter(), context="ctx", say=lines.append)
    assert report.state is GpuState.READY
    assert clock.sleeps == []
    assert any("GPU capacity found" in line for line in lines)


def test_check_fails_early_without_gpu_nodes() -> None:
    clock = FakeClock()
    runner = nodes_runner(NONE)
    with pytest.raises(NoGpu, match="no node advertises nvidia.com/gpu"):
        check_gpu(runner, clock.waiter(), context="ctx", timeout=600, say=lambda _: None)
    assert clock.sleeps == []  # failed early: no waiting at all
    assert runner.calls == [GET_NODES]


def test_check_waits_while_operator_initializes_then_succeeds() -> None:
    clock = FakeClock()
    lines: list[str] = []
    runner = nodes_runner(INITIALIZING, INITIALIZING, INITIALIZING, CAPACITY)
    report = check_gpu(runner, clock.waiter(), context="ctx", timeout=600, say=lines.append)
    assert report.state is GpuState.READY
    assert runner.calls == [GET_NODES] * 4
    assert clock.sleeps == [5, 10]  # exponential backoff from 5 s, on the fake clock
    assert any("still initializing" in line for line in lines)
    assert any("GPU operator is still initializing" in line for line in lines)


def test_check_gives_up_after_gpu_timeout_with_the_reason() -> None:
    clock = FakeClock()
    with pytest.raises(NoGpu, match="still initializing.*gave up waiting for GPU capacity"):
        check_gpu(nodes_runner(INITIALIZING), clock.waiter(), context="ctx", timeout=120, say=lambda _: None)
    assert 120 <= clock.now < 120 + 30  # stopped at the timeout, at most one capped pause later
    assert max(clock.sleeps or [0]) <= 30
