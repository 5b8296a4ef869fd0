"""`python -m harness`: bootstrap tools, bring a target up or down, show its endpoints.

Errors the user can fix (`HarnessError`) print as their detail, then one line: what failed
and what to do. The wrapper scripts set HARNESS_SCRIPT so that help and usage name them.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from harness import chart_docs, cluster_cli, keys_cli, models_cli, usage_cli
from harness.bootstrap import bootstrap
from harness.chart_archives import refuse_stale_archives, remove_stale_archives
from harness.cli_common import add_run_name, add_target, run
from harness.errors import BuildError, HarnessError, ToolMissing
from harness.kube import prebuild
from harness.local.clean import clean
from harness.local.ports import Ports
from harness.local.processes import sigterm_interrupts
from harness.paths import CHARTS_DIR, RUNS_DIR
from harness.register_cli import add_register_parser, register_command
from harness.targets import Target, TargetOptions, get_target
from harness.targets.local import LocalTarget

SCRIPT_ENV = "HARNESS_SCRIPT"  # set by scripts/lib.sh: the script's own name, for usage lines
def _add_namespace(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--namespace", default="", help="cluster targets: namespace (default: the recorded one)")


def _add_values(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--values", action="append", type=Path, default=[], metavar="FILE", help="extra values overlay (repeatable)"
    )


def _options(args: argparse.Namespace) -> TargetOptions:
    values = [p.resolve() for p in getattr(args, "values", [])]
    return TargetOptions(namespace=getattr(args, "namespace", ""), values=values, run_name=args.run_name)


def cmd_bootstrap(args: argparse.Namespace) -> int:
    return bootstrap()


def cmd_docs(args: argparse.Namespace) -> int:
    charts = chart_docs.documented_charts(CHARTS_DIR)
    if args.check:
        stale = [s for s in map(chart_docs.stale_readme, charts) if s is not None]
        for readme in stale:
            print(readme.diff, file=sys.stderr)
        if stale:
            raise HarnessError("; ".join(readme.describe() for readme in stale))
        print(f"chart READMEs up to date: {', '.join(c.name for c in charts)}")
        return 0
    for chart in charts:
        changed = chart_docs.write(chart)
        print(f"charts/{chart.name}/{chart_docs.README}: {'regenerated' if changed else 'up to date'}")
    return 0


def cmd_build(args: argparse.Namespace) -> int:
    if args.background:
        prebuild.start_background(args.owner or os.getppid())
        return 0
    try:
        prebuild.build(owner=args.owner)
    except ToolMissing as exc:
        raise HarnessError(f"the kube lane cannot be built here: {exc}") from None
    except BuildError as exc:
        raise HarnessError("the kube lane's build failed (the message above names the step)", detail=str(exc)) from None
    return 0


def cmd_up(args: argparse.Namespace) -> int:
    options = _options(args)
    target: Target
    if args.target == "local":
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


def cmd_clean(args: argparse.Namespace) -> int:
    names = clean()
    print(f"removed {RUNS_DIR} ({len(names)} run folders: {', '.join(names) or 'none'}) and their temp data")
    return 0


def cmd_clean_charts(args: argparse.Namespace) -> int:
    if args.check:
        refuse_stale_archives(CHARTS_DIR)
        return 0
    removed = remove_stale_archives(CHARTS_DIR)
    print(f"removed {len(removed)} stale subchart archives: {', '.join(map(str, removed)) or 'none'}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m harness", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser(
        "bootstrap", help="install pinned tools into .cache/bin",
        description="Install the pinned non-Python tools (helm 3 and 4, kubectl, kind, ratelimit, actionlint, "
        "helm-docs, Redis, shellcheck, tiktoken data) into .cache/bin. Idempotent: present tools are skipped. "
        "`make bootstrap` first creates .cache/venv with the Python packages.",
    ).set_defaults(func=cmd_bootstrap)  # fmt: skip

    docs = sub.add_parser(
        "docs", help="regenerate the charts' README.md files with helm-docs",
        description="Regenerate each chart's README.md from its README.md.gotmpl and the `# --` comments "
        "of its values.yaml (helm-docs).",
    )  # fmt: skip
    docs.add_argument("--check", action="store_true", help="write nothing; fail when a committed README is stale")
    docs.set_defaults(func=cmd_docs)

    build = sub.add_parser(
        "build", help="build the kube lane's binaries and images (cached), without starting a cluster",
        description="Build (or reuse) the kube lane's Kubernetes, CoreDNS and kube-router binaries and its "
        "images into .cache/kube, without starting a cluster. `make test` runs it in the background during "
        "the main suite; the lane waits for it and finds everything built.",
    )  # fmt: skip
    build.add_argument("--owner", type=int, default=None, metavar="PID", help="stop when process PID ends")
    build.add_argument(
        "--background", action="store_true",
        help="start the build at the lowest priority and return at once (log: .cache/kube/background-build.log); "
        "it stops when --owner (default: this command's parent) ends",
    )  # fmt: skip
    build.set_defaults(func=cmd_build)

    up = sub.add_parser("up", help="deploy the stack and wait until every component is healthy")
    add_target(up)
    add_run_name(up)
    _add_namespace(up)
    _add_values(up)
    up.add_argument("--gateway-port", type=int, default=0, help="local: gateway port (default: a free one)")
    up.add_argument("--llama-stack-port", type=int, default=0, help="local: llama-stack port (default: a free one)")
    up.set_defaults(func=cmd_up)

    for name, func, text in (
        ("down", cmd_down, "stop the stack (local: keeps the run folder; removes its temp data)"),
        ("status", cmd_status, "print the endpoints of the running stack as one JSON document"),
    ):
        p = sub.add_parser(name, help=text, description=text[0].upper() + text[1:] + ".")
        add_target(p)
        add_run_name(p)
        _add_namespace(p)
        p.set_defaults(func=func)

    diag = sub.add_parser("diagnose", help="collect logs and rendered configs (secrets redacted)")
    add_target(diag)
    add_run_name(diag)
    _add_namespace(diag)
    diag.add_argument("--dest", type=Path, default=Path("diagnostics"), help="folder to write (default diagnostics/)")
    diag.set_defaults(func=cmd_diagnose)

    register = sub.add_parser("register", help="register MaaS models in llama-stack (idempotent)")
    add_target(register)
    add_run_name(register)
    _add_values(register)
    add_register_parser(register)
    register.set_defaults(func=register_command)

    clean = "stop every local stack; delete all run folders and the runs' temp data (keeps installed tools)"
    sub.add_parser("clean", help=clean, description=clean[0].upper() + clean[1:] + ".").set_defaults(func=cmd_clean)

    charts = "remove `helm dependency build` output (Chart.lock, charts/*.tgz) that shadows the linked subcharts"
    clean_charts = sub.add_parser("clean-charts", help=charts, description=charts[0].upper() + charts[1:] + ".")
    clean_charts.add_argument("--check", action="store_true", help="remove nothing; fail when any is present")
    clean_charts.set_defaults(func=cmd_clean_charts)

    cluster_cli.add_commands(sub)  # install, cleanup, verify
    models_cli.add_commands(sub)  # models check|sync
    keys_cli.add_commands(sub)  # keys create|list|revoke|migrate
    usage_cli.add_commands(sub)  # usage
    return parser


def name_the_script(parser: argparse.ArgumentParser, argv: list[str]) -> None:
    """Usage and help of a wrapper script (scripts/install.sh ...) show the script, not `python -m harness`."""
    script = os.environ.get(SCRIPT_ENV, "")
    if not script or not argv:
        return
    # argparse keeps its subcommands only on the private subparsers action.
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction) and argv[0] in action.choices:
            action.choices[argv[0]].prog = script


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    sigterm_interrupts()  # a start stopped by SIGTERM cleans up as after Ctrl-C
    parser = build_parser()
    name_the_script(parser, argv)
    return run(parser.parse_args(argv))
