"""Fixtures for tests of the local target itself: each starts its own, separately named stack."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from harness.endpoints import Endpoints
from harness.targets import TargetOptions
from harness.targets.local import LocalTarget


def start_stack(run_name: str, overlay: dict | None, tmp_path: Path) -> LocalTarget:
    values = []
    if overlay is not None:
        path = tmp_path / f"{run_name}.yaml"
        path.write_text(yaml.safe_dump(overlay))
        values.append(path)
    target = LocalTarget(TargetOptions(run_name=run_name, values=values))
    target.up()
    return target


@pytest.fixture(scope="module")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalTarget, Endpoints]]:
    target = start_stack("test-local", None, tmp_path_factory.mktemp("local"))
    try:
        yield target, target.status()
    finally:
        target.down()
