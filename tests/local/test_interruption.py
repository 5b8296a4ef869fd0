"""An interrupted start leaves nothing behind: `make up` is stopped by Ctrl-C (SIGINT to its
process group) or SIGTERM at several points; after each, no process of that run is left, the
start said so in one line, and `make status` and `make up` behave. A start killed outright
(SIGKILL: no clean-up can run) leaves a half stack: `make status` lists each container's
state, `make up` refuses, and `make down` removes it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import psutil
import pytest
from harness.local.state import RunFolder
from harness.paths import REPO_ROOT

pytestmark = pytest.mark.local

RUN_NAME = "test-interrupt"
PHASE_TIMEOUT_S = 120  # until the start reaches the point to interrupt (2 busy cores)
EXIT_TIMEOUT_S = 60  # from the signal until make has exited (stops take up to 10 s each)
COMMAND_TIMEOUT_S = 180  # one make status / up / down
FIRST_HEALTHY = "healthy after"  # the first component passed its readinessProbe
LLAMA_STACK_INIT = "running init container rag-llama-stack"


MAKE_UP = ("make", "--no-print-directory", "-o", "bootstrap", "up")
# A pytest run whose session fixture starts its own stack (-s: its start-up lines show as they come).
PYTEST_E2E = (
    sys.executable, "-m", "pytest", "tests/e2e/test_models.py", "-s", "-q", "-p", "no:cacheprovider",
    "--target", "local", "--run-name", RUN_NAME,
)  # fmt: skip


def _as_a_terminal_starts_it() -> None:
    """Ctrl-C's default action in the child: a shell started without job control (CI runners,
    `cmd &`, nohup) ignores SIGINT, its children inherit that, and Python then never raises
    KeyboardInterrupt; a terminal's foreground command always gets the default."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class Started:
    """A command in its own process group (as a shell runs it in the foreground), its output read as it comes."""

    def __init__(self, argv: tuple[str, ...] = MAKE_UP) -> None:
        env = os.environ | {"RAG_RUN_NAME": RUN_NAME, "MAAS_ENDPOINT": ""}
        self.proc = subprocess.Popen(
            argv, cwd=REPO_ROOT, env=env, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
            preexec_fn=_as_a_terminal_starts_it,
        )  # fmt: skip
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_for(self, phrase: str) -> None:
        deadline = time.monotonic() + PHASE_TIMEOUT_S
        while not any(phrase in line for line in self.lines):
            assert self.proc.poll() is None, f"the start ended before {phrase!r}:\n{self.output}"
            assert time.monotonic() < deadline, f"the start did not reach {phrase!r}:\n{self.output}"
            time.sleep(0.05)

    def signal_group(self, sig: signal.Signals) -> int:
        os.killpg(self.proc.pid, sig)
        code = self.proc.wait(timeout=EXIT_TIMEOUT_S)
        self._reader.join(timeout=5)
        return code


def _make(*args: str) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"RAG_RUN_NAME": RUN_NAME}
    return subprocess.run(
        ["make", "--no-print-directory", "-o", "bootstrap", *args], cwd=REPO_ROOT, env=env,
        capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S,
    )  # fmt: skip


def _processes_of(run: RunFolder) -> set[psutil.Process]:
    """Every process of the run: the recorded ones, those working in its folder, and their descendants."""
    found: set[psutil.Process] = set()
    for pid in run.recorded_pids().values():
        if psutil.pid_exists(pid):
            found.add(psutil.Process(pid))
    for proc in psutil.process_iter(["cwd"]):
        cwd = proc.info.get("cwd") or ""
        if cwd == str(run.root) or cwd.startswith(f"{run.root}/"):
            found.add(proc)
    for proc in list(found):
        try:
            found.update(proc.children(recursive=True))
        except psutil.NoSuchProcess:
            continue
    return found


def _alive(procs: set[psutil.Process]) -> list[str]:
    left = []
    for proc in procs:
        try:
            if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                left.append(f"pid {proc.pid} ({' '.join(proc.cmdline())[:120]})")
        except psutil.NoSuchProcess:
            continue
    return left


@pytest.fixture
def run() -> Iterator[RunFolder]:
    folder = RunFolder.named(RUN_NAME)
    _make("down")  # a leftover of an earlier run
    yield folder
    _make("down")


def _assert_behaves_after(run: RunFolder, before: set[psutil.Process], output: str) -> None:
    assert "Traceback" not in output, output
    said = [line for line in output.splitlines() if "interrupted: stopped the" in line]
    assert len(said) == 1, f"the start did not say once what it stopped:\n{output}"
    left = _alive(before | _processes_of(run))
    assert not left, f"processes of the interrupted run are still alive:\n{left}\n{output}"
    status = _make("status")
    assert status.returncode != 0 and "Traceback" not in status.stdout + status.stderr, status.stderr
    assert f"no local stack named {RUN_NAME!r} is running" in status.stderr, status.stderr


@pytest.mark.parametrize(
    ("argv", "point", "sig"),
    [
        pytest.param(MAKE_UP, FIRST_HEALTHY, signal.SIGINT, id="sigint-after-first-component"),
        pytest.param(MAKE_UP, LLAMA_STACK_INIT, signal.SIGINT, id="sigint-during-llama-stack-init"),
        pytest.param(MAKE_UP, LLAMA_STACK_INIT, signal.SIGTERM, id="sigterm-during-llama-stack-init"),
        pytest.param(PYTEST_E2E, FIRST_HEALTHY, signal.SIGTERM, id="sigterm-to-pytest-starting-its-stack"),
    ],
)
def test_an_interrupted_start_stops_what_it_launched(
    run: RunFolder, argv: tuple[str, ...], point: str, sig: signal.Signals
):
    start = Started(argv)
    start.wait_for(point)
    before = _processes_of(run)
    assert before, f"no process of the run found at {point!r}:\n{start.output}"
    code = start.signal_group(sig)
    assert code != 0, start.output
    _assert_behaves_after(run, before, start.output)


def test_a_killed_start_leaves_a_stack_that_status_describes_and_down_removes(run: RunFolder):
    start = Started()
    start.wait_for(FIRST_HEALTHY)
    start.signal_group(signal.SIGKILL)  # nothing can clean up: a half stack stays
    status = _make("status")
    out = status.stdout + status.stderr
    assert status.returncode != 0 and "Traceback" not in out, out
    assert "only partly running" in out and "running (pid" in out and "not started" in out, out
    refused = _make("up")
    assert refused.returncode != 0 and "already running" in refused.stderr, refused.stdout + refused.stderr
    assert "Traceback" not in refused.stdout + refused.stderr
    left = _processes_of(run)
    down = _make("down")
    assert down.returncode == 0, down.stdout + down.stderr
    assert not _alive(left | _processes_of(run))
    # and a new start works
    started = _make("up")
    assert started.returncode == 0, started.stdout + started.stderr
    status = _make("status")
    assert status.returncode == 0 and '"gateway_url"' in status.stdout, status.stdout + status.stderr
