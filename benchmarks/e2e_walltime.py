"""Benchmark (not a test): wall time of the e2e suite on the local target.

Runs `pytest tests/e2e --target local` in a subprocess and prints the wall time. When no
local stack runs, the time includes bringing it up and down (what `make e2e` costs on a
fresh machine after bootstrap); pass --reuse to require a running stack instead.
Goal on a 2-core machine: under 120 s.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
GOAL_S = 120.0


def stack_running(run_name: str) -> bool:
    probe = [sys.executable, "-m", "harness", "status", "--run-name", run_name]
    return subprocess.run(probe, cwd=REPO, capture_output=True, text=True, env=_env()).returncode == 0


def _env() -> dict[str, str]:
    """The harness package lives under tests/; make it importable without installing."""
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO / "tests"), os.environ.get("PYTHONPATH")])),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reuse", action="store_true", help="fail unless a local stack is already running")
    parser.add_argument("--run-name", default="default")
    args = parser.parse_args()
    running = stack_running(args.run_name)
    if args.reuse and not running:
        print("no local stack running: start one with `make up` or drop --reuse", file=sys.stderr)
        return 2
    command = [
        sys.executable,
        "-m",
        "pytest",
        "tests/e2e",
        "-q",
        "-p",
        "no:cacheprovider",
        "--target",
        "local",
        "--run-name",
        args.run_name,
    ]
    t0 = time.monotonic()
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, env=_env())
    elapsed = time.monotonic() - t0
    summary = (result.stdout.strip().splitlines() or ["(no output)"])[-1]
    mode = "reused a running stack" if running else "including stack up and down"
    print(
        f"e2e suite wall time: {elapsed:.1f}s ({mode}); "
        f"goal < {GOAL_S:.0f}s; time/goal ratio {elapsed / GOAL_S:.2f}; {'OK' if elapsed < GOAL_S else 'OVER GOAL'}"
    )
    print(f"pytest: {summary} (exit {result.returncode})")
    return 0 if result.returncode == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
