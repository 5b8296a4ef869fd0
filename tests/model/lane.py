"""Start and stop the real-model lane's stack: a local stack (run `model-lane`, tests/model/real-model.yaml)
whose gateway sends model calls to the real model, started first on the model server's port.

The lane's tests reuse a lane stack that is already running (the meta tests start one with a part
broken, then run the lane against it); otherwise they start one and stop it at the end.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from harness import real_model
from harness.endpoints import Endpoints
from harness.local.ports import Ports
from harness.loopback import free_ports
from harness.targets.base import TargetOptions
from harness.targets.local import LocalTarget

RUN_NAME = "model-lane"
# The lane's overlay over values/local.yaml: harness-only (it needs the model process started here).
OVERLAY = Path(__file__).with_name("real-model.yaml")


@dataclass(frozen=True)
class Lane:
    endpoints: Endpoints
    target: LocalTarget
    key: str  # a gateway key of the harness's own tier: the lane's calls never hit a budget


def _lane(target: LocalTarget, endpoints: Endpoints) -> Lane:
    return Lane(endpoints, target, endpoints.keys["internal"][0])


def running(run_name: str = RUN_NAME) -> Lane | None:
    """The lane stack already running under `run_name`, if any."""
    target = LocalTarget(TargetOptions(run_name=run_name))
    if not target.run.alive_pids():
        return None
    return _lane(target, target.status())


@contextmanager
def started(*, run_name: str = RUN_NAME, extra: tuple[Path, ...] = (), model: bool = True) -> Iterator[Lane]:
    """The lane stack with the real model behind its gateway; `model=False` starts no model (an
    overlay in `extra` puts another server on the model server's port)."""
    options = TargetOptions(values=[OVERLAY, *extra], run_name=run_name)
    (port,) = free_ports(1)
    target = LocalTarget(options, Ports(model_server=port))
    target.run.root.mkdir(parents=True, exist_ok=True)
    server = real_model.start(port, target.run.root / "real-model.log") if model else None
    try:
        endpoints = target.up()
        try:
            yield _lane(target, endpoints)
        finally:
            target.down()
    finally:
        if server is not None:
            server.stop()
