"""Fixtures for the chart tests: helm binaries, the shared render cache, charts and overlays."""

from __future__ import annotations

import pytest
import yaml

from charts import helm as helm_mod
from charts.helm import HelmBinary, Renderer
from harness.paths import CHARTS_DIR

HELM_LABELS = tuple(spec.label for spec in helm_mod.HELM_SPECS)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "charts: Helm chart tests (lint, render, schemas, contracts)")


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


def chart_values(name: str) -> dict:
    """A chart's own values.yaml (for defaults the tests compare against)."""
    return yaml.safe_load((CHARTS_DIR / name / "values.yaml").read_text()) or {}
