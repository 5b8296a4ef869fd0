"""Registering MaaS models in llama-stack.

llama-stack 0.7 removed `POST /v1/models`, so "register" means: compute the desired
models, render them as `global.models`, apply them through the target (config +
restart locally, helm upgrade on a cluster) and wait until `GET /v1/models` lists
`<key>/<id>`. A server older than 0.7 still has the register API; then we call it.
"""

from __future__ import annotations

import json
import os
import re
import sys
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

import yaml
from tenacity import RetryError, Retrying, retry_if_result, stop_after_delay, wait_fixed

from harness import llama_stack_auth
from harness.paths import VALUES_DIR
from harness.redact import redact

DEFAULT_PROVIDER = "vllm"
LEGACY_BELOW = (0, 7)  # servers below this version still have POST /v1/models
STALE_REASON = (
    "still listed after its provider was removed: llama-stack 0.7 keeps registered models in its "
    "persistent registry (storage.stores.metadata) until that store is pruned or reset"
)
_KEY_CHARS = re.compile(r"[^a-z0-9-]+")


class AppliesModels(Protocol):
    def apply_models(self, models: dict[str, dict[str, Any]]) -> None: ...


@dataclass(frozen=True)
class ModelSpec:
    """One entry of `global.models`: a model served by an OpenAI-compatible endpoint."""

    key: str  # becomes the llama-stack provider id
    id: str  # the model id at the endpoint
    url: str  # OpenAI-compatible base URL ending in /v1
    api_token: str = ""  # dev only: literal token (the chart puts it in a Secret)
    secret_ref: tuple[str, str] | None = None  # (secret name, key) for apiTokenSecretRef
    provider: str = DEFAULT_PROVIDER
    enabled: bool = True

    @property
    def llama_stack_id(self) -> str:
        return f"{self.key}/{self.id}"

    def to_values(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"id": self.id, "url": self.url, "enabled": self.enabled, "provider": self.provider}
        if self.secret_ref:
            entry["apiTokenSecretRef"] = {"name": self.secret_ref[0], "key": self.secret_ref[1]}
        elif self.api_token:
            entry["apiToken"] = self.api_token
        return entry


@dataclass
class Report:
    """What registration did; `ok` is true when every desired model is listed."""

    method: str = ""  # "config" (apply + restart) or "register-api" (< 0.7) or "none"
    registered: list[str] = field(default_factory=list)  # listed now and desired
    already: list[str] = field(default_factory=list)  # were listed before: nothing applied for them
    missing: dict[str, str] = field(default_factory=dict)  # llama-stack id -> why
    removed: list[str] = field(default_factory=list)
    applied: bool = False  # the target was asked to apply (restart / upgrade)

    @property
    def ok(self) -> bool:
        return not self.missing

    def render(self) -> str:
        lines = [f"registration via {self.method or 'none'}{' (applied)' if self.applied else ''}:"]
        lines += [f"  registered  {m}" for m in self.registered]
        lines += [f"  unchanged   {m}" for m in self.already]
        lines += [f"  removed     {m}" for m in self.removed]
        lines += [f"  MISSING     {m}: {why}" for m, why in self.missing.items()]
        return "\n".join(lines)


def model_key(model_id: str, prefix: str = "maas") -> str:
    """A `global.models` key (a DNS-label-like provider id) derived from a model id."""
    slug = _KEY_CHARS.sub("-", model_id.lower()).strip("-")
    return f"{prefix}-{slug}"[:50].rstrip("-")


def v1_url(endpoint: str) -> str:
    """Endpoints may be given with or without the trailing /v1; normalise to it."""
    base = endpoint.rstrip("/")
    return base if base.endswith("/v1") else base + "/v1"


# --- HTTP -----------------------------------------------------------------------------


