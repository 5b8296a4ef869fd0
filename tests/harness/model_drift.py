"""`python -m harness models check|sync`: which models each registry of a running stack knows.

The registries, and how each names a catalog entry `global.models.<key>` = {id, upstreamModel, tiers, url}:
- the values catalog: the values files' enabled entries, plus entries registrations added (a
  registration that disables a declared entry does not remove it from the catalog: the values still
  declare it, so llama-stack missing it is drift that `sync` repairs);
- the gateway, once per tier (one key of each): routing by model (`maas-gateway.routing.byModel`) it
  lists the public `id` of each entry that tier may use; otherwise it relays its model server's list,
  the served names (`upstreamModel or id`). Only entries whose URL is this stack's gateway are
  expected there; a tier an entry does not allow must not list it (absence there is not drift);
- llama-stack: `<key>/<id>` for every entry, `<key>/<upstreamModel or id>` for an external one
  (`registration.listed_id`; its LLMs; embedding models are not catalog entries);
- a MaaS (when MAAS_ENDPOINT and MAAS_API_KEY are set): the served name of each entry whose URL is
  that endpoint. A MaaS serving more than the catalog registers is not drift.

`compare` is pure: the observed listings in, one row per model out. `observe` reads the listings
through the harness's HTTP client; `sync` registers what llama-stack misses through
`harness.registration.register`, the one registration path.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from harness import http, llama_stack_auth, registration
from harness.declared import Declared
from harness.errors import StackNotReady
from harness.maas import MaasSettings, get_models, v1_url
from harness.registration import DEFAULT_PROVIDER, AppliesModels, Models, ModelSpec, Report, listed_id

LLAMA_STACK = "llama-stack"
VALUES = "values"
MAAS = "maas"
GATEWAY = "gateway"

OK = "ok"  # expected and present
MISSING = "MISSING"  # expected, absent
UNEXPECTED = "UNEXPECTED"  # present, not expected
ABSENT = "-"  # neither expected nor present
DRIFT_STATES = (MISSING, UNEXPECTED)

_URL = re.compile(r"^(?P<scheme>https?://)(?P<host>[^/:]+)(?::(?P<port>\d+))?(?P<path>/.*)?$")
LOOPBACK = ("127.0.0.1", "localhost")


class RegistryUnreachable(StackNotReady):
    """A registry (gateway, llama-stack) gave no model list: the message names it and what to do."""


def gateway_column(tier: str) -> str:
    return f"{GATEWAY}[{tier}]"


@dataclass(frozen=True)
class CatalogEntry:
    """One enabled `global.models` entry, with the names each registry knows it by."""

    key: str
    public_id: str
    served: str  # upstreamModel or id: what the model server (or MaaS) answers to
    tiers: tuple[str, ...] | None  # None: every tier
    url: str
    via_gateway: bool  # llama-stack reaches it through this stack's gateway
    values: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def llama_stack_id(self) -> str:
        return listed_id(self.key, {"id": self.public_id, **self.values})

    def allows(self, tier: str) -> bool:
        return self.tiers is None or tier in self.tiers


@dataclass(frozen=True)
class Observed:
    """What each registry listed. `gateway`: tier -> ids; `maas`: None when no MaaS is configured."""

    gateway: dict[str, list[str]]
    llama_stack: list[str]
    maas: list[str] | None = None


@dataclass
class Row:
    model: str  # the public id, or the id a registry listed that matches no catalog entry
    key: str  # the catalog key ("" for an id no entry explains)
    cells: dict[str, str]  # column -> state
    expected_as: dict[str, str] = field(default_factory=dict)  # column -> the id that registry should list

    def drift(self) -> list[tuple[str, str]]:
        return [(column, state) for column, state in self.cells.items() if state in DRIFT_STATES]


@dataclass
class CheckReport:
    columns: list[str]
    rows: list[Row]
    sources: dict[str, str]  # column group -> where its data came from

    @property
    def ok(self) -> bool:
        return not any(row.drift() for row in self.rows)

    def drift_lines(self) -> list[str]:
        lines = []
        for row in self.rows:
            for column, state in row.drift():
                registry = column.split("[", 1)[0]
                if state == MISSING:
                    what = f"missing from {column} (expected as {row.expected_as.get(column, row.model)!r})"
                else:
                    what = f"listed by {column} but not expected there"
                lines.append(f"DRIFT {row.model}: {what} [{registry}]")
        return lines

    def render_table(self) -> str:
        header = ["MODEL", *self.columns]
        body = [[row.model, *(row.cells.get(c, ABSENT) for c in self.columns)] for row in self.rows]
        widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]
        lines = ["  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
                 for line in [header, *body]]  # fmt: skip
        lines.append("")
        lines += [f"{name}: {source}" for name, source in self.sources.items()]
        lines.append("")
        lines += self.drift_lines() or ["no drift: every registry lists what the catalog says"]
        return "\n".join(lines)

    def render_json(self) -> str:
        return json.dumps(
            {
                "ok": self.ok,
                "columns": self.columns,
                "sources": self.sources,
                "rows": [{"model": r.model, "key": r.key, "cells": r.cells} for r in self.rows],
                "drift": self.drift_lines(),
            },
            indent=2,
        )


# --- the catalog ---------------------------------------------------------------------------


def _enabled(entry: Mapping[str, Any] | None) -> bool:
    return entry is not None and entry.get("enabled", True) is not False and bool(entry.get("id"))


def catalog_models(declared: Models, applied: Models) -> Models:
    """The catalog: the values files' enabled entries, with what registrations applied over them.

    An applied entry that is enabled replaces or adds; one that disables (`register --remove`)
    leaves the declared entry in the catalog: the values still declare it."""
    merged: Models = {key: dict(entry) for key, entry in declared.items() if _enabled(entry)}
    for key, entry in applied.items():
        if _enabled(entry):
            merged[key] = {**merged.get(key, {}), **entry}
    return merged


def names_gateway(url: str, gateway_urls: Iterable[str], gateway_port: int) -> bool:
    """Whether a model URL is this stack's gateway: one of its URLs, its Service
    (`<release>-maas-gateway`, templated or spelt out), or loopback on the chart's gateway port."""
    base = url.strip().rstrip("/").removesuffix("/v1")
    if base in {u.rstrip("/") for u in gateway_urls if u}:
        return True
    match = _URL.match(url.strip())
    if match is None:
        return False
    host = match["host"]
    if host.endswith("-maas-gateway"):  # `{{ .Release.Name }}-maas-gateway` or the release spelt out
        return True
    return host in LOOPBACK and match["port"] is not None and int(match["port"]) == gateway_port


