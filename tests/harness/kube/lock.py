"""One kube lane at a time per machine, and one builder at a time per build cache.

The cluster's network namespace (`rag-kube`) and its addresses are machine-wide, while each
checkout keeps its own run folder. A second lane started from another checkout would find the
namespace, take it for a half-started cluster of its own and tear it down under the first. So
every process that starts or removes the cluster first holds an exclusive `flock` on LOCK_PATH,
for as long as it lives (the kernel drops the lock when the process exits, even on a crash).

`exclusive(path, what)` serializes the lane's builds the same way: the binaries and the images
of one checkout's cache have one builder at a time (the background build `make test` starts,
and the lane that then waits for it and finds everything built).
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from harness.errors import ClusterError
from harness.kube import netns, teardown

LOCK_PATH = Path("/run/rag-kube.lock")
WAIT_LIMIT_S = 45 * 60.0  # longer than a whole kube lane run
REPORT_EVERY_S = 60.0
POLL_S = 1.0

_held: dict[Path, int] = {}  # lock file -> the open descriptor that holds it


class LaneBusy(ClusterError):
    """Another process held the kube lane for longer than WAIT_LIMIT_S."""


def _holder(fd: int) -> str:
    os.lseek(fd, 0, os.SEEK_SET)
    return os.read(fd, 512).decode(errors="replace").strip() or "an unknown process"


def _record_self(fd: int) -> None:
    os.ftruncate(fd, 0)
    os.lseek(fd, 0, os.SEEK_SET)
    os.write(fd, f"pid {os.getpid()} in {Path.cwd()}\n".encode())


def _held_by_ancestor(fd: int) -> bool:
    """True when the recorded holder (`pid N in DIR`) is one of this process's ancestors."""
    words = _holder(fd).split()
    if len(words) < 2 or words[0] != "pid" or not words[1].isdigit():
        return False
    return int(words[1]) in teardown.ancestors() - {os.getpid()}


def _try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def hold(
    *, say: Callable[[str], None] = print, path: Path = LOCK_PATH, wait_limit_s: float = WAIT_LIMIT_S
) -> None:
    """Hold the machine's kube lane until this process exits; wait while another process holds it.

    Idempotent within a process. Raises LaneBusy after `wait_limit_s` seconds of waiting.
    """
    if path in _held:
        return
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    started = time.monotonic()
    reported = -REPORT_EVERY_S
    while not _try_lock(fd):
        if _held_by_ancestor(fd):
            # A `python -m harness down` run by the holding session (its cleanup test) acts within
            # that session's lane: waiting for its own parent would never end.
            say(f"the kube lane is held by this process's parent ({_holder(fd)}): acting within its lane")
            os.close(fd)
            return
        waited = time.monotonic() - started
        if waited >= wait_limit_s:
            holder = _holder(fd)
            os.close(fd)
            raise LaneBusy(
                f"another kube lane ({holder}) still runs after {waited / 60:.0f} min of waiting: "
                f"wait for it to finish, or stop it (its checkout: `python -m harness down --target kube`)"
            )
        if waited - reported >= REPORT_EVERY_S:
            say(
                f"waiting for the kube lane held by {_holder(fd)} ({waited:.0f}s so far): "
                f"one kube cluster per machine (its network namespace {netns.NAME} is machine-wide)"
            )
            reported = waited
        time.sleep(POLL_S)
    _record_self(fd)
    _held[path] = fd


@contextmanager
def exclusive(
    path: Path, what: str, *, say: Callable[[str], None] = print, wait_limit_s: float = WAIT_LIMIT_S
) -> Iterator[None]:
    """Hold an exclusive lock on `path` for the `with` block, waiting while another build holds
    it (a cold build takes up to ~25 min) and saying every REPORT_EVERY_S who holds it, for `what`.

    Raises LaneBusy after `wait_limit_s` seconds of waiting (a build that hangs, not one that is slow).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        started = time.monotonic()
        reported = -REPORT_EVERY_S
        while not _try_lock(fd):
            waited = time.monotonic() - started
            if waited >= wait_limit_s:
                raise LaneBusy(
                    f"{what}: another build ({_holder(fd)}) still holds {path} after {waited / 60:.0f} min: "
                    "stop it (`kill <pid>`) and run again; its log: .cache/kube/background-build.log"
                )
            if waited - reported >= REPORT_EVERY_S:
                say(f"waiting for {what}: another build ({_holder(fd)}) is making it ({waited:.0f}s so far)")
                reported = waited
            time.sleep(POLL_S)
        _record_self(fd)
        yield
    finally:
        os.close(fd)  # closing the descriptor drops the lock
