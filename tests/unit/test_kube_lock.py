"""The kube lane's machine-wide lock: a second process waits, names the holder, and gets the lane once it is free."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from harness.kube import lock

HOLDER = """
import sys, time
from pathlib import Path
from harness.kube import lock
lock.hold(path=Path(sys.argv[1]), say=lambda _: None)
print("held", flush=True)
time.sleep(60)
"""


def _holder(path: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(path)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def test_second_process_waits_then_names_the_holder(tmp_path: Path) -> None:
    path = tmp_path / "lane.lock"
    proc = _holder(path)
    said: list[str] = []
    try:
        with pytest.raises(lock.LaneBusy, match=rf"pid {proc.pid} .*harness down --target kube"):
            lock.hold(path=path, say=said.append, wait_limit_s=1.5)
    finally:
        proc.kill()
        proc.wait()
    assert said and f"pid {proc.pid}" in said[0] and "rag-kube" in said[0], said


def test_lane_is_taken_once_the_holder_exits(tmp_path: Path) -> None:
    path = tmp_path / "lane.lock"
    proc = _holder(path)
    proc.kill()
    proc.wait()
    lock.hold(path=path, say=lambda _: None, wait_limit_s=1.0)
    assert path in lock._held
    assert path.read_text().startswith(f"pid {os.getpid()} ")



CHILD = """
import sys
import time
from pathlib import Path
from harness.kube import lock
lock.hold(path=Path(sys.argv[1]), say=print, wait_limit_s=5)
"""


def test_a_child_of_the_holder_acts_within_its_lane(tmp_path: Path) -> None:
    path = tmp_path / "lane.lock"
    lock.hold(path=path, say=lambda _: None)
    try:
        child = subprocess.run([sys.executable, "-c", CHILD, str(path)], capture_output=True, text=True, timeout=30)
    finally:
        os.close(lock._held.pop(path))
    assert child.returncode == 0, child.stderr
    assert f"held by this process's parent (pid {os.getpid()} " in child.stdout, child.stdout


BUILDER = """
import sys, time
from pathlib import Path
from harness.kube import lock
with lock.exclusive(Path(sys.argv[1]), "test build", say=lambda _: None):
    print("building", flush=True)
    time.sleep(float(sys.argv[2]))
"""


def test_a_build_waits_for_the_build_running_and_names_it(tmp_path: Path) -> None:
    """The lane's build waits for the background build (`make test`) instead of building the
    same cache at the same time, and says whom it waits for."""
    path = tmp_path / "build.lock"
    proc = subprocess.Popen([sys.executable, "-c", BUILDER, str(path), "1.5"], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "building"
    building_since = time.monotonic()
    said: list[str] = []
    with lock.exclusive(path, "the test binaries", say=said.append):
        waited = time.monotonic() - building_since
    proc.wait()
    assert waited >= 1.0, f"entered after {waited:.1f} s, while the other build held the lock for 1.5 s"
    assert said and said[0].startswith("waiting for the test binaries") and f"pid {proc.pid} " in said[0], said


def test_a_build_that_never_ends_is_named_not_waited_for_forever(tmp_path: Path) -> None:
    path = tmp_path / "build.lock"
    proc = subprocess.Popen([sys.executable, "-c", BUILDER, str(path), "60"], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "building"
    try:
        busy = rf"the test images: another build \(pid {proc.pid} "
        with (
            pytest.raises(lock.LaneBusy, match=busy),
            lock.exclusive(path, "the test images", say=lambda _: None, wait_limit_s=1.0),
        ):
            pytest.fail("entered the block while the other build held the lock")
    finally:
        proc.kill()
        proc.wait()
