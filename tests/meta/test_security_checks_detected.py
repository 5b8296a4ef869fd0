"""The security-context tests fail when the mechanism they check is broken.

Two breakages of a copy of the charts, each rendered with Helm 4 and put through the same
checks tests/charts/test_security.py runs:
  1. the OpenShift adaptation keeps the IDs  -> values/openshift.yaml renders fixed UIDs;
  2. the gateway's envoy pod loses its IDs   -> the Kind render has a pod without a numeric user.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from charts.helm import Renderer, binary
from charts.manifests import pod_spec, ref, workloads
from charts.test_security import id_problems
from harness.paths import CHARTS_DIR, VALUES_DIR

pytestmark = pytest.mark.meta

OMIT = '{{- $sc = omit $sc "runAsUser" "runAsGroup" "fsGroup" -}}'
ENVOY_IDS = "    runAsUser: 101\n    runAsGroup: 101\n    fsGroup: 101\n"


def _broken_charts(tmp_path: Path, path: str, old: str, new: str) -> Path:
    charts = tmp_path / "charts"
    shutil.copytree(CHARTS_DIR, charts, symlinks=True)
    target = charts / path
    text = target.read_text()
    assert old in text, f"{path} no longer contains {old!r}: update this meta test"
    target.write_text(text.replace(old, new))
    return charts


def _problems(charts: Path, tmp_path: Path, overlay: str, *, openshift: bool) -> list[str]:
    renderer = Renderer(tmp_path / "render", source=charts)
    result = renderer.template(binary("helm4"), "rag", values_files=(VALUES_DIR / f"{overlay}.yaml",))
    assert result.ok, result.describe()
    docs = result.docs()
    return [p for w in workloads(docs) for p in id_problems(ref(w), pod_spec(w) or {}, openshift=openshift)]


def test_ids_kept_on_openshift_are_caught(tmp_path: Path) -> None:
    charts = _broken_charts(tmp_path, "maas-gateway/templates/_helpers.tpl", OMIT, "")
    problems = _problems(charts, tmp_path, "openshift", openshift=True)
    assert any("maas-gateway" in p and "runAsUser" in p for p in problems), problems


def test_a_pod_without_numeric_ids_is_caught(tmp_path: Path) -> None:
    charts = _broken_charts(tmp_path, "maas-gateway/values.yaml", ENVOY_IDS, "")
    problems = _problems(charts, tmp_path, "kind", openshift=False)
    assert any("envoy" in p.lower() or "maas-gateway" in p for p in problems), problems
    assert all("runAsUser" in p or "runAsGroup" in p or "fsGroup" in p for p in problems), problems


def test_the_unbroken_charts_pass_both_checks(tmp_path: Path) -> None:
    assert not _problems(CHARTS_DIR, tmp_path, "openshift", openshift=True)
    assert not _problems(CHARTS_DIR, tmp_path / "kind", "kind", openshift=False)
