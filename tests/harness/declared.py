"""What a stack's values declare, read the way Helm reads them: the rag chart's defaults (each
subchart's own defaults under its name), then the values files in order, later ones winning.

Tests compare what a deployed stack does with this, never with the stack itself: a model the
values declare must be served, an embedding model the values enable must be registered, a
tier whose keys the values list must have keys. A test may skip only for what is not declared.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from harness import paths

SUBCHARTS = ("llama-stack", "maas-gateway", "vllm-gpu")


def merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """Helm's values merge: maps merge key by key, anything else (lists included) is replaced."""
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _load(path: Path) -> dict[str, Any]:
    document = yaml.safe_load(path.read_text()) or {}
    if not isinstance(document, dict):
        raise ValueError(f"{path}: values must be a mapping at the top level")
    return document


def read_values(files: Iterable[Path], base: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """`base` with each values file that exists merged over it in order, by Helm's rules: the one
    reader of "what the values say" (registration's base models, `Declared`)."""
    values = dict(base or {})
    for path in files:
        if Path(path).is_file():
            values = merge(values, _load(Path(path)))
    return values


def chart_defaults() -> dict[str, Any]:
    """The rag chart's own values with each subchart's defaults under its name, as Helm combines them."""
    values = {name: _load(paths.chart(name) / "values.yaml") for name in SUBCHARTS}
    return merge(values, _load(paths.chart("rag") / "values.yaml"))


@dataclass(frozen=True)
class Declared:
    """The merged values of the rag chart for one deployment (shape: Helm's `.Values`)."""

    values: dict[str, Any]
    sources: tuple[str, ...]  # values files applied, for messages

    @classmethod
    def from_files(cls, files: Iterable[Path]) -> Declared:
        applied = [Path(p) for p in files if Path(p).is_file()]
        return cls(read_values(applied, chart_defaults()), tuple(p.name for p in applied))

    def _section(self, name: str) -> dict[str, Any]:
        section = self.values.get(name) or {}
        return section if section.get("enabled", True) else {}

    def describe(self) -> str:
        return "the rag chart's defaults + " + (", ".join(self.sources) or "no values file")

    @property
    def served_models(self) -> list[str]:
        """Model names the chart's model server answers to (vllm-gpu's `servedName` helper)."""
        vllm = self._section("vllm-gpu")
        if not vllm:
            return []
        if vllm.get("mode") == "simulator":
            name = (vllm.get("simulator") or {}).get("model")
        else:
            model = vllm.get("model") or {}
            name = model.get("servedName") or model.get("name")
        return [str(name)] if name else []

    @property
    def gateway_enabled(self) -> bool:
        return bool(self._section("maas-gateway"))

    @property
    def embedding_model(self) -> str:
        """The embedding model llama-stack registers, or "" when the values enable none."""
        embeddings = self._section("llama-stack").get("embeddings") or {}
        return str(embeddings.get("model") or "") if embeddings.get("enabled", False) else ""

    @property
    def embedding_dimension(self) -> int:
        embeddings = self._section("llama-stack").get("embeddings") or {}
        return int(embeddings.get("dimension") or 0)

    @property
    def vector_store_provider(self) -> str:
        return str((self._section("llama-stack").get("vectorStore") or {}).get("provider") or "")

    def key_counts(self) -> dict[str, int]:
        """Tier -> number of keys the values list (dev keys only; an existingSecret is opaque)."""
        counts: dict[str, int] = {}
        for entry in (self._section("maas-gateway").get("apiKeys") or {}).get("keys") or []:
            counts[str(entry.get("tier"))] = counts.get(str(entry.get("tier")), 0) + 1
        return counts

    def key_reload_seconds(self) -> int:
        """How often the gateway re-reads its key file (maas-gateway apiKeys.reloadSeconds)."""
        return int((self._section("maas-gateway").get("apiKeys") or {}).get("reloadSeconds", 0))

    def gateway_metrics(self) -> bool:
        """Whether the gateway exports its usage metrics (maas-gateway metrics.enabled)."""
        return bool((self._section("maas-gateway").get("metrics") or {}).get("enabled", False))

    def llama_stack_gateway_prefix(self) -> str:
        """The gateway path that serves llama-stack's API (maas-gateway llamaStack.pathPrefix), or ""
        when the values do not put llama-stack behind the gateway."""
        if not self._section("llama-stack"):
            return ""
        behind = self._section("maas-gateway").get("llamaStack") or {}
        return str(behind.get("pathPrefix") or "") if behind.get("enabled", False) else ""

    def tier_names(self) -> list[str]:
        return [str(name) for name in (self._section("maas-gateway").get("tiers") or {})]

    def tier_token_limits(self) -> dict[str, int]:
        """Tier -> tokens per window, as the gateway values declare them (chart defaults otherwise)."""
        tiers = self._section("maas-gateway").get("tiers") or {}
        return {str(name): int(t["tokens"]["limit"]) for name, t in tiers.items() if t and t.get("tokens")}

    def routed_models(self) -> dict[str, RoutedModel]:
        """Public id -> catalog entry, for the enabled, non-external `global.models` entries the
        gateway routes by model (`maas-gateway.routing.byModel`); empty when it does not."""
        gateway = self._section("maas-gateway")
        if not (gateway.get("routing") or {}).get("byModel"):
            return {}
        upstreams = (gateway.get("routing") or {}).get("upstreams") or {}
        out: dict[str, RoutedModel] = {}
        for key, entry in ((self.values.get("global") or {}).get("models") or {}).items():
            if not entry or entry.get("enabled") is False or entry.get("external") is True or not entry.get("id"):
                continue
            tiers = entry.get("tiers")
            limits = entry.get("limits") or {}
            cost = entry.get("tokenCost") or {}
            out[str(entry["id"])] = RoutedModel(
                served=str(entry.get("upstreamModel") or entry["id"]),
                tiers=None if tiers is None else tuple(str(t) for t in tiers),
                own_upstream=bool(upstreams.get(key)),
                tpm=int(limits["tpm"]) if "tpm" in limits else None,
                tier_tpm={str(t): int(v["tpm"]) for t, v in (limits.get("tiers") or {}).items()},
                cost_input=float(cost.get("input", 1)),
                cost_output=float(cost.get("output", 1)),
            )
        return out


@dataclass(frozen=True)
class RoutedModel:
    """A catalog entry as the model-aware gateway sees it."""

    served: str  # the name its model server answers to
    tiers: tuple[str, ...] | None  # tiers that may use it; None: every tier
    own_upstream: bool  # served by a server of its own (routing.upstreams), not the gateway's `upstream`
    tpm: int | None = None  # model tokens per minute shared by every caller (limits.tpm); None: none
    tier_tpm: dict[str, int] = field(default_factory=dict)  # limits.tiers.<tier>.tpm, per user of the tier
    cost_input: float = 1.0  # tokenCost.input
    cost_output: float = 1.0  # tokenCost.output

    def allows(self, tier: str) -> bool:
        return self.tiers is None or tier in self.tiers
