"""What every `python -m harness` command shares: the --target and --run-name options, and
`run`, the one place where a `HarnessError` becomes one line saying what failed and what to do."""

from __future__ import annotations

import argparse
import os
import sys

from harness.errors import HarnessError
from harness.targets import TARGET_NAMES
from harness.targets.choice import resolve_target

TARGET_HELP = (
    "where the stack runs (default: the one running: a local stack, then a recorded cluster install; "
    "else local; env RAG_TARGET)"
)


def add_target(parser: argparse.ArgumentParser, choices: tuple[str, ...] = TARGET_NAMES) -> None:
    parser.add_argument("--target", choices=choices, default=None, help=TARGET_HELP)
    parser.set_defaults(target_choices=choices)


def add_run_name(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--run-name", default=os.environ.get("RAG_RUN_NAME", "default"),
        help="local: which stack, a folder under .cache/runs (env RAG_RUN_NAME; default default)",
    )  # fmt: skip


def add_stack_location(parser: argparse.ArgumentParser, release_help: str = "cluster targets: the release") -> None:
    """--target, --run-name, and the cluster targets' --namespace and --release: which running stack."""
    add_target(parser)
    add_run_name(parser)
    parser.add_argument("--namespace", default="", help="cluster targets: namespace (default: the recorded one)")
    parser.add_argument("--release", default="rag", help=release_help)


def run(args: argparse.Namespace) -> int:
    """Run a parsed command; a HarnessError ends in one line saying what failed and what to do."""
    try:
        if hasattr(args, "target_choices"):
            resolve_target(args, args.target_choices)
        return int(args.func(args))
    except KeyboardInterrupt:
        return 130
    except HarnessError as exc:
        if exc.detail:
            print(exc.detail, file=sys.stderr)
        print(f"error: {exc.summary}", file=sys.stderr)
        return 1
