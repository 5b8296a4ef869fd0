"""`python -m harness`: bootstrap tools, bring a target up or down, show its endpoints."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from harness import cluster_cli
from harness.registration import add_register_parser, register_command
from harness.targets import TARGET_NAMES, TargetOptions, get_target


def _add_target_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--target", choices=TARGET_NAMES, default="local", help="where the stack runs (default local)")
    parser.add_argument("--run-name", default="default", help="local: which stack (a folder under .cache/runs)")
    parser.add_argument("--namespace", default="", help="kind/existing: namespace (default: one per run)")
    parser.add_argument("--values", action="append", type=Path, default=[], help="extra values overlay (repeatable)")
    parser.add_argument("--keep", action="store_true", help="kind/existing: leave the deployment running")


def _options(args: argparse.Namespace) -> TargetOptions:
    return TargetOptions(namespace=args.namespace, keep=args.keep, values=args.values, run_name=args.run_name)


def cmd_bootstrap(args: argparse.Namespace) -> int:
    from harness.bootstrap import bootstrap

    return bootstrap()


def cmd_up(args: argparse.Namespace) -> int:
    options = _options(args)
    if args.target == "local":
        from harness.local.ports import Ports
        from harness.targets.local import LocalTarget

        target = LocalTarget(options, Ports(gateway=args.gateway_port, llama_stack=args.llama_stack_port))
    else:
        target = get_target(args.target, options)
    endpoints = target.up()
    print(f"stack is up: gateway {endpoints.gateway_url}, llama-stack {endpoints.llama_stack_url}", file=sys.stderr)
    print(f"llama-stack models: {', '.join(endpoints.llama_stack_models)}", file=sys.stderr)
    print("endpoints and keys: `make status`; stop: `make down`", file=sys.stderr)
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    get_target(args.target, _options(args)).down()
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    print(get_target(args.target, _options(args)).status().to_json())
    return 0


def cmd_diagnose(args: argparse.Namespace) -> int:
    dest = get_target(args.target, _options(args)).diagnose(args.dest)
    print(f"diagnostics written to {dest}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m harness", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("bootstrap", help="install pinned tools into .cache/bin").set_defaults(func=cmd_bootstrap)

    up = sub.add_parser("up", help="deploy the stack and wait until every component is healthy")
    _add_target_options(up)
    up.add_argument("--gateway-port", type=int, default=0, help="local: gateway port (default: a free one)")
    up.add_argument("--llama-stack-port", type=int, default=0, help="local: llama-stack port (default: a free one)")
    up.set_defaults(func=cmd_up)

    for name, func, text in (
        ("down", cmd_down, "stop the stack (local: keeps the run folder)"),
        ("status", cmd_status, "print the endpoints of the running stack as one JSON document"),
    ):
        p = sub.add_parser(name, help=text)
        _add_target_options(p)
        p.set_defaults(func=func)

    diag = sub.add_parser("diagnose", help="collect logs and rendered configs (secrets redacted)")
    _add_target_options(diag)
    diag.add_argument("--dest", type=Path, default=Path("diagnostics"), help="folder to write (default diagnostics/)")
    diag.set_defaults(func=cmd_diagnose)

    register = sub.add_parser("register", help="register MaaS models in llama-stack (idempotent)")
    _add_target_options(register)
    add_register_parser(register)
    register.set_defaults(func=register_command)

    cluster_cli.register(sub)  # install, cleanup, verify
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # a readable one-line error for the user; tracebacks only with -X dev
        if sys.flags.dev_mode:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 1