def http_json(method: str, url: str, *, token: str = "", body: Any = None, timeout: float = 10) -> tuple[int, Any]:
    """One JSON request; returns (status, parsed body or text). Never raises on HTTP errors."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Accept", "application/json")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    else:  # an authenticated llama-stack the harness knows (see harness.llama_stack_auth)
        for name, value in llama_stack_auth.headers_for(url).items():
            request.add_header(name, value)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, _parse(response.read())
    except urllib.error.HTTPError as error:
        return error.code, _parse(error.read())


def _parse(raw: bytes) -> Any:
    try:
        return json.loads(raw or b"null")
    except ValueError:
        return raw.decode(errors="replace")


def model_ids(payload: Any) -> list[str]:
    """Ids from an OpenAI-style `{"data": [{"id": ...}]}` (llama-stack also uses `identifier`)."""
    items = payload.get("data", []) if isinstance(payload, dict) else []
    return [str(item.get("id") or item.get("identifier")) for item in items if isinstance(item, dict)]


def discover_models(endpoint: str, api_key: str, timeout: float = 10) -> list[str]:
    """The models a MaaS endpoint lists to this key; raises with a redacted reason otherwise."""
    url = v1_url(endpoint) + "/models"
    try:
        status, payload = http_json("GET", url, token=api_key, timeout=timeout)
    except OSError as error:
        raise LookupError(f"MaaS endpoint {url} unreachable: {error}") from error
    if status != 200:
        raise LookupError(f"MaaS endpoint {url} answered {status}: {redact(str(payload)[:300], [api_key])}")
    return model_ids(payload)


def listed_models(llama_stack_url: str, timeout: float = 10) -> list[str]:
    status, payload = http_json("GET", llama_stack_url.rstrip("/") + "/v1/models", timeout=timeout)
    if status != 200:
        raise LookupError(f"llama-stack GET /v1/models answered {status}")
    return model_ids(payload)


def server_version(llama_stack_url: str) -> tuple[int, ...] | None:
    """The server's version from /v1/version, or None when it does not say."""
    try:
        status, payload = http_json("GET", llama_stack_url.rstrip("/") + "/v1/version", timeout=5)
    except OSError:
        return None
    if status != 200 or not isinstance(payload, dict):
        return None
    numbers = re.findall(r"\d+", str(payload.get("version", "")))
    return tuple(int(n) for n in numbers[:3]) or None


def has_register_api(llama_stack_url: str) -> bool:
    """True for a server that still accepts POST /v1/models (llama-stack < 0.7).

    Version first; without one, probe with an empty body: a missing route answers
    404/405, an existing one rejects the body (400/422).
    """
    version = server_version(llama_stack_url)
    if version is not None:
        return version[:2] < LEGACY_BELOW
    status, _ = http_json("POST", llama_stack_url.rstrip("/") + "/v1/models", body={}, timeout=5)
    return status not in (404, 405, 501)


def register_via_api(llama_stack_url: str, spec: ModelSpec) -> None:
    """The pre-0.7 register call; the provider `spec.key` must exist in the run config."""
    body = {
        "model_id": spec.llama_stack_id,
        "provider_id": spec.key,
        "provider_model_id": spec.id,
        "model_type": "llm",
    }
    status, payload = http_json("POST", llama_stack_url.rstrip("/") + "/v1/models", body=body)
    if status >= 300:
        raise RuntimeError(f"POST /v1/models for {spec.llama_stack_id} answered {status}: {str(payload)[:300]}")


# --- planning and applying ------------------------------------------------------------


def declared_specs(
    model_ids_: Iterable[str],
    endpoint: str,
    *,
    api_token: str = "",
    secret_ref: tuple[str, str] | None = None,
    provider: str = DEFAULT_PROVIDER,
) -> dict[str, ModelSpec]:
    """Desired models, keyed like `global.models`, for ids served at one endpoint."""
    url = v1_url(endpoint)
    specs = [ModelSpec(model_key(m), m, url, api_token, secret_ref, provider) for m in model_ids_]
    return {s.key: s for s in specs}


