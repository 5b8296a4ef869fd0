"""Flipping a promised chart default fails the chart tests of the promises.

Copies of charts/ with one security or accounting default flipped stand for the broken chart
(RAG_CHARTS_DIR points the chart tests at the copy); the tree itself is never changed. Each
flip must fail the promise's own test (named after the key) and nothing that the flip does not
touch; an unbroken copy passes them all.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from harness.paths import CHARTS_DIR, REPO_ROOT

pytestmark = pytest.mark.meta

CLAIM_TESTS = "tests/charts/test_promises.py"
SUITE_TIMEOUT_S = 300
# The promise tests a flipped default fails (the overlays' renders are left out: they take most
# of the time and only repeat what the defaults show).
SELECTION = "chart_default or promise_list or renders_fail_closed and defaults"
# chart, the line of its values.yaml, the flipped line, the promise tests that must fail
FLIPS = {
    "gateway fails open": (
        "maas-gateway",
        "failureMode: closed",
        "failureMode: open",
        {
            "test_the_chart_default_keeps_its_promise[maas-gateway:failureMode]",
            "test_the_gateway_renders_fail_closed[helm3-defaults]",
            "test_the_gateway_renders_fail_closed[helm4-defaults]",
        },
    ),
    "llama-stack auth off": (
        "llama-stack",
        "  enabled: true\n  # -- Key-validation URL",
        "  enabled: false\n  # -- Key-validation URL",
        {"test_the_chart_default_keeps_its_promise[llama-stack:auth.enabled]"},
    ),
    "free tier twice the requests": (
        "maas-gateway",
        "requests: {limit: 5, window: 2m}",
        "requests: {limit: 10, window: 2m}",
        {"test_the_chart_default_keeps_its_promise[maas-gateway:tiers.free.requests.limit]"},
    ),
}


def run_claim_tests(charts: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "RAG_CHARTS_DIR": str(charts)}
    argv = [sys.executable, "-m", "pytest", CLAIM_TESTS, "-q", "-p", "no:cacheprovider", "-rfE", "-k", SELECTION]
    return subprocess.run(argv, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=SUITE_TIMEOUT_S)


def failed_tests(output: str) -> set[str]:
    return {line.split("::", 1)[1].split(" - ")[0] for line in output.splitlines() if line.startswith("FAILED")}


@pytest.fixture(scope="module")
def flipped_run(tmp_path_factory: pytest.TempPathFactory) -> subprocess.CompletedProcess[str]:
    """One copy with every flip of FLIPS (independent keys), one run of the promise tests."""
    broken = tmp_path_factory.mktemp("promises") / "charts"
    shutil.copytree(CHARTS_DIR, broken, symlinks=True)
    for flip, (chart, old, new, _) in FLIPS.items():
        values = broken / chart / "values.yaml"
        text = values.read_text()
        assert text.count(old) == 1, f"{flip}: the flip no longer applies: {chart}/values.yaml has no single {old!r}"
        values.write_text(text.replace(old, new))
    return run_claim_tests(broken)


@pytest.mark.parametrize("flip", list(FLIPS))
def test_flipping_a_promised_default_fails_its_promise_test(
    flipped_run: subprocess.CompletedProcess[str], flip: str
) -> None:
    expected = FLIPS[flip][3]
    assert flipped_run.returncode == 1, flipped_run.stdout[-3000:]
    failed = failed_tests(flipped_run.stdout)
    assert expected <= failed, f"{flip}: these did not fail: {sorted(expected - failed)}\n{flipped_run.stdout[-3000:]}"


def test_flips_fail_nothing_else(flipped_run: subprocess.CompletedProcess[str]) -> None:
    expected = set().union(*(f[3] for f in FLIPS.values()))
    others = failed_tests(flipped_run.stdout) - expected
    assert not others, f"promise tests that no flip touches failed: {sorted(others)}"


def test_the_promise_tests_pass_on_an_unbroken_copy(tmp_path: Path) -> None:
    intact = tmp_path / "charts"
    shutil.copytree(CHARTS_DIR, intact, symlinks=True)
    result = run_claim_tests(intact)
    assert result.returncode == 0, result.stdout[-3000:]
