"""`install`, `cleanup` and `verify`: the commands behind scripts/install.sh, cleanup.sh, verify-install.sh.

`add_commands(subparsers)` adds them to `python -m harness`; each sets `func(args) -> int`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from harness import model_drift
from harness.cli_common import add_run_name, add_target, run
from harness.cluster import secrets as cluster_secrets
from harness.cluster.profile import GPU_PRESETS, InstallProfile, parse_rate_limit
from harness.cluster.runner import DryRunRunner
from harness.cluster.verify import Check, Verifier
from harness.endpoints import Endpoints
from harness.errors import HarnessError
from harness.maas import MaasSettings
from harness.models_cli import print_report, secrets_of, stack_of
from harness.redact import mask_known
from harness.render import helm_template
from harness.targets import TargetOptions, get_target
from harness.targets.existing import ExistingTarget
from harness.targets.kind import KindTarget
from harness.targets.kube import KubeTarget
from harness.waiting import ROLLOUT_TIMEOUT_S

CLUSTER_TARGETS = ("kind", "existing", "kube")
ALL_TARGETS = ("local", *CLUSTER_TARGETS)

INSTALL_EPILOG = """\
examples:
  scripts/install.sh --simulator                          CPU simulator as the model (any cluster)
  scripts/install.sh --qwen3 --gpu-preset t4 --check-gpu   Qwen3 on an NVIDIA T4 via vllm-gpu
  scripts/install.sh --token-rate-limit free=500 --namespace rag
  scripts/install.sh --target kind --simulator --dry-run
  MAAS_ENDPOINT=https://maas.example/v1 MAAS_API_KEY=... scripts/install.sh --maas

