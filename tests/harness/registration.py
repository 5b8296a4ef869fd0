"""Registering MaaS models in llama-stack.

llama-stack 0.7 removed `POST /v1/models`, so "register" means: compute the desired
models, merge them into what the target has applied (`Target.applied_models()`: the run's
models file locally, `helm get values` on a cluster), apply the result (config + restart
locally, helm upgrade on a cluster) and wait until `GET /v1/models` lists each as `listed_id` names it and
every API the tests use answers. Registration is additive: it changes only the entries it
was asked to add or remove, so models registered by the session, a test or a release
engineer survive each other's registrations. A server older than 0.7 still has the
register API; then we call it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Set
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from harness import maas
from harness.declared import read_values
from harness.errors import HarnessError
from harness.errors import MaasError as MaasError  # what register_maas reports
from harness.gateway_keys import SERVICE_TIER
from harness.http import PROBE_TIMEOUT_S, REQUEST_TIMEOUT_S, json_request, list_models
from harness.maas import MaasSettings
from harness.maas import v1_url as v1_url  # the URL form registration writes into global.models
from harness.paths import VALUES_DIR
from harness.waiting import Waiter, WaitPolicy

DEFAULT_PROVIDER = "vllm"
# An external MaaS: remote::openai, whose key llama-stack 0.7.3 lets a request override only
# through provider data `openai_api_key`, which the harness never forwards (its callers hold
# keys of this stack's gateway, not of the MaaS). Models behind the stack's own gateway stay
# remote::vllm, whose `vllm_api_token` carries each caller's key.
EXTERNAL_PROVIDER = "openai"
LEGACY_BELOW = (0, 7)  # servers below this version still have POST /v1/models
STALE_REASON = (
    "still listed after its provider was removed: the llama-stack chart's prune-registry init "
    "container should have removed it from the persistent registry (see its log)"
)
# GET routes that must answer 200 before a restarted llama-stack counts as ready: the APIs
# the workflows use (a listening port or /v1/health alone says nothing about the stores).
READY_ROUTES = ("/v1/models", "/v1/files?limit=1", "/v1/vector_stores?limit=1", "/v1/responses?limit=1")
POLL_S = 0.5  # between two listings while llama-stack restarts: it answers within seconds
_KEY_CHARS = re.compile(r"[^a-z0-9-]+")

Models = dict[str, dict[str, Any]]  # `global.models`: key -> entry


class AppliesModels(Protocol):
    """What registration needs of a target. `model_ca_path(path)` makes a CA bundle given as a
    path on this machine readable by llama-stack and returns the path llama-stack reads (the same
    path where llama-stack runs on this machine; a mounted ConfigMap on a cluster)."""

    def applied_models(self) -> Models: ...

    def apply_models(self, models: Models) -> None: ...

    def model_ca_path(self, path: str) -> str: ...


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
    tls_verify: bool | str = True  # False, or a CA bundle path, for a MaaS with a private CA
    upstream_model: str = ""  # the name sent to the server when it differs from `id`
    external: bool = False  # served outside the stack: its gateway neither lists nor routes it

    @property
    def llama_stack_id(self) -> str:
        return listed_id(self.key, self.to_values())

    def to_values(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"id": self.id, "url": self.url, "enabled": self.enabled, "provider": self.provider}
        if self.upstream_model:
            entry["upstreamModel"] = self.upstream_model
        if self.secret_ref:
            entry["apiTokenSecretRef"] = {"name": self.secret_ref[0], "key": self.secret_ref[1]}
        elif self.api_token:
            entry["apiToken"] = self.api_token
        if self.tls_verify is not True:
            entry["tlsVerify"] = self.tls_verify
        if self.external:
            entry["external"] = True
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


def served_name(entry: Mapping[str, Any]) -> str:
    """The model name llama-stack sends for a `global.models` entry (the chart's
    `llama-stack.servedName`): the public id for an entry behind the stack's gateway, which routes
    by it and sends `upstreamModel` on itself; `upstreamModel or id` for an external entry, which
    llama-stack calls directly."""
    if entry.get("external") is True:
        return str(entry.get("upstreamModel") or entry["id"])
    return str(entry["id"])


def listed_id(key: str, entry: Mapping[str, Any]) -> str:
    """How llama-stack 0.7.3 lists a `global.models` entry: `<key>/<served_name>` (it names a model
    after the provider's model id)."""
    return f"{key}/{served_name(entry)}"


def declared_elsewhere(declared: Models, ids: Iterable[str]) -> set[str]:
    """Of `ids`, those an enabled entry of `declared` already uses as its public id under a key
    other than the one registration gives that id (`model_key`): the chart refuses a second
    entry with the same public id."""
    wanted = set(ids)
    return {
        str(entry["id"])
        for key, entry in declared.items()
        if entry and entry.get("enabled", True) and entry.get("id") in wanted and key != model_key(str(entry["id"]))
    }


def model_key(model_id: str, prefix: str = "maas") -> str:
    """A `global.models` key (a DNS-label-like provider id) derived from a model id."""
    slug = _KEY_CHARS.sub("-", model_id.lower()).strip("-")
    return f"{prefix}-{slug}"[:50].rstrip("-")


def discover_models(endpoint: str, api_key: str, *, verify: bool | str = True) -> list[str]:
    """The models a MaaS endpoint lists to this key (429s retried); raises `MaasError`."""
    return maas.get_models(endpoint, api_key, verify=verify)


def server_version(llama_stack_url: str) -> tuple[int, ...] | None:
    """The server's version from /v1/version, or None when it does not say."""
    try:
        status, payload = json_request("GET", llama_stack_url.rstrip("/") + "/v1/version", timeout=PROBE_TIMEOUT_S)
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
    status, _ = json_request("POST", llama_stack_url.rstrip("/") + "/v1/models", body={}, timeout=PROBE_TIMEOUT_S)
    return status not in (404, 405, 501)


def register_via_api(llama_stack_url: str, spec: ModelSpec) -> None:
    """The pre-0.7 register call; the provider `spec.key` must exist in the run config."""
    body = {
        "model_id": spec.llama_stack_id,
        "provider_id": spec.key,
        "provider_model_id": spec.id,
        "model_type": "llm",
    }
    status, payload = json_request("POST", llama_stack_url.rstrip("/") + "/v1/models", body=body)
    if status >= 300:
        raise HarnessError(
            f"POST /v1/models for {spec.llama_stack_id} answered {status}: {str(payload)[:300]}; "
            "check the llama-stack log"
        )


# --- planning and applying ------------------------------------------------------------


def declared_specs(
    model_ids_: Iterable[str],
    endpoint: str,
    *,
    api_token: str = "",
    secret_ref: tuple[str, str] | None = None,
    provider: str = DEFAULT_PROVIDER,
    tls_verify: bool | str = True,
    taken: Set[str] = frozenset(),
) -> dict[str, ModelSpec]:
    """Desired models, keyed like `global.models`, for ids served at one endpoint.

    An id in `taken` (another entry's public id) gets the entry's key as its public id and keeps
    the served id as `upstreamModel`: llama-stack lists it under the same name either way. With
    the external provider (a MaaS outside the stack, called by llama-stack with its own key) the
    entries are `external`: the stack's gateway neither lists nor routes them."""
    url = v1_url(endpoint)
    specs = [
        ModelSpec(
            model_key(m),
            model_key(m) if m in taken else m,
            url,
            api_token,
            secret_ref,
            provider,
            tls_verify=tls_verify,
            upstream_model=m if m in taken else "",
            external=provider != DEFAULT_PROVIDER,
        )
        for m in model_ids_
    ]
    return {s.key: s for s in specs}


def merge_models(
    applied: Mapping[str, Mapping[str, Any]], desired: Mapping[str, ModelSpec], remove: Iterable[str] = ()
) -> Models:
    """The `global.models` to apply: `applied` with only the requested entries changed.

    `applied` is what the target has applied so far (every earlier registration's entries);
    each desired key is set to its spec, each removed key (not also desired) becomes
    `{"enabled": false}`, which disables it whether it came from a registration or from a
    values file (Helm merges maps). Every other entry is kept as it is.
    """
    models: Models = {key: dict(entry or {}) for key, entry in applied.items()}
    models.update({key: spec.to_values() for key, spec in desired.items()})
    for key in remove:
        if key not in desired:
            models[key] = {"enabled": False}
    return models


def changed_keys(applied: Mapping[str, Mapping[str, Any]], desired: Mapping[str, ModelSpec]) -> list[str]:
    """Desired keys whose applied entry differs (another URL, id, token or TLS setting)."""
    return sorted(key for key, spec in desired.items() if key in applied and dict(applied[key]) != spec.to_values())


# Targets that install another target's overlay (the kube lane installs exactly what Kind gets).
TARGET_OVERLAY = {"kube": "kind"}


def base_models(target_name: str, overlays: Iterable[Path] = ()) -> Models:
    """Enabled `global.models` entries of the target's values overlay plus extra overlays, merged."""
    own = TARGET_OVERLAY.get(target_name, target_name)
    values = read_values([VALUES_DIR / f"{own}.yaml", *overlays])
    merged: Models = (values.get("global") or {}).get("models") or {}
    return {key: entry for key, entry in merged.items() if entry and entry.get("enabled", True) and entry.get("id")}


def routing_upstreams(target_name: str, overlays: Iterable[Path] = ()) -> dict[str, dict[str, Any]]:
    """`maas-gateway.routing.upstreams` of the target's values overlay plus extra overlays, merged
    (entries set to null by a later file are dropped, as Helm drops them)."""
    own = TARGET_OVERLAY.get(target_name, target_name)
    values = read_values([VALUES_DIR / f"{own}.yaml", *overlays])
    upstreams = ((values.get("maas-gateway") or {}).get("routing") or {}).get("upstreams") or {}
    return {key: entry for key, entry in upstreams.items() if entry}


def as_llama_stack_sees_it(target: AppliesModels, desired: Mapping[str, ModelSpec]) -> dict[str, ModelSpec]:
    """`desired` with each CA bundle path (tlsVerify) replaced by the path llama-stack reads it at:
    the same path on the local target; on a cluster, the bundle mounted from a ConfigMap."""
    place = target.model_ca_path
    return {
        key: replace(spec, tls_verify=place(spec.tls_verify)) if isinstance(spec.tls_verify, str) else spec
        for key, spec in desired.items()
    }


def register(
    target: AppliesModels,
    llama_stack_url: str,
    desired: Mapping[str, ModelSpec],
    *,
    remove: Iterable[str] = (),
    timeout: float = 120,
) -> Report:
    """Make llama-stack list `desired` and not the `remove` keys, keeping every other model.

    Idempotent: when every desired model is listed with the applied settings and nothing is
    to be removed, nothing is applied (no restart, no upgrade). A spec's tlsVerify CA bundle is
    a path on this machine; the target makes it readable by llama-stack (`as_llama_stack_sees_it`).
    """
    desired = as_llama_stack_sees_it(target, desired)
    listed = set(list_models(llama_stack_url, timeout=REQUEST_TIMEOUT_S))
    applied = target.applied_models()
    wanted = {spec.llama_stack_id for spec in desired.values()}
    remove_keys = [key for key in remove if key not in desired]
    removing = {m for m in listed if m.split("/", 1)[0] in remove_keys}
    changed = changed_keys(applied, desired)
    report = Report(already=sorted(wanted & listed))
    if wanted <= listed and not removing and not changed:
        report.method = "none"
        return report
    if has_register_api(llama_stack_url) and not removing and not changed:
        report.method = "register-api"
        for spec in desired.values():
            if spec.llama_stack_id not in listed:
                register_via_api(llama_stack_url, spec)
    else:
        report.method = "config"
        target.apply_models(merge_models(applied, desired, remove_keys))
        report.applied = True
        report.already = sorted(set(report.already) - {desired[k].llama_stack_id for k in changed})
    now = wait_until_listed(llama_stack_url, wanted, gone=removing, timeout=timeout)
    report.registered = sorted((wanted & now) - set(report.already))
    report.removed = sorted(removing - now)
    report.missing = explain_missing(wanted - now, desired, now)
    report.missing.update({m: STALE_REASON for m in removing & now})
    if report.applied and not report.missing and (down := unready_routes(llama_stack_url)):
        report.missing["llama-stack"] = f"restarted, but these routes do not answer 200: {down}"
    return report


def unready_routes(llama_stack_url: str) -> dict[str, str]:
    """READY_ROUTES that do not answer 200, with what they answered (empty: ready)."""
    down: dict[str, str] = {}
    for route in READY_ROUTES:
        try:
            status, payload = json_request("GET", llama_stack_url.rstrip("/") + route, timeout=PROBE_TIMEOUT_S)
        except OSError as error:
            down[route] = str(error)
            continue
        if status != 200:
            down[route] = f"HTTP {status}: {str(payload)[:200]}"
    return down


def wait_until_listed(
    llama_stack_url: str, wanted: Set[str], *, gone: Set[str] = frozenset(), timeout: float = 120
) -> set[str]:
    """Poll until `wanted` are listed, `gone` are not, and every READY_ROUTES answers; return the last listing."""

    def fetch() -> set[str]:
        try:
            return set(list_models(llama_stack_url, timeout=PROBE_TIMEOUT_S))
        except (OSError, LookupError):
            return set()  # restarting: not listening yet

    def not_done(now: set[str]) -> bool:
        return not (wanted <= now and not (gone & now)) or bool(unready_routes(llama_stack_url))

    # After `timeout`, the last listing: the caller reports what is still missing.
    retrying = Waiter().retrying(WaitPolicy(timeout, initial=POLL_S, cap=POLL_S), on_result=not_done)
    listed: set[str] = retrying(fetch)
    return listed


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


def register_maas(
    target: AppliesModels,
    llama_stack_url: str,
    settings: MaasSettings,
    *,
    discover_all: bool = False,
    ids: Iterable[str] = (),
    timeout: float = 120,
    provider: str = EXTERNAL_PROVIDER,
    declared: Models | None = None,
) -> Report:
    """Register MaaS models: `ids`, or what the MaaS lists (every one with `discover_all`,
    else MAAS_MODEL or every one). Discovery errors become `missing` entries, key redacted.

    `provider`: `openai` (default) for an external MaaS, whose keys callers do not hold:
    llama-stack calls it with `settings.api_key`. `vllm` for the stack's own gateway: callers'
    calls then carry their own key (see harness.llama_stack_auth).

    `declared`: the `global.models` the target's values files declare (`base_models`), when
    `target.applied_models()` does not include them (the local target's holds only what
    registrations applied)."""
    declared = declared or {}
    try:
        listed = discover_models(settings.endpoint, settings.api_key, verify=settings.tls_verify)
        requested = list(dict.fromkeys(ids)) or maas.select_models(listed, "" if discover_all else settings.model)
    except MaasError as error:
        return Report(method="none", missing={v1_url(settings.endpoint): str(error)})
    served = [i for i in requested if i in listed]
    # The stack's own gateway: llama-stack holds no key of it (each call carries its caller's);
    # the key above only listed the models.
    token = "" if provider == DEFAULT_PROVIDER else settings.api_key
    # A public id names one catalog entry (the chart refuses two): a served id that the values
    # already declare under another key is registered under a public id of its own, calling the
    # MaaS's model by its served name. The declared entry may be another server's model.
    applied = target.applied_models()
    merged = {key: {**(declared.get(key) or {}), **(applied.get(key) or {})} for key in {*declared, *applied}}
    taken = declared_elsewhere(merged, served)
    desired = declared_specs(
        served, settings.endpoint, api_token=token, tls_verify=settings.tls_verify, provider=provider, taken=taken
    )
    report = register(target, llama_stack_url, desired, timeout=timeout)
    report.missing.update({i: f"not served by {v1_url(settings.endpoint)}" for i in requested if i not in listed})
    return report


def harness_key(keys: Mapping[str, list[str]]) -> str:
    """The harness's own key, for listing the gateway's models: the first key of the `internal` tier."""
    found = keys.get(SERVICE_TIER) or []
    if not found:
        raise HarnessError(
            f"the stack's gateway has no {SERVICE_TIER!r} tier key to list its models with: "
            "add one to maas-gateway.apiKeys, or export MAAS_API_KEY"
        )
    return found[0]
