"""The charts' README.md files are what helm-docs generates from README.md.gotmpl and the `# --`
comments of values.yaml (`make docs`), and every row of their values tables has a description."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from charts.layout import CHARTS
from harness import chart_docs
from harness.paths import CHARTS_DIR, REPO_ROOT
from harness.tools import find

pytestmark = pytest.mark.lint

# A chart without subchart links, so a plain copy of its directory is a complete chart.
COPIED_CHART = "vllm-gpu"
HARNESS_DOCS_TIMEOUT_S = 60  # helm-docs renders a chart in well under a second; this is a hang guard


@pytest.fixture(scope="module", autouse=True)
def helm_docs_installed() -> None:
    if find("helm-docs") is None:
        message = "helm-docs is not installed; run `make bootstrap`"
        if os.environ.get("RAG_REQUIRE_TOOLS") == "1":
            pytest.fail(message)
        pytest.skip(message)


def test_every_chart_has_a_readme_template():
    found = [chart.name for chart in chart_docs.documented_charts(CHARTS_DIR)]
    assert sorted(found) == sorted(CHARTS), f"charts under {CHARTS_DIR}: {found}, expected {CHARTS}"
    missing = [name for name in CHARTS if not (CHARTS_DIR / name / chart_docs.TEMPLATE).is_file()]
    assert not missing, f"charts without {chart_docs.TEMPLATE}: {missing}"


@pytest.mark.parametrize("chart", CHARTS)
def test_committed_readme_is_generated(chart: str):
    stale = chart_docs.stale_readme(CHARTS_DIR / chart)
    assert stale is None, f"{stale.describe()}\n{stale.diff}"


@pytest.mark.parametrize("chart", CHARTS)
def test_every_value_row_has_a_description(chart: str):
    readme = chart_docs.render(CHARTS_DIR / chart)
    assert "| Key | Type | Default | Description |" in readme, f"{chart}: the README has no generated values table"
    missing = chart_docs.undescribed_keys(readme)
    assert not missing, f"{chart}/values.yaml: give these keys (or a parent map) a `# --` comment: {missing}"


@pytest.mark.parametrize("chart", CHARTS)
def test_descriptions_show_their_placeholders(chart: str):
    hidden = chart_docs.hidden_placeholders(chart_docs.render(CHARTS_DIR / chart))
    assert not hidden, f"{chart}/values.yaml: put these in backticks, Markdown hides them as HTML tags: {hidden}"


# The checks above must be able to fail: break a copy of a chart and see them report it.


@pytest.fixture
def chart_copy(tmp_path: Path) -> Path:
    copy = tmp_path / COPIED_CHART
    shutil.copytree(CHARTS_DIR / COPIED_CHART, copy)
    assert chart_docs.stale_readme(copy) is None, "the unedited copy must pass, or the edits below prove nothing"
    return copy


def _edit(path: Path, pattern: str, replacement: str) -> None:
    text = path.read_text()
    edited, count = re.subn(pattern, replacement, text, count=1, flags=re.MULTILINE)
    assert count == 1, f"{pattern!r} not found in {path}"
    path.write_text(edited)


def test_a_changed_value_comment_makes_the_readme_stale(chart_copy: Path):
    _edit(chart_copy / "values.yaml", r"^(\s*# -- )", r"\1Edited without make docs. ")
    stale = chart_docs.stale_readme(chart_copy)
    assert stale is not None and stale.chart == COPIED_CHART
    assert "run `make docs`" in stale.describe() and f"charts/{COPIED_CHART}/README.md" in stale.describe()
    assert "+| " in stale.diff and "Edited without make docs." in stale.diff


def test_changed_prose_makes_the_readme_stale(chart_copy: Path):
    _edit(chart_copy / chart_docs.TEMPLATE, r"^## ", "## Edited ")
    stale = chart_docs.stale_readme(chart_copy)
    assert stale is not None and "## Edited " in stale.diff


def test_a_key_without_comment_is_reported(chart_copy: Path):
    _edit(chart_copy / "values.yaml", r"^# -- [^\n]*\n(?:#(?! --)[^\n]*\n)*(port: )", r"\1")
    assert chart_docs.undescribed_keys(chart_docs.render(chart_copy)) == ["port"]


def test_a_bare_placeholder_is_reported(chart_copy: Path):
    _edit(chart_copy / "values.yaml", r"^(# -- Port the server listens on)", r"\1 (see <release>)")
    assert chart_docs.hidden_placeholders(chart_docs.render(chart_copy)) == {"port": ["<release>"]}


def _harness_docs(charts_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "RAG_CHARTS_DIR": str(charts_dir)}
    argv = [sys.executable, "-m", "harness", "docs", *args]
    return subprocess.run(argv, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=HARNESS_DOCS_TIMEOUT_S)


def test_docs_check_names_the_stale_chart_and_make_docs_fixes_it(chart_copy: Path):
    """`make lint` runs `harness docs --check`, `make docs` runs `harness docs`."""
    _edit(chart_copy / "values.yaml", r"^(# -- Port the server listens on)", r"\1 (edited)")
    check = _harness_docs(chart_copy.parent, "--check")
    assert check.returncode == 1, check.stdout + check.stderr
    last = check.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: charts/{COPIED_CHART}/README.md ") and last.endswith("run `make docs`"), last
    regenerate = _harness_docs(chart_copy.parent)
    assert regenerate.returncode == 0 and f"charts/{COPIED_CHART}/README.md: regenerated" in regenerate.stdout
    assert "(edited)" in (chart_copy / "README.md").read_text()
    assert _harness_docs(chart_copy.parent, "--check").returncode == 0
