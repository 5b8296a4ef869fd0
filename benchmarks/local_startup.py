"""Benchmark (not a test): time from `up` to every component healthy, on the local target.

Run after `make bootstrap`:  .cache/venv/bin/python benchmarks/local_startup.py [--runs N]
Prints each run and the ratio of the median to the 30 s goal (issue: under 30 s on 2 cores).
"""

from __future__ import annotations

import argparse
import statistics
import time

from harness.targets import TargetOptions
from harness.targets.local import LocalTarget

GOAL_SECONDS = 30.0


def one_run(index: int) -> float:
    target = LocalTarget(TargetOptions(run_name=f"bench-startup-{index}"))
    started = time.perf_counter()
    target.up()
    elapsed = time.perf_counter() - started
    target.down()
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    times = [one_run(i) for i in range(args.runs)]
    median = statistics.median(times)
    print(f"local stack up -> healthy: {', '.join(f'{t:.1f}s' for t in times)}")
    print(f"median {median:.1f}s; goal {GOAL_SECONDS:.0f}s; median/goal ratio {median / GOAL_SECONDS:.2f}")
    return 0 if median < GOAL_SECONDS else 1


if __name__ == "__main__":
    raise SystemExit(main())
