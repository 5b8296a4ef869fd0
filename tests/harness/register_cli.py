"""`python -m harness register`: registration (harness.registration) against the target that runs."""

from __future__ import annotations

import os
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from harness.maas import MaasSettings
from harness.redact import redact
from harness.registration import (
    DEFAULT_PROVIDER,
    EXTERNAL_PROVIDER,
    base_models,
    harness_key,
    model_key,
    register,
    register_maas,
)
from harness.targets import TargetOptions, get_target


def register_command(args: Any) -> int:
    """`python -m harness register [--target T] [--discover] [--model ID ...] [--remove ID ...]`.

    Reads MAAS_ENDPOINT (or --maas-endpoint), MAAS_API_KEY, MAAS_MODEL, MAAS_CA_BUNDLE and
    MAAS_TLS_VERIFY from the environment (the key never from a command line). Prints the
    report; exit 0 when every desired model is listed, 1 otherwise, 2 with nothing to do.
    """
    settings = MaasSettings.from_env()
    if getattr(args, "maas_endpoint", None):
        settings = replace(settings, endpoint=args.maas_endpoint)
    ids = list(getattr(args, "model", None) or [])
    overlays = [Path(v) for v in getattr(args, "values", None) or []]
    options = TargetOptions(run_name=getattr(args, "run_name", None) or "default", values=overlays)
    target_name = getattr(args, "target", None) or "local"
    target = get_target(target_name, options)
    endpoints = target.status()
    if not settings.endpoint:
        # No external MaaS: the stack's own gateway plays it. The harness's key only lists its
        # models; llama-stack gets no key of the gateway (its calls spend each caller's budget).
        key = settings.api_key or harness_key(endpoints.keys)
        settings = replace(settings, endpoint=endpoints.gateway_url, api_key=key)
    own_gateway = settings.endpoint.rstrip("/").removesuffix("/v1") == endpoints.gateway_url.rstrip("/")
    removals = [model_key(i) for i in getattr(args, "remove", None) or []]
    if removals and not ids and not getattr(args, "discover", False):
        report = register(target, endpoints.llama_stack_url, {}, remove=removals)
    elif not ids and not getattr(args, "discover", False):
        print("nothing to register: give --model ID, --discover or --remove ID", file=sys.stderr)
        return 2
    else:
        provider = DEFAULT_PROVIDER if own_gateway else EXTERNAL_PROVIDER
        report = register_maas(
            target,
            endpoints.llama_stack_url,
            settings,
            discover_all=not ids,
            ids=ids,
            provider=provider,
            declared=base_models(target_name, overlays),
        )
    print(redact(report.render(), [settings.api_key]))
    return 0 if report.ok else 1


def add_register_parser(parser: Any) -> None:
    """Options of `python -m harness register` (the CLI adds --target/--run-name/--values)."""
    parser.add_argument("--discover", action="store_true", help="register every model the MaaS lists to the key")
    parser.add_argument(
        "--model", action="append", default=[], metavar="ID", help="a model id to register (repeatable)"
    )
    parser.add_argument(
        "--remove", action="append", default=[], metavar="ID", help="a model id to remove (repeatable); keeps the rest"
    )
    parser.add_argument(
        "--maas-endpoint",
        default=os.environ.get("MAAS_ENDPOINT", ""),
        help="MaaS base URL (env MAAS_ENDPOINT; default: the stack's gateway)",
    )
    # The MaaS API key comes from the environment only (MAAS_API_KEY): a secret on a command
    # line is visible to every user of the machine through the process list.
