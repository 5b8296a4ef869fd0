"""The local target's lifecycle: one stack per name, clean shutdown, clear start-up errors."""

from __future__ import annotations

import socket
from pathlib import Path

import httpx
import pytest
from harness.local import processes
from harness.local.ports import Ports
from harness.local.stack import AlreadyRunning
from harness.targets import TargetOptions
from harness.targets.local import LocalTarget, NotRunning

pytestmark = pytest.mark.local


def _listening(port: int) -> bool:
    return processes.port_in_use(port)


def test_status_lists_endpoints_keys_and_models(local_stack):
    _, endpoints = local_stack
    assert endpoints.gateway_url.startswith("http://127.0.0.1:")
    assert len(endpoints.keys["free"]) >= 2 and len(endpoints.keys["premium"]) >= 2
    assert len(endpoints.keys["enterprise"]) >= 1
    assert "simulated-model" in endpoints.gateway_models
    assert "maas/simulated-model" in endpoints.llama_stack_models


def test_second_up_is_refused_and_starts_nothing(local_stack):
    target, _ = local_stack
    before = target.run.alive_pids()
    with pytest.raises(AlreadyRunning, match="already running"):
        LocalTarget(TargetOptions(run_name="test-local")).up()
    assert target.run.alive_pids() == before


def test_busy_port_names_the_component(tmp_path: Path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        target = LocalTarget(TargetOptions(run_name="test-busy-port"), Ports(gateway=port))
        with pytest.raises(processes.StartError, match=rf"gateway: port 127.0.0.1:{port} is already in use"):
            target.up()
    assert target.run.alive_pids() == {}


def test_failing_component_reports_the_end_of_its_log(tmp_path: Path):
    # A listener address it cannot bind makes Envoy exit at start-up.
    overlay = tmp_path / "bad.yaml"
    overlay.write_text("maas-gateway:\n  envoy:\n    listenAddress: 203.0.113.1\n")
    target = LocalTarget(TargetOptions(run_name="test-bad-envoy", values=[overlay]))
    with pytest.raises(processes.StartError) as failure:
        target.up()
    message = str(failure.value)
    assert failure.value.summary.startswith("gateway (")  # the last line says what failed
    assert "exited during start-up" in message or "not healthy" in message
    assert "end of" in message and "envoy" in message.lower()
    assert target.run.alive_pids() == {}


def test_down_leaves_no_process_and_no_port(tmp_path: Path):
    target = LocalTarget(TargetOptions(run_name="test-down"))
    endpoints = target.up()
    pids = target.run.recorded_pids()
    ports = Ports(**target.run.get("ports")).as_dict()
    assert httpx.get(f"{endpoints.llama_stack_url}/v1/health").status_code == 200

    target.down()

    assert [name for name, pid in pids.items() if processes.alive(pid)] == []
    assert [name for name, port in ports.items() if _listening(port)] == []
    with pytest.raises(NotRunning):
        target.status()
    assert target.run.root.is_dir()  # kept for inspection
