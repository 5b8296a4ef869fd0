"""The real-model lane: its own local stack (run `model-lane`) with a real small model behind the
gateway in the inference simulator's place. Opt-in: `make test-model` sets RAG_MODEL_LANE=1 after
installing the model; without it every test here skips, saying so.

RAG_MODEL_LANE_VALUES: extra overlays (space-separated paths) after values/real-model.yaml; the
meta tests use it to break the stack under the lane.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from harness import real_model
from harness.endpoints import Endpoints
from harness.local.ports import Ports
from harness.loopback import free_ports
from harness.paths import values_file
from harness.targets.base import TargetOptions
from harness.targets.local import LocalTarget

LANE_ENV = "RAG_MODEL_LANE"
VALUES_ENV = "RAG_MODEL_LANE_VALUES"
RUN_NAME = "model-lane"


@dataclass(frozen=True)
class Lane:
    endpoints: Endpoints
    model: real_model.RealModel
    key: str  # a gateway key of the harness's own tier: the lane's calls never hit a budget


@pytest.fixture(scope="session")
def lane() -> Iterator[Lane]:
    if os.environ.get(LANE_ENV) != "1":
        pytest.skip("real-model lane not requested: run `make test-model`")
    real_model.check_installed()
    extra = [Path(p) for p in os.environ.get(VALUES_ENV, "").split()]
    options = TargetOptions(values=[values_file("real-model"), *extra], run_name=RUN_NAME)
    (port,) = free_ports(1)
    target = LocalTarget(options, Ports(model_server=port))
    target.run.root.mkdir(parents=True, exist_ok=True)
    model = real_model.start(port, target.run.root / "real-model.log")
    try:
        endpoints = target.up()
        try:
            yield Lane(endpoints, model, endpoints.keys["internal"][0])
        finally:
            target.down()
    finally:
        model.stop()
