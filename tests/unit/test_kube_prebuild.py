"""The background build `make test` starts stops with its owner, children included."""

from __future__ import annotations

import os
import subprocess
import sys
import time

BUILD = """
import subprocess, sys, time
from harness.kube import prebuild
child = subprocess.Popen(["sleep", "120"])  # stands for `go build`
print(child.pid, flush=True)
prebuild._stop_with(int(sys.argv[1]))
time.sleep(120)
"""


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    # A killed child of a dead parent may linger as a zombie until init reaps it.
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ")[1].startswith("Z")
    except FileNotFoundError:  # reaped meanwhile
        return True


def test_build_and_its_children_stop_when_the_owner_ends() -> None:
    owner = subprocess.Popen(["sleep", "1"])
    build = subprocess.Popen(
        [sys.executable, "-c", BUILD, str(owner.pid)], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    assert build.stdout is not None
    child = int(build.stdout.readline())
    owner.wait()
    try:
        build.wait(timeout=15)
    finally:
        if build.poll() is None:
            os.killpg(build.pid, 9)
    deadline = time.monotonic() + 5
    while not _gone(child) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _gone(child), "the build's child (go build) outlived the build"
    assert build.returncode == -15  # SIGTERM, from the owner watch
