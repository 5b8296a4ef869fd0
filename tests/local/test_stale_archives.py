"""Stale subchart archives (`helm dependency build` output) never reach a render silently.

A copy of charts/ gets an edited gateway Lua (a marker line) plus a packaged, older
maas-gateway archive and a Chart.lock in charts/rag. Every command that renders the charts
(make up, make e2e and so every pytest run, scripts/install.sh --dry-run) must refuse in one
line naming both files and `make clean-charts`; after `make clean-charts` the render carries
the edit. `helm package` for a release still bundles the linked subcharts' current sources.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest
from harness.chart_archives import remove_stale_archives, stale_archives
from harness.paths import BIN_DIR, CHARTS_DIR, REPO_ROOT
from harness.render import helm_template
from harness.tools import require

pytestmark = pytest.mark.local

MARKER = "-- stale-archive-marker: this line is newer than any packaged gateway"
COMMAND_TIMEOUT_S = 120  # a refusal comes before anything starts; make e2e loads pytest first


def _plant(charts: Path) -> list[Path]:
    """Package the gateway as it is now into charts/rag/charts/, then edit its source."""
    helm = str(require(str(BIN_DIR / "helm")))
    subprocess.run([helm, "package", str(charts / "maas-gateway"), "-d", str(charts / "rag" / "charts")],
                   check=True, capture_output=True)  # fmt: skip
    (charts / "rag" / "Chart.lock").write_text("dependencies: []\n")
    with (charts / "maas-gateway" / "files" / "gateway.lua").open("a") as lua:
        lua.write(f"\n{MARKER}\n")
    return [charts / "rag" / "Chart.lock", charts / "rag" / "charts" / "maas-gateway-0.1.0.tgz"]


@pytest.fixture
def planted(tmp_path: Path) -> tuple[Path, list[Path]]:
    charts = tmp_path / "charts"
    shutil.copytree(CHARTS_DIR, charts, symlinks=True)  # charts/rag/charts/* stay relative links
    return charts, _plant(charts)


def _run(argv: list[str], charts: Path, run_name: str) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"RAG_CHARTS_DIR": str(charts), "RAG_RUN_NAME": run_name}
    return subprocess.run(argv, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S)


def test_the_check_finds_the_planted_files_and_nothing_on_the_tree(planted):
    charts, files = planted
    assert stale_archives(charts) == files
    assert stale_archives(CHARTS_DIR) == [], "the working tree itself holds stale archives: run make clean-charts"


@pytest.mark.parametrize(
    "argv",
    [
        pytest.param(["make", "-o", "bootstrap", "up"], id="make up"),
        pytest.param(["make", "-o", "bootstrap", "e2e", "MAAS_ENDPOINT="], id="make e2e"),
        pytest.param(["make", "-o", "bootstrap", "lint"], id="make lint"),
        pytest.param(["scripts/install.sh", "--dry-run", "--target", "existing"], id="install.sh --dry-run"),
        pytest.param([".cache/venv/bin/python", "-m", "pytest", "tests/meta", "--collect-only", "-q"], id="meta tests"),
    ],
)
def test_every_render_command_refuses_naming_the_files_and_the_clean_command(planted, argv):
    charts, files = planted
    result = _run(argv, charts, "test-stale-archives")
    out = result.stdout + result.stderr
    assert result.returncode != 0, out
    lines = [line for line in out.splitlines() if "stale subchart archives" in line]
    assert lines, out
    for path in files:
        assert str(path) in lines[0], lines[0]
    assert "make clean-charts" in lines[0]
    assert "Traceback" not in out
    assert "[local] starting" not in out, "a component started despite the stale archives"


def test_clean_charts_removes_them_and_the_render_carries_the_current_sources(planted):
    charts, files = planted
    cleaned = _run(["make", "clean-charts"], charts, "test-stale-archives")
    assert cleaned.returncode == 0, cleaned.stdout + cleaned.stderr
    assert all(str(p) in cleaned.stdout for p in files), cleaned.stdout
    assert not any(p.exists() for p in files)
    rendered = helm_template(charts / "rag", "rag", [REPO_ROOT / "values" / "local.yaml"], helm=str(BIN_DIR / "helm"))
    assert MARKER in str(rendered), "the render does not carry the edited gateway Lua"


def test_the_archives_are_git_ignored(planted):
    _, files = planted
    relative = ["charts/rag/Chart.lock", "charts/rag/charts/maas-gateway-0.1.0.tgz"]
    result = subprocess.run(["git", "check-ignore", *relative], cwd=REPO_ROOT, capture_output=True, text=True)
    assert result.stdout.split() == relative, result.stdout + result.stderr


def test_helm_package_bundles_the_linked_subcharts_current_sources(tmp_path):
    charts = tmp_path / "charts"
    shutil.copytree(CHARTS_DIR, charts, symlinks=True)
    with (charts / "maas-gateway" / "files" / "gateway.lua").open("a") as lua:
        lua.write(f"\n{MARKER}\n")
    assert remove_stale_archives(charts) == []
    helm = str(BIN_DIR / "helm")
    subprocess.run([helm, "package", str(charts / "rag"), "-d", str(tmp_path)], check=True, capture_output=True)
    package = tmp_path / "rag-0.1.0.tgz"
    with tarfile.open(package) as archive:
        names = archive.getnames()
        lua = archive.extractfile("rag/charts/maas-gateway/files/gateway.lua")
        assert lua is not None and MARKER in lua.read().decode()
    assert {"rag/charts/llama-stack/Chart.yaml", "rag/charts/vllm-gpu/Chart.yaml"} <= set(names)
    assert not [n for n in names if n.endswith((".tgz", "Chart.lock"))], names
    rendered = helm_template(package, "rag", [REPO_ROOT / "values" / "local.yaml"], helm=helm)
    assert MARKER in str(rendered)
