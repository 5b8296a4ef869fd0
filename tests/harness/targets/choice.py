"""Which target a command means when `--target` is not given: the one that is running.

Every command resolves a missing `--target` the same way, and says what it chose:
RAG_TARGET when set; else a running local stack (of the given run name); else the
target of a recorded cluster install (kind, existing, ...); else local, or for
commands that only reach clusters, the current kube context (existing).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from harness.cluster import state
from harness.local.state import RunFolder

FALLBACKS = ("local", "existing")  # in this order, the first one the command accepts


def running_targets(run_name: str, names: Sequence[str]) -> list[tuple[str, str]]:
    """(target, why) for each target in `names` that has something running or recorded."""
    found: list[tuple[str, str]] = []
    for name in names:
        if name == "local":
            if RunFolder.named(run_name).alive_pids():
                found.append((name, f"a local stack named {run_name!r} is running"))
        elif (saved := state.load(name)) is not None:
            found.append((name, f"a {name} install is recorded (namespace {saved.namespace})"))
    return found


def choose_target(choices: Sequence[str], *, run_name: str = "default") -> tuple[str, str]:
    """(target, why) for a command that accepts `choices` and got no --target."""
    env = os.environ.get("RAG_TARGET", "")
    if env in choices:
        return env, "from RAG_TARGET"
    running = running_targets(run_name, choices)
    if running:
        return running[0]
    fallback = next(name for name in FALLBACKS if name in choices)
    return fallback, "nothing else is running or recorded"


def resolve_target(args: object, choices: Sequence[str]) -> None:
    """Fill `args.target` when the user gave none, and say which target was chosen and why."""
    if getattr(args, "target", None):
        return
    target, why = choose_target(choices, run_name=getattr(args, "run_name", "default"))
    args.target = target  # type: ignore[attr-defined]
    print(f"[harness] target {target}: {why} (choose with --target)", file=sys.stderr)
