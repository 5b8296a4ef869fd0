"""Stopping a local process: stop() returns only once the whole process group is gone, so a
restart never prepares a data directory that the old process still uses."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest
from harness.local import processes

pytestmark = pytest.mark.unit

# A parent that ignores SIGTERM (as a server stuck in a graceful shutdown) and a child in its group.
STUBBORN = (
    "import signal, subprocess, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
    "subprocess.Popen([sys.executable, '-c', 'import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
    "time.sleep(60)']); print('ready', flush=True); time.sleep(60)"
)


def test_stop_kills_a_group_that_ignores_sigterm_and_waits_until_it_is_gone(tmp_path: Path) -> None:
    log = tmp_path / "stubborn.log"
    proc = processes.start("stubborn", [sys.executable, "-c", STUBBORN], {}, log, tmp_path, None)
    for _ in range(100):
        if "ready" in log.read_text():
            break
        time.sleep(0.05)
    pgid = os.getpgid(proc.pid)
    processes.stop(proc.pid, timeout=0.5)
    assert not processes._group_alive(pgid), "stop() returned while the process group was still alive"
    assert not processes.alive(proc.pid)
