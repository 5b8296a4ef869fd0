"""The shell wrappers against the local target: verify reports each check; cleanup is idempotent."""

from __future__ import annotations

import subprocess

import pytest
from harness.paths import REPO_ROOT
from harness.targets import TargetOptions
from harness.targets.local import LocalTarget

pytestmark = pytest.mark.local


def _script(name: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(REPO_ROOT / "scripts" / name), *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300
    )


def test_verify_install_passes_on_the_local_stack_and_reports_each_check(local_stack):
    _, endpoints = local_stack
    result = _script("verify-install.sh", "--target", "local", "--run-name", "test-local")
    assert result.returncode == 0, result.stdout + result.stderr
    checks = [line for line in result.stdout.splitlines() if line.strip().startswith(("PASS", "OK", "ok", "✓"))]
    assert len(checks) >= 4, result.stdout
    assert "all" in result.stdout and "checks OK" in result.stdout
    for key in (k for keys in endpoints.keys.values() for k in keys):
        assert key not in result.stdout + result.stderr


def test_cleanup_twice_succeeds_and_stops_the_stack():
    target = LocalTarget(TargetOptions(run_name="test-cleanup"))
    target.up()
    first = _script("cleanup.sh", "--target", "local", "--run-name", "test-cleanup")
    assert first.returncode == 0, first.stdout + first.stderr
    assert target.run.alive_pids() == {}
    second = _script("cleanup.sh", "--target", "local", "--run-name", "test-cleanup")
    assert second.returncode == 0, second.stdout + second.stderr
