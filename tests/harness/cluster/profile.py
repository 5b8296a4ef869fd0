"""Install choices (the install.sh flags) turned into values overlays for the rag chart.

Value paths follow the charts: `vllm-gpu.mode`, `maas-gateway.tiers.<tier>.tokens.limit`,
and the overlays in values/ (gpu-<preset>, openshift, kind, kind-maas).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import HarnessError
from harness.maas import MaasSettings  # noqa: F401 (re-exported: one definition, in harness.maas)
from harness.paths import values_file
from harness.waiting import ROLLOUT_TIMEOUT_S

GPU_PRESETS = ("t4", "a100", "h100")


class BadInstallOption(HarnessError, ValueError):
    pass


@dataclass
class InstallProfile:
    simulator: bool = False
    qwen3: bool = False
    gpu_preset: str = "t4"
    check_gpu: bool = False
    gpu_timeout: float = 600.0
    token_rate_limits: dict[str, int] = field(default_factory=dict)  # tier -> tokens per window
    openshift_routes: bool | None = None  # None: decide from the cluster (Routes API present)
    rollout_timeout: float = ROLLOUT_TIMEOUT_S

    def validate(self) -> None:
        if self.simulator and self.qwen3:
            raise BadInstallOption("--simulator and --qwen3 both choose the model server; pick one")
        if self.gpu_preset not in GPU_PRESETS:
            raise BadInstallOption(f"unknown GPU preset {self.gpu_preset!r}; choose one of {', '.join(GPU_PRESETS)}")
        for tier, limit in self.token_rate_limits.items():
            if limit < 0:
                raise BadInstallOption(f"token rate limit for {tier} must be >= 0, got {limit}")

    def overlay_files(self) -> list[Path]:
        return [values_file(f"gpu-{self.gpu_preset}")] if self.qwen3 else []

    def generated_values(self) -> dict[str, Any]:
        """Values no overlay file carries; written to a generated file after the overlays."""
        values: dict[str, Any] = {}
        if self.simulator:
            values["vllm-gpu"] = {"enabled": True, "mode": "simulator"}
        if self.token_rate_limits:
            tiers = {tier: {"tokens": {"limit": limit}} for tier, limit in self.token_rate_limits.items()}
            values["maas-gateway"] = {"tiers": tiers}
        return values


def parse_rate_limit(text: str) -> tuple[str, int]:
    """`free=300` -> ("free", 300); for argparse."""
    tier, sep, number = text.partition("=")
    if not sep or not tier or not number.isdigit():
        raise ValueError(f"expected TIER=TOKENS (e.g. free=300), got {text!r}")
    return tier, int(number)
