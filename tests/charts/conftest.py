"""Fixtures for the chart tests: helm binaries, the shared render cache, charts and overlays."""

from __future__ import annotations

import pytest

from charts import helm as helm_mod
from charts.helm import HelmBinary, Renderer

HELM_LABELS = tuple(spec.label for spec in helm_mod.HELM_SPECS)


@pytest.fixture(scope="session")
def renderer(tmp_path_factory: pytest.TempPathFactory) -> Renderer:
    return Renderer(tmp_path_factory.mktemp("helm"))


@pytest.fixture(params=HELM_LABELS)
def helm(request: pytest.FixtureRequest) -> HelmBinary:
    """Each test that renders runs once per Helm major version."""
    return helm_mod.binary(request.param)


@pytest.fixture(scope="session")
def helm4() -> HelmBinary:
    return helm_mod.binary("helm4")