def catalog_entries(models: Models, *, gateway_urls: Iterable[str], gateway_port: int) -> list[CatalogEntry]:
    urls = list(gateway_urls)
    entries = []
    for key, entry in sorted(models.items()):
        tiers = entry.get("tiers")
        url = str(entry.get("url") or "")
        entries.append(
            CatalogEntry(
                key=key,
                public_id=str(entry["id"]),
                served=str(entry.get("upstreamModel") or entry["id"]),
                tiers=None if tiers is None else tuple(str(t) for t in tiers),
                url=url,
                via_gateway=names_gateway(url, urls, gateway_port),
                values=entry,
            )
        )
    return entries


# --- the comparison ------------------------------------------------------------------------


def _state(expected: bool, present: bool) -> str:
    return {(True, True): OK, (True, False): MISSING, (False, True): UNEXPECTED}.get((expected, present), ABSENT)


def compare(
    entries: list[CatalogEntry],
    observed: Observed,
    *,
    by_model: bool,
    served_by_default: Iterable[str] = (),
    maas_url: str = "",
) -> tuple[list[str], list[Row]]:
    """Columns and one row per model: each catalog entry, then each listed id no entry explains.

    `by_model`: the gateway answers /v1/models from the catalog (public ids, per tier); else it
    relays its default model server's list, whose names `served_by_default` (the values' model
    server) are expected too. `maas_url`: the configured MaaS (its entries are those with that URL)."""
    tiers = sorted(observed.gateway)
    columns = [VALUES, *(gateway_column(t) for t in tiers), LLAMA_STACK]
    if observed.maas is not None:
        columns.append(MAAS)
    rows: list[Row] = []
    explained: dict[str, set[str]] = {c: set() for c in columns}

    maas_base = v1_url(maas_url) if maas_url else ""
    for entry in entries:
        row = Row(entry.public_id, entry.key, {VALUES: OK})
        for tier in tiers:
            column = gateway_column(tier)
            name = entry.public_id if by_model else entry.served
            present = name in observed.gateway[tier]
            row.expected_as[column] = name
            if by_model:
                # The gateway lists its catalog: this entry's public id, to the tiers it allows.
                row.cells[column] = _state(entry.via_gateway and entry.allows(tier), present)
                explained[column].update([name] if present else [])
            elif entry.via_gateway:
                # Relayed from the model server, which must serve what llama-stack calls through it.
                row.cells[column] = _state(True, present)
                explained[column].update([name] if present else [])
            else:
                row.cells[column] = ABSENT  # not this gateway's model; a name it lists anyway is judged below
        row.cells[LLAMA_STACK] = _state(True, entry.llama_stack_id in observed.llama_stack)
        row.expected_as[LLAMA_STACK] = entry.llama_stack_id
        explained[LLAMA_STACK].add(entry.llama_stack_id)
        if observed.maas is not None:
            on_maas = bool(maas_base) and entry.url.strip().rstrip("/") == maas_base
            row.cells[MAAS] = _state(on_maas, on_maas and entry.served in observed.maas) if on_maas else ABSENT
            row.expected_as[MAAS] = entry.served
        rows.append(row)

    # Listed ids that no catalog entry explains. A gateway that relays its model server's list
    # lists the server's own names (the values' vllm-gpu served name) to every tier: expected.
    # Anything else is drift in the registry that lists it.
    default_names = set() if by_model else set(served_by_default)
    extra: dict[str, Row] = {}

    def extra_row(name: str) -> Row:
        return extra.setdefault(name, Row(name, "", {VALUES: ABSENT}))

    for tier in tiers:
        column = gateway_column(tier)
        for name in observed.gateway[tier]:
            if name not in explained[column] and name not in default_names:
                extra_row(name).cells[column] = UNEXPECTED
        for name in default_names - explained[column]:
            row = extra_row(name)
            row.cells[column] = _state(True, name in observed.gateway[tier])
            row.expected_as[column] = name
    for name in observed.llama_stack:
        if name not in explained[LLAMA_STACK]:
            extra_row(name).cells[LLAMA_STACK] = UNEXPECTED
    for row in extra.values():
        for column in columns:
            row.cells.setdefault(column, ABSENT)
    rows += [extra[name] for name in sorted(extra)]
    return columns, rows