def models_values(
    desired: Mapping[str, ModelSpec],
    remove: Mapping[str, ModelSpec | None] | None = None,
    keep: Iterable[str] = (),
) -> dict[str, dict[str, Any]]:
    """The complete `global.models` to apply.

    Targets apply the dict as the whole of `global.models` (keys not in it are removed),
    so the stack's own models (`keep`: keys declared in its values files) are passed as
    `{}`: under Helm's map merge an empty entry keeps what the values files say, including
    addresses the target filled in. Keys to remove are passed disabled, which also works
    for a target that merges instead of replacing.
    """
    values: dict[str, dict[str, Any]] = {key: {} for key in keep}
    values.update({key: spec.to_values() for key, spec in desired.items()})
    for key, spec in (remove or {}).items():
        if key not in desired:
            values[key] = replace(spec, enabled=False).to_values() if spec else {"enabled": False}
    return values


def base_models(target_name: str, overlays: Iterable[Path] = ()) -> dict[str, dict[str, Any]]:
    """Enabled `global.models` entries of `values/<target>.yaml` plus extra overlays, merged."""
    merged: dict[str, dict[str, Any]] = {}
    for path in [VALUES_DIR / f"{target_name}.yaml", *overlays]:
        if Path(path).is_file():
            document = yaml.safe_load(Path(path).read_text()) or {}
            for key, entry in ((document.get("global") or {}).get("models") or {}).items():
                merged.setdefault(key, {}).update(entry or {})
    return {key: entry for key, entry in merged.items() if entry.get("enabled", True) and entry.get("id")}


def register(
    target: AppliesModels,
    llama_stack_url: str,
    desired: Mapping[str, ModelSpec],
    *,
    remove: Mapping[str, ModelSpec | None] | None = None,
    keep: Iterable[str] = (),
    timeout: float = 120,
) -> Report:
    """Make llama-stack list `desired` (plus what it had) and not the `remove` keys.

    `keep`: keys of the stack's own models (see `models_values`). Idempotent: when every
    desired model is already listed and nothing is to be removed, nothing is applied.
    """
    listed = set(listed_models(llama_stack_url))
    wanted = {spec.llama_stack_id for spec in desired.values()}
    remove = {key: spec for key, spec in (remove or {}).items() if key not in desired}
    remove_keys = list(remove)
    removing = {m for m in listed if m.split("/", 1)[0] in remove_keys}
    report = Report(already=sorted(wanted & listed))
    if wanted <= listed and not removing:
        report.method = "none"
        return report
    if has_register_api(llama_stack_url) and not removing:
        report.method = "register-api"
        for spec in desired.values():
            if spec.llama_stack_id not in listed:
                register_via_api(llama_stack_url, spec)
    else:
        report.method = "config"
        target.apply_models(models_values(desired, remove, keep))
        report.applied = True
    now = wait_until_listed(llama_stack_url, wanted, gone=removing, timeout=timeout)
    report.registered = sorted((wanted & now) - set(report.already))
    report.removed = sorted(removing - now)
    report.missing = explain_missing(wanted - now, desired, now)
    report.missing.update({m: STALE_REASON for m in removing & now})
    return report


def wait_until_listed(
    llama_stack_url: str, wanted: set[str], *, gone: set[str] = frozenset(), timeout: float = 120
) -> set[str]:
    """Poll GET /v1/models until `wanted` are listed and `gone` are not; return the last listing."""

    def fetch() -> set[str]:
        try:
            return set(listed_models(llama_stack_url, timeout=5))
        except (OSError, LookupError):
            return set()  # restarting: not listening yet

    def not_done(now: set[str]) -> bool:
        return not (wanted <= now and not (gone & now))

    retrying = Retrying(stop=stop_after_delay(timeout), wait=wait_fixed(0.5), retry=retry_if_result(not_done))
    try:
        return retrying(fetch)
    except RetryError as error:
        return error.last_attempt.result()


