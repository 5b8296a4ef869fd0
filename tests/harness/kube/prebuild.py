"""The kube lane's build (its binaries and images) ahead of the lane, without a cluster.

Why: on a cold machine that build takes about 16 minutes, mostly CPU, and the main test suite
leaves a core idle much of the time. `make test` therefore starts this build in the background
at the lowest CPU and I/O priority before the main suite; the lane, later, waits for it on the
build locks (`lock.exclusive`) and finds everything cached. A build still missing then (this
one failed or was stopped) is done by the lane itself, with its own progress and errors.

`owner`: the build stops, with its `go build`, buildah and debootstrap children, when that
process ends (make failed or was interrupted), instead of running on unseen.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable

from harness.kube import binaries, prereqs
from harness.kube.images import ensure_images
from harness.local import processes

OWNER_POLL_S = 2.0
LOG = binaries.KUBE_CACHE / "background-build.log"


def start_background(owner: int, *, say: Callable[[str], None] = print) -> int | None:
    """Start `build(owner=owner)` in a process group of its own at the lowest CPU and I/O
    priority, writing to LOG; returns its pid at once, or None (saying why) when the lane
    cannot run here (then the lane itself reports what is missing)."""
    if found := prereqs.problems():
        say(f"[kube build] not started: {'; '.join(found)}")
        return None
    LOG.parent.mkdir(parents=True, exist_ok=True)
    argv = ["nice", "-n", "19", "ionice", "-c", "3", sys.executable, "-m", "harness", "build", "--owner", str(owner)]
    # process_group=0, not a new session: a new session is a new scheduler autogroup
    # (kernel.sched_autogroup_enabled), where nice 19 no longer yields to the test run.
    with LOG.open("w") as log:
        proc = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env={**os.environ, "PYTHONUNBUFFERED": "1"}, process_group=0,
        )  # fmt: skip
    say(
        f"[kube build] building the kube lane's binaries and images in the background (pid {proc.pid}, lowest "
        f"priority) while the other tests run; the kube lane waits for it. Log: {LOG}"
    )
    return proc.pid


def build(*, owner: int | None = None, say: Callable[[str], None] = print) -> None:
    """Build (or reuse) the kube lane's binaries and images. Raises PrerequisiteMissing
    (naming what to install) when the lane cannot run here, or the builders' errors."""
    prereqs.require()
    if owner is not None:
        _stop_with(owner)
    started = time.monotonic()
    binaries.ensure_binaries(say)
    ensure_images(say=say)
    say(f"kube lane build: binaries and images ready after {time.monotonic() - started:.0f} s")


def _stop_with(owner: int) -> None:
    """Lead a process group of our own (`start_background` already made one), and end that
    group, this build's `go build`, buildah and debootstrap included, when `owner` is gone."""
    if os.getpgrp() != os.getpid():
        os.setpgid(0, 0)  # never signal the group of whoever started us (make, a pytest run)

    def watch() -> None:
        while processes.alive(owner):
            time.sleep(OWNER_POLL_S)
        os.killpg(os.getpgrp(), signal.SIGTERM)

    threading.Thread(target=watch, name="owner-watch", daemon=True).start()

