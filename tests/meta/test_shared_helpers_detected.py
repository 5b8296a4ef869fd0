"""Tests of the shared-helper check: a copy of charts/ where one chart's securityContext helper drifts
(a changed line, a dropped OpenShift rule, a removed definition) must fail it; the unchanged copy passes."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from charts.layout import CHARTS
from charts.shared_helpers import drift
from harness.paths import CHARTS_DIR

pytestmark = [pytest.mark.meta, pytest.mark.charts]

HELPERS = "templates/_helpers.tpl"
DRIFTS = {
    "a dropped OpenShift rule": ("maas-gateway", '{{- $sc = omit $sc "runAsUser" "runAsGroup" "fsGroup" -}}\n', ""),
    "another default mode": ("vllm-gpu", '| default "auto" -}}', '| default "disabled" -}}'),
    "an edited comment": ("llama-stack", "(keep them).", "(keep all)."),
    "no definition": ("llama-stack", '{{- define "llama-stack.securityContext" -}}', '{{- define "llama-stack.sc" -}}'),
}


def _charts(tmp_path: Path) -> Path:
    dest = tmp_path / "charts"
    shutil.copytree(CHARTS_DIR, dest, symlinks=True)
    return dest


def test_the_unchanged_copy_passes(tmp_path: Path):
    assert drift(_charts(tmp_path), CHARTS) == []


@pytest.mark.parametrize("name", sorted(DRIFTS))
def test_a_drifted_copy_fails(tmp_path: Path, name: str):
    chart, old, new = DRIFTS[name]
    charts = _charts(tmp_path)
    path = charts / chart / HELPERS
    text = path.read_text()
    assert old in text, f"{chart}/{HELPERS} no longer contains {old!r}: update this meta test"
    path.write_text(text.replace(old, new, 1))
    found = drift(charts, CHARTS)
    assert len(found) == 1 and found[0].startswith(f"charts/{chart}"), found
