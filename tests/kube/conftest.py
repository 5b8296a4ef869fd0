"""The kube lane's own tests: they need the cluster `--target kube` builds, so they run only there.

Tests marked `lane_teardown` (the cleanup test tears the whole cluster down) run after every
other test of the session.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from harness.cluster import plans
from harness.cluster.runner import SubprocessRunner
from harness.kube.config import CONTEXT

from .network_probe import Probe

LAST = "lane_teardown"
PROBE_NAME = "network-probe"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"{LAST}: tears the kube cluster down; runs after every other test")
    config.addinivalue_line("markers", "kube: needs the kube target's real cluster")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = [i for i in items if i.get_closest_marker("kube")]
    if config.getoption("--target") != "kube":
        skip = pytest.mark.skip(reason="kube lane test: runs with --target kube (`make test-kube`)")
        for item in here:
            item.add_marker(skip)
        return
    items.sort(key=lambda item: item.get_closest_marker(LAST) is not None)


@pytest.fixture(scope="module")
def release(target: Any, endpoints: Any) -> tuple[str, str]:
    """(namespace, release) of the session's install."""
    return target.deployment().namespace, target.options.release


@pytest.fixture(scope="module")
def gateway_values(release: tuple[str, str]) -> dict[str, Any]:
    """maas-gateway's values as installed (`helm get values --all`)."""
    namespace, name = release
    doc = SubprocessRunner().run(plans.helm_get_values(name, namespace, CONTEXT, output="json")).stdout
    return json.loads(doc)["maas-gateway"]


@pytest.fixture(scope="module")
def probe(release: tuple[str, str]) -> Iterator[Probe]:
    started = Probe.start(PROBE_NAME, release[0])
    yield started
    started.delete()
