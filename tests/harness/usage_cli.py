"""`python -m harness usage`: the bill (tokens, charge, requests and refusals by user, model or tier)
from the Prometheus that scrapes the gateway, as a table, JSON or CSV, and `--plot` to draw it.

The Prometheus is the stack's own (the rag chart's `prometheus`, on the local target and the kube
lane) or any other that scrapes the gateway (`--prometheus URL`). Every output states where its
numbers come from and the window they cover (CSV on stderr, to keep the file plain).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from harness import usage_report
from harness.cli_common import add_stack_location
from harness.errors import HarnessError
from harness.targets import Target, TargetOptions, get_target


class NoPrometheus(HarnessError):
    pass


def _stack_prometheus(target: Target) -> str:
    """The URL of the stack's own Prometheus (on a cluster, a port-forward that lives as long as `target`)."""
    url = target.status().prometheus_url
    if not url:
        raise NoPrometheus(
            f"the {target.name} stack runs no Prometheus (the rag chart's prometheus.enabled): "
            "enable it, or pass --prometheus URL of one that scrapes the gateway"
        )
    return url


def cmd_usage(args: argparse.Namespace) -> int:
    window = usage_report.window(args.since, args.until)
    options = TargetOptions(release=args.release, namespace=args.namespace, run_name=args.run_name)
    target = None if args.prometheus else get_target(args.target, options)
    try:
        prom = usage_report.Prometheus(str(args.prometheus) if target is None else _stack_prometheus(target))
        try:
            bill = usage_report.bill(prom, window, args.by)
            if args.format == "csv":
                print(bill.statement(), file=sys.stderr)
            print(usage_report.render(bill, args.format))
            if args.plot:
                lines = usage_report.cumulative_tokens(prom, window, args.by)
                usage_report.plot(lines, window, args.by, prom.url, Path(args.plot))
                print(f"plot of tokens by {args.by} written to {args.plot}", file=sys.stderr)
        finally:
            prom.close()
    finally:
        if target is not None:
            target.close()
    return 0


def add_commands(subparsers: Any) -> None:
    usage = subparsers.add_parser(
        "usage", help="the bill: tokens, charge, requests and refusals by user, model or tier, from Prometheus",
        description="Tokens (input, output, and the weighted charge the budgets counted), requests and refusals "
        "over the last --since, by user, model or tier, from the Prometheus that scrapes the gateway's usage "
        "metrics. Numbers are counter increases from raw samples (exact, not extrapolated).",
    )  # fmt: skip
    usage.add_argument("--since", default="1h", metavar="DURATION|TIME",
                       help="the window's start: a duration before --until (15m, 1h, 7d; default 1h) or a UTC time "
                       "such as 2026-11-01T00:00:00Z")  # fmt: skip
    usage.add_argument("--until", default="", metavar="TIME", help="the window's end, a UTC time (default now)")
    usage.add_argument("--by", choices=usage_report.GROUPS, default="user", help="one row per user, model or tier")
    usage.add_argument("--format", choices=usage_report.FORMATS, default="table", help="output format (default table)")
    usage.add_argument("--plot", default="", metavar="FILE.png", help="also draw tokens over time per group into a PNG")
    usage.add_argument("--prometheus", default="", metavar="URL", help="a Prometheus that scrapes the gateway "
                       "(default: the stack's own, the rag chart's prometheus)")  # fmt: skip
    add_stack_location(usage)
    usage.set_defaults(func=cmd_usage)
