"""Start, probe and stop local processes, each in its own session with its own log."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from harness import http
from harness.errors import StackNotReady
from harness.local.pods import Probe
from harness.waiting import Waiter, WaitPolicy

BASE_ENV_KEYS = ("PATH", "LANG", "LC_ALL", "TZ", "TMPDIR", "VIRTUAL_ENV", "PYTHONPATH", "TIKTOKEN_CACHE_DIR")


class StartError(StackNotReady):
    pass


@dataclass
class Running:
    name: str
    pid: int
    log: Path


def port_in_use(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def start(name: str, argv: list[str], env: dict[str, str], log: Path, cwd: Path, run_as: str | None) -> Running:
    base = {k: os.environ[k] for k in BASE_ENV_KEYS if k in os.environ}
    if run_as:
        argv = ["runuser", "-u", run_as, "--", *argv]
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        proc = subprocess.Popen(
            argv, env=base | env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            cwd=cwd, start_new_session=True,  # own process group: stop() ends its children too
        )
    return Running(name, proc.pid, log)


def run_to_completion(
    name: str, argv: list[str], env: dict[str, str], log: Path, cwd: Path, run_as: str | None, timeout: float
) -> int:
    """Run an init container's program to its end (as the kubelet does before the pod's
    containers start); returns its exit code. Raises StartError when it outlives `timeout`."""
    proc = start(name, argv, env, log, cwd, run_as)

    def exit_code() -> int | None:
        done, status = os.waitpid(proc.pid, os.WNOHANG)
        return os.waitstatus_to_exitcode(status) if done else None

    try:
        code = Waiter().retrying(EXIT_POLL.within(timeout), on_result=lambda c: c is None)(exit_code)
    except BaseException:  # interrupted (Ctrl-C, SIGTERM): the init container goes with its start
        with signals_held():
            stop(proc.pid)
        raise
    if code is not None:
        return code
    stop(proc.pid)
    raise StartError(f"{name} did not finish within {timeout:.0f}s; end of {log}:\n{log_tail(log)}")


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


def sigterm_interrupts() -> None:
    """Make SIGTERM raise KeyboardInterrupt, as SIGINT does: a start that is stopped either way
    unwinds through its clean-up (Python's default for SIGTERM ends the process on the spot)."""
    signal.signal(signal.SIGTERM, _interrupt)


@contextlib.contextmanager
def signals_held() -> Iterator[None]:
    """Ignore SIGINT and SIGTERM for the duration (a clean-up that a second Ctrl-C must not cut short)."""
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child still answers kill(0); reap it if it is ours.
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
        return done == 0
    except ChildProcessError:
        return _not_zombie(pid)


def _not_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except (FileNotFoundError, IndexError):
        return False


def probe_ok(probe: Probe) -> bool:
    if probe.kind == "tcp":
        return port_in_use(probe.port)
    url = f"{probe.scheme}://127.0.0.1:{probe.port}{probe.path}"
    # As the kubelet probes: HTTPS without verifying the certificate (no TLS context per poll).
    return http.answers_ok(url, verify=False, timeout=http.LOCAL_PROBE_TIMEOUT_S, accept=range(200, 400))


STOP_GRACE_S = 10.0  # SIGTERM to SIGKILL, as a pod's terminationGracePeriodSeconds (30 s) but shorter for tests
KILL_WAIT_S = 5.0  # SIGKILL to gone: the kernel needs a moment to tear down a large process
# Polls of a process we wait on (an init container's exit, a stopped group's end); the timeout is
# the caller's. A tight 0.1 s: these end within moments, and every pause adds to a start or stop.
EXIT_POLL = WaitPolicy.fixed(STOP_GRACE_S, 0.1)


def stop(pid: int, timeout: float = STOP_GRACE_S) -> None:
    """SIGTERM the process group, SIGKILL what is left after `timeout`, and return only once
    every process of the group is gone (callers then reuse its port and data directory).

    Raises StartError when the group survives SIGKILL for KILL_WAIT_S.
    """
    try:
        pgid = os.getpgid(pid)
    except ProcessLookupError:
        return
    _signal_group(pgid, signal.SIGTERM)
    if not _wait_group_gone(pgid, pid, timeout):
        _signal_group(pgid, signal.SIGKILL)
        if not _wait_group_gone(pgid, pid, KILL_WAIT_S):
            raise StartError(f"process group {pgid} (pid {pid}) is still alive after SIGKILL")


def _wait_group_gone(pgid: int, pid: int, timeout: float) -> bool:
    def gone() -> bool:
        alive(pid)  # reap our own child, or it stays a zombie in the group
        return not _group_alive(pgid)

    return bool(Waiter().retrying(EXIT_POLL.within(timeout), on_result=lambda done: not done)(gone))


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):  # already gone is what we want
        os.killpg(pgid, sig)


def _group_alive(pgid: int) -> bool:
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


def log_tail(log: Path, lines: int = 15, width: int = 400) -> str:
    if not log.exists():
        return "(no log)"
    tail = log.read_text(errors="replace").splitlines()[-lines:]
    return "\n".join(line if len(line) <= width else line[:width] + " ..." for line in tail)
