"""The commands a newcomer runs first, through the public entry points (make, scripts, python -m harness).

Each error case asserts the outcome and a short message naming the cause. Every command runs
with its own RAG_RUNS_DIR, so nothing here sees or changes a stack the user has running.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from harness.cluster import state
from harness.paths import REPO_ROOT
from harness.targets.kind import container_engine_ready

COMMAND_TIMEOUT_S = 300  # a `make` target runs the (idempotent) bootstrap first
TYPO = "maas-gatway:\n  tiers:\n    free: {tokens: {limit: 50, window: 1m}}\n"


def run(argv: list[str], runs_dir: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("RAG_", "PYTEST_"))}
    # About the commands and values: no stand-in MaaS (`make e2e`'s default without MAAS_ENDPOINT).
    environ |= {"RAG_RUNS_DIR": str(runs_dir), "MAAS_ENDPOINT": "", **env}
    return subprocess.run(argv, cwd=REPO_ROOT, env=environ, capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S)


def harness(*args: str, runs_dir: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return run([sys.executable, "-m", "harness", *args], runs_dir, **env)


def message_lines(text: str, needle: str) -> list[str]:
    return [line for line in text.splitlines() if needle in line]


@pytest.fixture
def runs_dir(tmp_path: Path) -> Path:
    return tmp_path / "runs"


@pytest.fixture
def typo(tmp_path: Path) -> Path:
    path = tmp_path / "typo.yaml"
    path.write_text(TYPO)
    return path


# --- a values typo: named once, with the nearest key --------------------------------------------


def test_up_with_a_top_level_typo_fails_in_a_few_lines_naming_the_key(runs_dir: Path, typo: Path) -> None:
    result = harness("up", "--values", str(typo), "--run-name", "typo", runs_dir=runs_dir)
    assert result.returncode == 1, result.stdout + result.stderr
    assert len(result.stderr.strip().splitlines()) <= 5, result.stderr
    assert 'unknown top-level key "maas-gatway" (did you mean "maas-gateway"?)' in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("error: helm template rag rejected the values")
    assert "Traceback" not in result.stderr


def test_make_e2e_with_a_typo_fails_once_not_once_per_test(runs_dir: Path, typo: Path) -> None:
    result = run(["make", "e2e", f"VALUES={typo}"], runs_dir, RAG_RUN_NAME="typo-e2e")
    out = result.stdout + result.stderr
    assert result.returncode != 0
    assert len(message_lines(out, "unknown top-level key")) == 1, out
    assert "the local stack did not start" in out
    assert "ERROR at setup" not in out and "Traceback" not in out, out


def test_make_e2e_on_kind_without_a_container_daemon_says_so_in_one_line(runs_dir: Path) -> None:
    if container_engine_ready():
        pytest.skip("a Docker or Podman daemon runs here: the no-daemon message cannot be provoked")
    result = run(["make", "e2e", "TARGET=kind"], runs_dir)
    out = result.stdout + result.stderr
    assert result.returncode != 0
    lines = message_lines(out, "Kind needs a running Docker or Podman daemon")
    assert len(lines) == 1, out
    assert len(out.splitlines()) < 30, out  # pytest's header and one message, not pages of kind output


# --- dry runs validate; nothing is built into charts/ -----------------------------------------------


def test_install_dry_run_fails_as_the_install_would_on_a_bad_tier(runs_dir: Path) -> None:
    result = run(["scripts/install.sh", "--dry-run", "--token-rate-limit", "gold=100"], runs_dir)
    assert result.returncode == 1, result.stdout + result.stderr
    errors = result.stderr.strip().splitlines()
    assert errors[-1].startswith("error: helm template rag rejected the values"), result.stderr
    assert "/tiers/gold" in result.stderr and "requests" in result.stderr
    assert len(errors) <= 6, result.stderr  # target line, helm's 4 lines, the summary


def test_install_dry_run_renders_valid_flags_and_writes_nothing_into_charts(runs_dir: Path) -> None:
    result = run(["scripts/install.sh", "--dry-run", "--simulator", "--token-rate-limit", "free=500"], runs_dir)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "passes its schema" in result.stderr
    assert "dependency build" not in result.stdout
    leftovers = subprocess.run(
        ["git", "status", "--porcelain", "--ignored", "--", "charts"], cwd=REPO_ROOT, capture_output=True, text=True
    )
    assert leftovers.stdout == "", f"files written under charts/: {leftovers.stdout}"


# --- one --target rule, said out loud ---------------------------------------------------------------


@pytest.mark.parametrize("command", [["status"], ["down"]])
def test_without_target_and_nothing_running_every_command_picks_local(runs_dir: Path, command: list[str]) -> None:
    result = harness(*command, runs_dir=runs_dir)
    assert "[harness] target local: nothing else is running or recorded" in result.stderr


def test_verify_picks_the_same_default_as_status(runs_dir: Path) -> None:
    result = run(["scripts/verify-install.sh"], runs_dir)
    assert "[harness] target local:" in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        "error: no local stack named 'default' is running; start it with `make up`"
    )


def test_a_recorded_cluster_install_is_the_inferred_target(runs_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(state, "RUNS_DIR", runs_dir)
    state.save(state.ClusterState("kind", "kind-rag-e2e", "rag-e2e", "rag"))
    result = run(["scripts/cleanup.sh", "--help"], runs_dir)  # help: no cluster needed
    assert result.returncode == 0
    chosen = harness("status", runs_dir=runs_dir, PATH="/usr/bin:/bin")
    assert "[harness] target kind: a kind install is recorded (namespace rag-e2e)" in chosen.stderr


# --- help names the script and offers what the command uses -------------------------------------------


@pytest.mark.parametrize("script", ["install.sh", "cleanup.sh", "verify-install.sh"])
def test_script_help_names_the_script(runs_dir: Path, script: str) -> None:
    result = run([f"scripts/{script}", "--help"], runs_dir)
    assert result.returncode == 0
    assert result.stdout.startswith(f"usage: scripts/{script} "), result.stdout
    assert "python -m harness" not in result.stdout.splitlines()[0]


@pytest.mark.parametrize(
    ("command", "absent"),
    [(["down"], ["--values", "--keep"]), (["status"], ["--values", "--keep"]), (["install"], ["--run-name"])],
)
def test_help_offers_only_meaningful_options(runs_dir: Path, command: list[str], absent: list[str]) -> None:
    result = harness(*command, "--help", runs_dir=runs_dir)
    assert result.returncode == 0
    assert [flag for flag in absent if flag in result.stdout] == []


def test_bootstrap_help_describes_the_command(runs_dir: Path) -> None:
    result = harness("bootstrap", "--help", runs_dir=runs_dir)
    assert "Install the pinned non-Python tools" in result.stdout


# --- long installs show progress ------------------------------------------------------------------


def test_python_install_prints_pips_progress(runs_dir: Path) -> None:
    """The venv install is the longest bootstrap step: its output must not be silenced."""
    venv = Path(sys.executable).parents[1]
    result = run(["scripts/bootstrap-python.sh", str(venv)], runs_dir)
    assert result.returncode == 0, result.stderr
    progress = [
        line for line in result.stdout.splitlines() if line.startswith(("Obtaining", "Requirement", "Collecting"))
    ]
    assert len(progress) > 10, result.stdout
