"""Run e2e modules in a fresh pytest process against a named local stack, as a user runs them,
and read each test's outcome from the junit report."""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from harness.paths import REPO_ROOT

SUITE_TIMEOUT_S = 600  # a whole e2e module against a 2-core machine's local stack


@dataclass
class Run:
    returncode: int
    output: str
    outcomes: dict[str, tuple[str, str]]  # "module::test" -> (passed|failed|skipped|error, message)

    def failed(self) -> set[str]:
        return {name for name, (outcome, _) in self.outcomes.items() if outcome in ("failed", "error")}

    def failed_by_assertion(self) -> set[str]:
        """Failed in the test itself (not an error in a fixture: that proves nothing about the claim)."""
        return {name for name, (outcome, _) in self.outcomes.items() if outcome == "failed"}

    def passed(self) -> set[str]:
        return {name for name, (outcome, _) in self.outcomes.items() if outcome == "passed"}

    def message(self, name: str) -> str:
        return self.outcomes.get(name, ("not run", ""))[1]


def run_suite(
    paths: list[str], tmp: Path, *, run_name: str, extra: tuple[str, ...] = (), env: dict[str, str] | None = None
) -> Run:
    """pytest `paths` with --target local --run-name `run_name`; extra args and env as given."""
    junit = tmp / "junit.xml"
    tests_dir = str(REPO_ROOT / "tests")
    command = [
        sys.executable, "-m", "pytest", *paths, "-p", "no:cacheprovider", "-q",
        "--target", "local", "--run-name", run_name, f"--junitxml={junit}", *extra,
    ]  # fmt: skip
    full_env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [tests_dir, os.environ.get("PYTHONPATH")])),
        "RAG_DIAGNOSTICS_DIR": str(tmp / "diagnostics"),
        **(env or {}),
    }
    done = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, env=full_env, timeout=SUITE_TIMEOUT_S)
    outcomes = parse_junit(junit) if junit.exists() else {}
    return Run(done.returncode, done.stdout + done.stderr, outcomes)


def parse_junit(path: Path) -> dict[str, tuple[str, str]]:
    outcomes: dict[str, tuple[str, str]] = {}
    for case in ET.parse(path).iter("testcase"):
        name = f"{case.get('classname', '').rsplit('.', 1)[-1]}::{case.get('name')}"
        outcome, message = "passed", ""
        for child in case:
            if child.tag in ("failure", "error", "skipped"):
                outcome = {"failure": "failed"}.get(child.tag, child.tag)
                message = f"{child.get('message', '')}\n{child.text or ''}"
                break
        outcomes[name] = (outcome, message)
    return outcomes