# --- reading the registries ----------------------------------------------------------------


def _is_llm(item: Mapping[str, Any]) -> bool:
    kind = item.get("model_type") or (item.get("custom_metadata") or {}).get("model_type") or "llm"
    return kind == "llm"


def _listing(name: str, url: str, *, key: str = "", headers: dict[str, str] | None = None) -> list[dict[str, Any]]:
    try:
        response = http.request("GET", url, key=key, headers=headers)
    except http.TransportError as error:
        raise RegistryUnreachable(
            f"{name} unreachable ({error.reason}); is the stack running? `python -m harness status` shows "
            "its endpoints (choose the stack with --target)"
        ) from None
    if response.status != 200:
        raise RegistryUnreachable(
            f"{name} did not list models: GET {url} answered HTTP {response.status} {response.body[:200]}; "
            "check that component's log (`python -m harness diagnose`)"
        )
    try:
        payload = response.json()
    except ValueError:
        raise RegistryUnreachable(f"{name} did not list models: GET {url} answered 200 without JSON") from None
    items = payload.get("data", []) if isinstance(payload, dict) else payload if isinstance(payload, list) else []
    return [item for item in items if isinstance(item, dict)]


def tier_keys(keys: Mapping[str, list[str]]) -> dict[str, str]:
    """One key per tier the stack reported keys for: the tier's last, the one the test suite is least
    likely to use (listing costs no budget, but a revoked or rotated first key would say nothing)."""
    return {tier: found[-1] for tier, found in sorted(keys.items()) if found}


def observe(
    gateway_url: str, llama_stack_url: str, keys: Mapping[str, str], maas: MaasSettings | None = None
) -> Observed:
    """Each registry's listing; raises `RegistryUnreachable` (or `MaasError`) naming the one that failed."""
    gateway: dict[str, list[str]] = {}
    for tier, key in keys.items():
        url = f"{gateway_url.rstrip('/')}/v1/models"
        items = _listing(f"the gateway ({tier} key)", url, key=key)
        gateway[tier] = [str(item.get("id")) for item in items]
    stack_url = f"{llama_stack_url.rstrip('/')}/v1/models"
    headers = llama_stack_auth.headers_for(llama_stack_url)
    items = _listing("llama-stack", stack_url, headers=headers)
    listed = [str(item.get("id") or item.get("identifier")) for item in items if _is_llm(item)]
    discovered = None
    if maas is not None and maas.configured and not maas.is_standin:
        discovered = get_models(maas.endpoint, maas.api_key, verify=maas.tls_verify)
    return Observed(gateway, listed, discovered)


