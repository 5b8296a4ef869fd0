"""The kube lane's own tests: they need the cluster `--target kube` builds, so they run only there.

Tests marked `lane_teardown` (the cleanup test tears the whole cluster down) run after every
other test of the session.
"""

from __future__ import annotations

import pytest

LAST = "lane_teardown"


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
