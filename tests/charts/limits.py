"""Tier limits read back from rendered gateway configs, in one shape for both backends:
{tier: {"tokens": Limit, "requests": Limit}}. Lets the tests compare standalone and kuadrant."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import yaml

from charts.manifests import Obj, config_map_files, of_kind, ref

UNIT_SECONDS = {
    "second": 1,
    "minute": 60,
    "hour": 3600,
    "day": 86400,
    "week": 604800,
    "month": 2592000,
    "year": 31536000,
}
DURATION_PART = re.compile(r"(\d+)(ms|s|m|h|d)")
DURATION_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclass(frozen=True)
class Limit:
    limit: int
    seconds: float

    def __str__(self) -> str:
        return f"{self.limit}/{self.seconds:g}s"


Tiers = dict[str, dict[str, Limit]]


def duration_seconds(text: str) -> float:
    """Kuadrant/values windows: "1m", "2m", "1h30m", "500ms"."""
    parts = DURATION_PART.findall(str(text))
    if not parts or "".join(n + u for n, u in parts) != str(text):
        raise ValueError(f"not a duration: {text!r}")
    return sum(int(n) * DURATION_SECONDS[u] for n, u in parts)


def values_tiers(tiers: dict[str, Any]) -> Tiers:
    """The limits a `tiers` values block asks for."""
    return {
        tier: {
            kind: Limit(int(spec[kind]["limit"]), duration_seconds(spec[kind]["window"]))
            for kind in ("tokens", "requests")
        }
        for tier, spec in tiers.items()
    }


def ratelimit_config(docs: list[Obj]) -> tuple[str, dict[str, Any]]:
    """The envoyproxy/ratelimit config (domain maas) from any ConfigMap: (where, parsed)."""
    for cm in of_kind(docs, "ConfigMap"):
        for key, text in config_map_files(cm).items():
            if not key.endswith((".yaml", ".yml")):
                continue
            parsed = yaml.safe_load(text)
            if isinstance(parsed, dict) and parsed.get("domain") == "maas" and "descriptors" in parsed:
                return f"{ref(cm)} {key}", parsed
    raise LookupError("no ConfigMap holds a ratelimit config with `domain: maas` and descriptors")


def _leaves(descriptors: list[Obj], chain: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Obj]]:
    for d in descriptors or []:
        here = chain + (str(d.get("key", "")), str(d.get("value", "")))
        if d.get("rate_limit"):
            yield here, d["rate_limit"]
        yield from _leaves(d.get("descriptors") or [], here)


def _kind(words: tuple[str, ...]) -> str | None:
    text = " ".join(words).lower()
    kinds = [k for k, marker in (("tokens", "token"), ("requests", "request")) if marker in text]
    return kinds[0] if len(kinds) == 1 else None


def bucket_seconds(rate: Obj) -> int:
    """How long one ratelimit counter lives: unit x unit_multiplier."""
    return UNIT_SECONDS[str(rate["unit"]).lower()] * int(rate.get("unit_multiplier", 1) or 1)


def ratelimit_leaves(config: dict[str, Any], tier_names: set[str]) -> Iterator[tuple[str, str, Obj]]:
    """(tier, kind, rate_limit) for each descriptor leaf: its tier is a descriptor value equal to a
    tier name, its kind (tokens/requests) is named by a descriptor key or value."""
    for chain, rate in _leaves(config["descriptors"]):
        tiers = [w for w in chain if w in tier_names]
        kind = _kind(chain)
        if len(tiers) == 1 and kind is not None and not rate.get("unlimited"):
            yield tiers[0], kind, rate


def standalone_tiers(config: dict[str, Any], tier_names: set[str], windows: dict[str, dict[str, float]]) -> Tiers:
    """Limits from the ratelimit config; windows from the gateway's own window table when it has one
    (the gateway sends a window-index descriptor, so the counter unit is only a lifetime), else
    from the counter unit."""
    found: Tiers = {}
    for tier, kind, rate in ratelimit_leaves(config, tier_names):
        seconds = windows.get(tier, {}).get(kind, bucket_seconds(rate))
        found.setdefault(tier, {})[kind] = Limit(int(rate["requests_per_unit"]), seconds)
    return found


LUA_TIERS = re.compile(r"TIERS\s*=\s*\{(.*?)\n\s*\}", re.S)
LUA_ENTRY = re.compile(r'\[\s*"([^"]+)"\s*\]\s*=\s*\{([^}]*)\}')
LUA_FIELD = re.compile(r"(\w+)\s*=\s*(\d+)")


def lua_windows(envoy_yaml: str) -> dict[str, dict[str, float]]:
    """{tier: {kind: seconds}} from the `TIERS = {...}` table the chart generates into its Lua."""
    block = LUA_TIERS.search(envoy_yaml)
    windows: dict[str, dict[str, float]] = {}
    for tier, body in LUA_ENTRY.findall(block.group(1) if block else ""):
        fields = dict(LUA_FIELD.findall(body))
        windows[tier] = {k: float(fields[f"{k}_window"]) for k in ("tokens", "requests") if f"{k}_window" in fields}
    return windows


def kuadrant_tiers(docs: list[Obj], tier_names: set[str]) -> Tiers:
    """RateLimitPolicy limits are request limits, TokenRateLimitPolicy limits token limits; a limit's
    tier is named in its key or its `when` predicates."""
    found: Tiers = {}
    for kind, policy_kind in (("requests", "RateLimitPolicy"), ("tokens", "TokenRateLimitPolicy")):
        for policy in of_kind(docs, policy_kind):
            spec = policy.get("spec") or {}
            nested = (spec.get("defaults") or {}).get("limits") or (spec.get("overrides") or {}).get("limits")
            limits = spec.get("limits") or nested or {}
            for name, body in limits.items():
                tier = _tier_of(name, body, tier_names)
                rates = body.get("rates") or []
                if tier is None or len(rates) != 1:
                    continue
                found.setdefault(tier, {})[kind] = Limit(int(rates[0]["limit"]), duration_seconds(rates[0]["window"]))
    return found


def _tier_of(name: str, body: Obj, tier_names: set[str]) -> str | None:
    predicates = " ".join(str(w.get("predicate", "")) for w in body.get("when") or [])
    by_predicate = [t for t in tier_names if f'"{t}"' in predicates or f"'{t}'" in predicates]
    if len(by_predicate) == 1:
        return by_predicate[0]
    by_name = [t for t in tier_names if t in name]
    return by_name[0] if len(by_name) == 1 else None