@dataclass(frozen=True)
class Stack:
    """A running stack as the check sees it; the CLI builds it from a target."""

    gateway_url: str
    llama_stack_url: str
    keys: dict[str, list[str]]
    declared: Declared  # the values files the install declares
    applied: Models  # `Target.applied_models()`
    in_cluster_gateway_url: str = ""
    maas: MaasSettings | None = None

    @property
    def by_model(self) -> bool:
        gateway = self.declared.values.get("maas-gateway") or {}
        return bool((gateway.get("routing") or {}).get("byModel"))

    @property
    def gateway_port(self) -> int:
        gateway = self.declared.values.get("maas-gateway") or {}
        return int((gateway.get("envoy") or {}).get("port") or 8080)

    def entries(self) -> list[CatalogEntry]:
        declared = (self.declared.values.get("global") or {}).get("models") or {}
        urls = [self.gateway_url, self.in_cluster_gateway_url]
        return catalog_entries(
            catalog_models(declared, self.applied), gateway_urls=urls, gateway_port=self.gateway_port
        )


def check(stack: Stack) -> CheckReport:
    keys = tier_keys(stack.keys)
    if not keys:
        raise RegistryUnreachable("the stack reported no gateway API keys: the gateway's listing needs one per tier")
    maas = stack.maas if stack.maas is not None and stack.maas.configured and not stack.maas.is_standin else None
    observed = observe(stack.gateway_url, stack.llama_stack_url, keys, maas)
    served = stack.declared.served_models if stack.declared.gateway_enabled else []
    columns, rows = compare(
        stack.entries(),
        observed,
        by_model=stack.by_model,
        served_by_default=served,
        maas_url=maas.endpoint if maas else "",
    )
    gateway_how = (
        "answers from the catalog (routing.byModel): public ids per tier"
        if stack.by_model
        else "relays its model server's list: served names"
    )
    sources = {
        VALUES: f"{stack.declared.describe()}, plus the models registrations applied",
        GATEWAY: f"GET {stack.gateway_url}/v1/models with one key of each tier ({', '.join(keys)}); {gateway_how}",
        LLAMA_STACK: f"GET {stack.llama_stack_url}/v1/models (LLMs, as <key>/<id>; external: <key>/<upstreamModel>)",
        MAAS: f"GET {v1_url(maas.endpoint)}/models with MAAS_API_KEY"
        if maas
        else "not configured (set MAAS_ENDPOINT and MAAS_API_KEY to compare a MaaS's discovery endpoint)",
    }
    return CheckReport(columns, rows, sources)


# --- sync ----------------------------------------------------------------------------------


def spec_for(entry: CatalogEntry, llama_stack_gateway_url: str) -> ModelSpec:
    """The registration spec of a catalog entry. A loopback URL of the gateway (the values'
    placeholder, which the local target moves to its port) becomes the gateway URL llama-stack uses."""
    values = entry.values
    url = entry.url
    match = _URL.match(url.strip())
    if entry.via_gateway and match is not None and match["host"] in LOOPBACK and llama_stack_gateway_url:
        url = v1_url(llama_stack_gateway_url)
    ref = values.get("apiTokenSecretRef") or {}
    tls = values.get("tlsVerify", True)
    return ModelSpec(
        key=entry.key,
        id=entry.public_id,
        url=url,
        api_token=str(values.get("apiToken") or ""),
        secret_ref=(str(ref["name"]), str(ref["key"])) if ref else None,
        provider=str(values.get("provider") or DEFAULT_PROVIDER),
        tls_verify=tls if isinstance(tls, bool | str) else True,
        upstream_model=str(values.get("upstreamModel") or ""),
        external=values.get("external") is True,
    )


def missing_in_llama_stack(report: CheckReport, entries: list[CatalogEntry]) -> list[CatalogEntry]:
    missing = {row.key for row in report.rows if row.key and row.cells.get(LLAMA_STACK) == MISSING}
    return [entry for entry in entries if entry.key in missing]


def sync(
    target: AppliesModels, stack: Stack, report: CheckReport, *, dry_run: bool = False
) -> tuple[list[str], Report | None]:
    """Register in llama-stack the catalog entries it does not list (never removes anything).
    Returns the llama-stack ids it meant to register and registration's report (None: dry run or nothing)."""
    todo = missing_in_llama_stack(report, stack.entries())
    names = [entry.llama_stack_id for entry in todo]
    if dry_run or not todo:
        return names, None
    gateway = stack.in_cluster_gateway_url or stack.gateway_url
    desired = {entry.key: spec_for(entry, gateway) for entry in todo}
    return names, registration.register(target, stack.llama_stack_url, desired)
