"""The endpoints a deployed stack exposes: the one object every target gives the tests."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

from harness import llama_stack_auth

# Whose key the harness calls llama-stack with when a test does not pick one: the roomiest tier
# first ("internal" is the dev overlays' large tier for the harness), so light tests never
# touch a user tier's budget.
CALLER_TIERS = ("internal", "enterprise", "premium", "free")


@dataclass
class Endpoints:
    gateway_url: str
    llama_stack_url: str
    keys: dict[str, list[str]] = field(default_factory=dict)  # tier -> API keys
    gateway_models: list[str] = field(default_factory=list)
    llama_stack_models: list[str] = field(default_factory=list)
    run_dir: str = ""
    # The extra values overlays the stack was started with, as "path sha256:<12 hex>";
    # None when the target does not record them (then reuse cannot be checked).
    values: list[str] | None = None
    # The gateway as llama-stack reaches it from inside the cluster (cluster targets:
    # http://<gateway Service>:<port>); "" where llama-stack reaches gateway_url itself (local).
    in_cluster_gateway_url: str = ""
    # The Prometheus that scrapes the gateway's usage metrics (the rag chart's `prometheus`);
    # "" when the stack runs none.
    prometheus_url: str = ""

    def __post_init__(self) -> None:
        llama_stack_auth.remember(self.llama_stack_url, self.llama_stack_key())

    def llama_stack_key(self) -> str:
        """The gateway key the harness authenticates to llama-stack with ("" when there is none)."""
        for tier in (*CALLER_TIERS, *sorted(self.keys)):
            if self.keys.get(tier):
                return self.keys[tier][0]
        return ""

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_json(cls, text: str) -> Endpoints:
        return cls(**json.loads(text))

    def key(self, tier: str, index: int = 0) -> str:
        """The index-th key of a tier, with a clear error when the target has too few."""
        keys = self.keys.get(tier, [])
        if index >= len(keys):
            raise LookupError(f"target has {len(keys)} key(s) for tier {tier!r}; need index {index}")
        return keys[index]