def explain_missing(missing: set[str], desired: Mapping[str, ModelSpec], listed: set[str]) -> dict[str, str]:
    """Why each missing model is missing, as far as the listing tells."""
    by_id = {spec.llama_stack_id: spec for spec in desired.values()}
    reasons: dict[str, str] = {}
    for model in sorted(missing):
        spec = by_id[model]
        same_provider = sorted(m for m in listed if m.startswith(spec.key + "/"))
        if not listed:
            reasons[model] = "llama-stack did not answer GET /v1/models before the timeout"
        elif same_provider:
            reasons[model] = f"provider {spec.key} lists {same_provider} but not {spec.id}"
        else:
            reasons[model] = f"provider {spec.key} not loaded: check the llama-stack log (bad url {spec.url} or token?)"
    return reasons


# --- CLI ------------------------------------------------------------------------------


def register_command(args: Any) -> int:
    """`python -m harness register [--target T] [--discover] [--model ID ...]`.

    Reads MAAS_ENDPOINT (or args.maas_endpoint) and MAAS_API_KEY (environment only).
    Prints the report; exit 0 when every desired model is listed, 1 otherwise.
    """
    from harness.targets import TargetOptions, get_target

    endpoint = getattr(args, "maas_endpoint", None) or os.environ.get("MAAS_ENDPOINT", "")
    api_key = os.environ.get("MAAS_API_KEY", "")
    ids = list(getattr(args, "model", None) or [])
    target_name = getattr(args, "target", None) or "local"
    overlays = [Path(v) for v in getattr(args, "values", None) or []]
    options = TargetOptions(run_name=getattr(args, "run_name", None) or "default", values=overlays)
    target = get_target(target_name, options)
    endpoints = target.status()
    if not endpoint:
        # No external MaaS: the stack's own gateway plays it.
        endpoint = endpoints.gateway_url
        api_key = api_key or (endpoints.keys.get("enterprise") or [""])[-1]
    if getattr(args, "discover", False):
        try:
            ids += discover_models(endpoint, api_key)
        except LookupError as error:
            print(f"discovery failed: {error}", file=sys.stderr)
            return 1
    if not ids:
        print("nothing to register: give --model ID or --discover", file=sys.stderr)
        return 2
    served, unserved = split_served(dict.fromkeys(ids), endpoint, api_key)
    desired = declared_specs(served, endpoint, api_token=api_key)
    keep = base_models(target_name, overlays)
    report = register(target, endpoints.llama_stack_url, desired, keep=keep)
    report.missing.update(unserved)
    print(redact(report.render(), [api_key]))
    return 0 if report.ok else 1


def split_served(ids: Iterable[str], endpoint: str, api_key: str) -> tuple[list[str], dict[str, str]]:
    """Declared ids the MaaS serves, and why the others are left out (llama-stack would list
    a declared model even when the endpoint does not serve it, so check first)."""
    try:
        offered = set(discover_models(endpoint, api_key))
    except LookupError as error:
        return [], {i: str(error) for i in ids}
    ids = list(ids)
    return [i for i in ids if i in offered], {i: f"not served by {v1_url(endpoint)}" for i in ids if i not in offered}


def add_register_parser(parser: Any) -> None:
    """Options of `python -m harness register` (the CLI adds --target/--run-name/--values)."""
    parser.add_argument("--discover", action="store_true", help="register every model the MaaS lists to the key")
    parser.add_argument(
        "--model", action="append", default=[], metavar="ID", help="a model id to register (repeatable)"
    )
    parser.add_argument(
        "--maas-endpoint",
        default=os.environ.get("MAAS_ENDPOINT", ""),
        help="MaaS base URL (env MAAS_ENDPOINT; default: the stack's gateway)",
    )
    # The MaaS API key comes from the environment only (MAAS_API_KEY): a secret on a command
    # line is visible to every user of the machine through the process list.