The MaaS key (MAAS_API_KEY) never appears on a command line: it becomes the Secret
maas-api-key through kubectl's stdin. Generated values go to 0600 files in a private temp dir.
"""


def _existing_file(text: str) -> Path:
    path = Path(text).expanduser().resolve()
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"values file {text} not found")
    return path


def _rate_limit(text: str) -> tuple[str, int]:
    try:
        return parse_rate_limit(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def _common(parser: argparse.ArgumentParser, targets: tuple[str, ...]) -> None:
    add_target(parser, targets)
    parser.add_argument(
        "--namespace", default="", help="namespace (default: kind rag-e2e; existing: the recorded install, or a new "
        "rag-e2e-<id> on install)",
    )  # fmt: skip
    parser.add_argument("--release", default="rag", help="Helm release name (default rag)")
    parser.add_argument("--cluster-name", default="rag-e2e", help="kind: cluster name (default rag-e2e)")


def _add_run_name(parser: argparse.ArgumentParser) -> None:
    add_run_name(parser)


def add_commands(subparsers: Any) -> None:
    install = subparsers.add_parser(
        "install",
        help="install the rag chart on a cluster (kind or the current kube context)",
        description="Install (or upgrade) the rag umbrella chart and wait until every workload is ready.",
        epilog=INSTALL_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _common(install, CLUSTER_TARGETS)
    model = install.add_mutually_exclusive_group()
    model.add_argument("--simulator", action="store_true", help="serve the model with the CPU inference simulator")
    model.add_argument(
        "--qwen3", action="store_true",
        help="serve Qwen/Qwen3-0.6B with vLLM on an NVIDIA GPU (vllm-gpu chart, values/gpu-<preset>.yaml)",
    )  # fmt: skip
    install.add_argument("--gpu-preset", choices=GPU_PRESETS, default="t4", help="GPU tuning for --qwen3 (default t4)")
    install.add_argument(
        "--check-gpu", action="store_true",
        help="before installing, fail unless a node has nvidia.com/gpu capacity; if nodes are labelled "
        "nvidia.com/gpu.present=true without capacity yet (GPU operator initializing), wait up to --gpu-timeout",
    )  # fmt: skip
    install.add_argument("--gpu-timeout", type=float, default=600.0, metavar="SECONDS", help="default 600")
    install.add_argument(
        "--token-rate-limit", type=_rate_limit, action="append", default=[], metavar="TIER=TOKENS",
        help="override a gateway tier's token limit per window, e.g. free=500 (repeatable)",
    )  # fmt: skip
    install.add_argument(
        "--openshift-routes", action=argparse.BooleanOptionalAction, default=None,
        help="expose llama-stack and the gateway through OpenShift Routes (values/openshift.yaml); "
        "default: on when the cluster serves route.openshift.io",
    )  # fmt: skip
    install.add_argument(
        "--values", type=_existing_file, action="append", default=[], metavar="FILE",
        help="extra values overlay, applied last (repeatable)",
    )  # fmt: skip
    install.add_argument(
        "--maas", action="store_true",
        help="use an external MaaS (values/kind-maas.yaml) from MAAS_ENDPOINT, MAAS_API_KEY, MAAS_MODEL",
    )  # fmt: skip
    install.add_argument(
        "--rollout-timeout", type=float, default=ROLLOUT_TIMEOUT_S, metavar="SECONDS",
        help=f"default {ROLLOUT_TIMEOUT_S:.0f}",
    )  # fmt: skip
    install.add_argument(
        "--dry-run", action="store_true", help="print the commands it would run (secrets masked); change nothing"
    )
    install.set_defaults(func=cmd_install)

    cleanup = subparsers.add_parser(
        "cleanup", help="remove an install (idempotent: nothing installed is not an error)",
        description="Uninstall the release and delete the namespace the harness created. Safe to run twice.",
    )  # fmt: skip
    _common(cleanup, ALL_TARGETS)
    _add_run_name(cleanup)
    cleanup.add_argument(
        "--delete-cluster", action=argparse.BooleanOptionalAction, default=None,
        help="kind: also delete the cluster (default: only if the harness created it)",
    )  # fmt: skip
    cleanup.set_defaults(func=cmd_cleanup)

    verify = subparsers.add_parser(
        "verify", help="check a running install quickly, one line per check",
        description="Checks: gateway 401 without a key, 200 with a key, a chat completion with usage and "
        "x-ratelimit headers, llama-stack /v1/health, llama-stack lists its models; last, the models drift "
        "check (`models check`): the values catalog, the gateway's listing per tier, llama-stack and, with "
        "MAAS_ENDPOINT and MAAS_API_KEY set, the MaaS list the same models.",
    )  # fmt: skip
    _common(verify, ALL_TARGETS)
    _add_run_name(verify)
    verify.add_argument(
        "--values", type=_existing_file, action="append", default=[], metavar="FILE",
        help="a values overlay the install was made with, beyond the target's own (repeatable): the drift "
        "check's catalog",
    )  # fmt: skip
    verify.set_defaults(func=cmd_verify)


def _options(args: argparse.Namespace) -> TargetOptions:
    return TargetOptions(
        release=args.release,
        namespace=args.namespace,
        values=list(getattr(args, "values", [])),
        cluster_name=args.cluster_name,
        maas=bool(getattr(args, "maas", False)),
        run_name=getattr(args, "run_name", "default"),
    )


def _profile(args: argparse.Namespace) -> InstallProfile:
    profile = InstallProfile(
        simulator=args.simulator,
        qwen3=args.qwen3,
        gpu_preset=args.gpu_preset,
        check_gpu=args.check_gpu,
        gpu_timeout=args.gpu_timeout,
        token_rate_limits=dict(args.token_rate_limit),
        openshift_routes=args.openshift_routes,
        rollout_timeout=args.rollout_timeout,
    )
    profile.validate()
    return profile


def cluster_target(args: argparse.Namespace, **kwargs: Any) -> Any:
    """A kind/existing target with harness-CLI extras (profile, runner); plain get_target for the rest."""
    options = _options(args)
    if args.target == "kind":
        return KindTarget(options, **kwargs)
    if args.target == "existing":
        return ExistingTarget(options, **kwargs)
    if args.target == "kube":
        return KubeTarget(options, **kwargs)
    return get_target(args.target, options)


def cmd_install(args: argparse.Namespace) -> int:
    profile = _profile(args)
    maas = MaasSettings.from_env() if args.maas else None
    kwargs: dict[str, Any] = {"profile": profile, "maas": maas}
    if args.dry_run:
        kwargs.update(runner=DryRunRunner(secrets=[maas.api_key] if maas else []), dry_run=True)
    target = cluster_target(args, **kwargs)
    try:
        deployment = target.deploy()
        if args.dry_run:
            _print_generated(deployment, maas)
            _render_as_installed(target, deployment, args.release)
            print("dry run: the chart renders and passes its schema with these values; nothing was changed",
                  file=sys.stderr)  # fmt: skip
            return 0
        _next_steps(args, deployment.namespace)
        return 0
    finally:
        target.close()


def _render_as_installed(target: Any, deployment: Any, release: str) -> None:
    """`helm template` with exactly the values `helm upgrade --install` would get: a dry run fails
    where the install would (values schema, template checks), naming the bad value."""
    values = deployment.values_with_maas(target.values())
    helm_template(deployment.chart_dir, release, values, namespace=deployment.namespace or "default")


def _print_generated(deployment: Any, maas: MaasSettings | None) -> None:
    """Show the generated values files (masked) so a dry run explains every -f it printed."""
    known = [maas.api_key] if maas and maas.api_key else []
    for path in deployment.private_files():
        print(f"# {path.name} (mode {oct(path.stat().st_mode & 0o777)}):")
        print(mask_known(path.read_text(), known).rstrip())


def _next_steps(args: argparse.Namespace, namespace: str) -> None:
    where = f"--target {args.target} --namespace {namespace}"
    print(f"\ninstalled release {args.release} in namespace {namespace}")
    print(f"  check it:   scripts/verify-install.sh {where}")
    print(f"  remove it:  scripts/cleanup.sh {where}")


def cmd_cleanup(args: argparse.Namespace) -> int:
    kwargs: dict[str, Any] = {}
    if args.target == "kind":
        kwargs["delete_cluster"] = args.delete_cluster
    target = cluster_target(args, **kwargs)
    target.down()
    print(f"cleanup ({args.target}): done")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    target = cluster_target(args)
    try:
        endpoints = target.status()
        known = cluster_secrets.all_keys(endpoints.keys)
        print(f"verifying {args.target}: gateway {endpoints.gateway_url}, llama-stack {endpoints.llama_stack_url}")
        checks = Verifier(endpoints).run()
        for check in checks:
            print(mask_known(check.line(), known))
        checks.append(_models_check(target, args, endpoints, known))
    finally:
        target.close()
    failed = [c for c in checks if not c.ok]
    if failed:
        print(f"verify: {len(failed)} of {len(checks)} checks FAILED")
        return 1
    print(f"verify: all {len(checks)} checks OK")
    return 0


def _models_check(target: Any, args: argparse.Namespace, endpoints: Endpoints, known: list[str]) -> Check:
    """`models check` as verify's last check: its table, then one PASS/FAIL line."""
    name = "models agree across registries"
    try:
        stack = stack_of(target, args.target, list(args.values), endpoints)
        report = model_drift.check(stack)
    except HarnessError as error:
        result = Check(name, False, error.summary)
    else:
        print()
        print_report(report, "table", secrets_of(stack))
        detail = "values, gateway, llama-stack" + (" and the MaaS" if model_drift.MAAS in report.columns else "")
        drifting = sorted({row.model for row in report.rows if row.drift()})
        result = Check(name, report.ok, f"{detail}: drift in {drifting}" if drifting else f"{detail} agree")
    print(mask_known(result.line(), known))
    return result


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry (tests): `python -m harness.cluster_cli install ...`; errors as in `python -m harness`."""
    parser = argparse.ArgumentParser(prog="python -m harness")
    add_commands(parser.add_subparsers(dest="command", required=True))
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
