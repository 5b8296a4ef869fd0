"""Break a local stack on purpose and run e2e modules against it in a fresh pytest process, as a
user runs them; read each test's outcome from the junit report.

A meta test states only what it breaks (a `StackBreak`) and which tests must fail; starting the
broken stack, running the suite against it and stopping it live here, once.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from harness.endpoints import Endpoints
from harness.paths import CHARTS_DIR, REPO_ROOT
from harness.targets import TargetOptions
from harness.targets.local import LocalTarget

SUITE_TIMEOUT_S = 600  # a whole e2e module against a 2-core machine's local stack


@dataclass
class Run:
    returncode: int
    output: str
    outcomes: dict[str, tuple[str, str]]  # "module::test" -> (passed|failed|skipped|error, message)
    diagnostics: Path  # where failing tests wrote their diagnostics folders

    def failed(self) -> set[str]:
        return {name for name, (outcome, _) in self.outcomes.items() if outcome in ("failed", "error")}

    def failed_by_assertion(self) -> set[str]:
        """Failed in the test itself (not an error in a fixture: that proves nothing about the claim)."""
        return {name for name, (outcome, _) in self.outcomes.items() if outcome == "failed"}

    def passed(self) -> set[str]:
        return {name for name, (outcome, _) in self.outcomes.items() if outcome == "passed"}

    def message(self, name: str) -> str:
        return self.outcomes.get(name, ("not run", ""))[1]

    def tail(self) -> str:
        """The end of the run's output, for an assertion message."""
        return self.output[-3000:]


def run_suite(
    paths: list[str],
    tmp: Path,
    *,
    run_name: str,
    extra: tuple[str, ...] = (),
    env: dict[str, str | None] | None = None,
    timeout_s: float = SUITE_TIMEOUT_S,
) -> Run:
    """pytest `paths` with --target local --run-name `run_name`; extra args as given, and the
    environment changed by `env` (a None value unsets the variable)."""
    junit, diagnostics = tmp / "junit.xml", tmp / "diagnostics"
    tests_dir = str(REPO_ROOT / "tests")
    command = [
        sys.executable, "-m", "pytest", *paths, "-p", "no:cacheprovider", "-q",
        "--target", "local", "--run-name", run_name, f"--junitxml={junit}", *extra,
    ]  # fmt: skip
    changed = {
        "PYTHONPATH": os.pathsep.join(filter(None, [tests_dir, os.environ.get("PYTHONPATH")])),
        "RAG_DIAGNOSTICS_DIR": str(diagnostics),
        **(env or {}),
    }
    full_env = {k: v for k, v in {**os.environ, **changed}.items() if v is not None}
    done = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, env=full_env, timeout=timeout_s)
    outcomes = parse_junit(junit) if junit.exists() else {}
    return Run(done.returncode, done.stdout + done.stderr, outcomes, diagnostics)


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


@dataclass(frozen=True)
class Edit:
    """Replace `old` (which must occur exactly `count` times) in charts/<path>."""

    path: str
    old: str
    new: str
    count: int = 1


def copy_charts(dest: Path) -> Path:
    # The umbrella's subcharts are relative symlinks: copying them as links keeps them pointing into the copy.
    shutil.copytree(CHARTS_DIR, dest, symlinks=True)
    return dest


def apply_edits(charts: Path, edits: Iterable[Edit]) -> None:
    for edit in edits:
        path = charts / edit.path
        text = path.read_text()
        found = text.count(edit.old)
        assert found == edit.count, (
            f"breakage no longer applies: {edit.path} has {found} occurrence(s) of {edit.old!r}, expected "
            f"{edit.count}; update the edit to break the same mechanism in the changed chart"
        )
        path.write_text(text.replace(edit.old, edit.new))


@dataclass(frozen=True)
class StackBreak:
    """What a meta test breaks in the local stack it starts under the run name `run_name`."""

    run_name: str
    edits: tuple[Edit, ...] = ()  # made to a copy of charts/ that the stack renders from
    overlay: str = ""  # values YAML, given as an extra overlay
    # Harness code replaced while the stack starts (a stand-in that ignores the chart, say).
    while_starting: Callable[[pytest.MonkeyPatch], None] | None = None
    # Whether the e2e runs render from the broken copy too (a component they restart runs broken).
    # By default they render the real charts: what a test expects comes from the declared product,
    # so a test that reads the render (the gateway's failureMode, say) is not misled by the breakage.
    e2e_renders_copy: bool = False


@dataclass
class BrokenStack:
    target: LocalTarget
    endpoints: Endpoints
    charts: Path  # the copy the stack renders from
    values: tuple[Path, ...]  # the overlays it started with
    e2e_renders_copy: bool  # see StackBreak

    def run(
        self, paths: list[str], tmp: Path, *, extra: tuple[str, ...] = (), env: dict[str, str] | None = None
    ) -> Run:
        """pytest `paths` against this stack (see `run_suite`).

        The run gets the stack's own overlays (the suite refuses a stack started with other
        values) and, with `e2e_renders_copy`, renders from the stack's chart copy.
        """
        values = tuple(arg for path in self.values for arg in ("--values", str(path)))
        charts_env = {"RAG_CHARTS_DIR": str(self.charts)} if self.e2e_renders_copy else {}
        return run_suite(
            paths, tmp, run_name=self.target.run.name, extra=(*values, *extra), env={**charts_env, **(env or {})}
        )


def broken_stack(brk: StackBreak, tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokenStack]:
    """Start a local stack with `brk` applied, yield it, then stop it (kept when RAG_KEEP=1).

    Use from a module-scoped fixture: `yield from broken_stack(BREAK, tmp_path_factory)`.
    """
    tmp = tmp_path_factory.mktemp(brk.run_name)
    charts = copy_charts(tmp / "charts")
    apply_edits(charts, brk.edits)
    values: tuple[Path, ...] = ()
    if brk.overlay:
        overlay = tmp / "broken.yaml"
        overlay.write_text(brk.overlay)
        values = (overlay,)
    target = LocalTarget(TargetOptions(run_name=brk.run_name, values=list(values)))
    target.run.chart = charts / "rag"
    if target.run.alive_pids():
        target.down()  # a leftover from an earlier run may carry other charts, overlays or spent keys
    with pytest.MonkeyPatch.context() as patch:
        if brk.while_starting:
            brk.while_starting(patch)
        endpoints = target.up()
    yield BrokenStack(target, endpoints, charts, values, brk.e2e_renders_copy)
    if os.environ.get("RAG_KEEP") != "1":
        target.down()


def assert_fail_saying(run: Run, expected: set[str], phrase: str, what: str) -> None:
    """Each of `expected` failed by assertion, with `phrase` in its failure message."""
    outcomes = {name: run.outcomes.get(name, ("not run", "")) for name in expected}
    not_failed = {name: outcome for name, (outcome, _) in outcomes.items() if outcome != "failed"}
    assert not not_failed, f"{what}: these tests did not fail: {not_failed}"
    without_phrase = [name for name, (_, message) in outcomes.items() if phrase not in message]
    assert not without_phrase, f"{what}: failures of {without_phrase} do not mention {phrase!r}"
