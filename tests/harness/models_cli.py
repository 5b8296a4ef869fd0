"""`python -m harness models check|sync`: drift between the values catalog, the gateway, llama-stack
and a MaaS (harness.model_drift), for the stack that runs on any target.

`check` prints one table and exits 1 on any drift, naming the model and the registry; 0 when every
registry lists what the catalog says. `sync` registers in llama-stack what it misses, through the
registration path (`harness.registration.register`), and never removes; `--dry-run` only reports.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from harness.cli_common import add_run_name, add_target
from harness.cluster.target import ClusterTarget
from harness.declared import Declared
from harness.endpoints import Endpoints
from harness.maas import MaasSettings
from harness.model_drift import CheckReport, Stack, check, sync
from harness.paths import VALUES_DIR
from harness.redact import redact
from harness.registration import TARGET_OVERLAY
from harness.targets import Target, TargetOptions, get_target
from harness.targets.local import LocalTarget

FORMATS = ("table", "json")


def values_files(target: Target, name: str, extra: list[Path]) -> list[Path]:
    """The values files the install declares: the local run's overlay and overlays; a cluster
    target's own values files; then `--values` overlays. Never the harness's generated files
    (ports, registrations, fault overrides): the catalog is what the user declared."""
    if isinstance(target, LocalTarget):
        return [VALUES_DIR / "local.yaml", *target.run.overlays(), *extra]
    if isinstance(target, ClusterTarget):
        return [*target.own_values(), *extra]
    return [VALUES_DIR / f"{TARGET_OVERLAY.get(name, name)}.yaml", *extra]


def stack_of(target: Target, name: str, extra: list[Path], endpoints: Endpoints | None = None) -> Stack:
    """The running stack as the check sees it (`endpoints`: the target's status, when already read)."""
    endpoints = endpoints or target.status()
    return Stack(
        gateway_url=endpoints.gateway_url,
        llama_stack_url=endpoints.llama_stack_url,
        keys=endpoints.keys,
        declared=Declared.from_files(values_files(target, name, extra)),
        applied=target.applied_models(),
        in_cluster_gateway_url=endpoints.in_cluster_gateway_url,
        maas=MaasSettings.from_env(),
    )


def print_report(report: CheckReport, fmt: str, secrets: list[str]) -> None:
    text = report.render_json() if fmt == "json" else report.render_table()
    print(redact(text, secrets))


def cmd_check(args: argparse.Namespace) -> int:
    target = get_target(args.target, TargetOptions(namespace=args.namespace, run_name=args.run_name))
    try:
        stack = stack_of(target, args.target, args.values)
        report = check(stack)
    finally:
        target.close()
    print_report(report, args.format, secrets_of(stack))
    return 0 if report.ok else 1


def cmd_sync(args: argparse.Namespace) -> int:
    target = get_target(args.target, TargetOptions(namespace=args.namespace, run_name=args.run_name))
    try:
        stack = stack_of(target, args.target, args.values)
        report = check(stack)
        names, registration = sync(target, stack, report, dry_run=args.dry_run)
        after = check(stack) if registration is not None else report
    finally:
        target.close()
    secrets = secrets_of(stack)
    if not names:
        print("llama-stack lists every catalog model: nothing to register")
    elif registration is None:
        print("dry run: would register in llama-stack: " + ", ".join(names))
    else:
        print(redact(registration.render(), secrets))
    # What sync does not repair (the gateway, a MaaS, models llama-stack lists beyond the catalog).
    left = after.drift_lines()
    if left:
        print("\n".join(["still drifting (sync only registers in llama-stack; it never removes):", *left]))
    if registration is not None and not registration.ok:
        return 1
    return 0 if (args.dry_run or not left) else 1


def secrets_of(stack: Stack) -> list[str]:
    keys = [key for found in stack.keys.values() for key in found]
    return [*keys, stack.maas.api_key] if stack.maas and stack.maas.api_key else keys


def add_commands(subparsers: Any) -> None:
    models = subparsers.add_parser(
        "models", help="compare the models of the values, the gateway, llama-stack and a MaaS; repair llama-stack",
        description="Drift between the model registries of a running stack.",
    )  # fmt: skip
    sub = models.add_subparsers(dest="models_command", required=True)
    check_parser = sub.add_parser(
        "check", help="one table of which registry lists which model; exit 1 on any drift",
        description="Compare the values catalog (global.models), the gateway's GET /v1/models for each tier "
        "(one key per tier), llama-stack's GET /v1/models and, with MAAS_ENDPOINT and MAAS_API_KEY set, the "
        "MaaS's discovery endpoint. Exit 0 when every registry lists what the catalog says, 1 on any drift "
        "(each drift line names the model and the registry).",
    )  # fmt: skip
    check_parser.add_argument("--format", choices=FORMATS, default="table", help="output format (default table)")
    check_parser.set_defaults(func=cmd_check)
    sync_parser = sub.add_parser(
        "sync", help="register in llama-stack the catalog models it does not list (never removes)",
        description="Register in llama-stack every catalog model it does not list, through the harness's "
        "registration path (local: config + restart; cluster: helm upgrade), then check again.",
    )  # fmt: skip
    sync_parser.add_argument("--dry-run", action="store_true", help="only report what it would register")
    sync_parser.set_defaults(func=cmd_sync)
    for parser in (check_parser, sync_parser):
        add_target(parser)
        add_run_name(parser)
        parser.add_argument("--namespace", default="", help="cluster targets: namespace (default: the recorded one)")
        parser.add_argument(
            "--values", action="append", type=Path, default=[], metavar="FILE",
            help="a values overlay the install was made with, beyond the target's own (repeatable)",
        )  # fmt: skip
