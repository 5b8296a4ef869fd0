"""Acceptance 1: `helm lint --strict` passes for every chart under Helm 4 and Helm 3."""

from __future__ import annotations

import pytest

from charts.helm import HelmBinary, Renderer
from charts.layout import CHARTS, chart_present

pytestmark = pytest.mark.charts


@pytest.mark.parametrize("chart", CHARTS)
def test_lint_strict(helm: HelmBinary, renderer: Renderer, chart: str) -> None:
    chart_present(chart)
    result = renderer.lint(helm, chart)
    assert result.ok, f"{result.describe()}\n--- stdout ---\n{result.stdout}"
