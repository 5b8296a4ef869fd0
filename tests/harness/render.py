"""`helm template` a chart and index the rendered objects."""

from __future__ import annotations

import base64
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from harness.chart_archives import refuse_stale_archives
from harness.errors import HarnessError
from harness.redact import mask_secret_object
from harness.tools import require


class RenderError(HarnessError):
    pass


def helm_template(
    chart: Path,
    release: str,
    values_files: Sequence[Path] = (),
    namespace: str = "default",
    helm: str = "helm",
) -> list[dict[str, Any]]:
    """Render a chart; values files are applied in order (later ones win). Refuses (StaleArchives)
    when `helm dependency build` output would shadow the chart's linked subcharts."""
    refuse_stale_archives(chart)
    argv = [str(require(helm)), "template", release, str(chart), "--namespace", namespace]
    for path in values_files:
        argv += ["--values", str(path)]
    result = subprocess.run(argv, capture_output=True, text=True)
    if result.returncode != 0:
        raise RenderError(
            f"helm template {chart.name} rejected the values: fix the value named above "
            f"(values files: {', '.join(p.name for p in values_files) or 'none'})",
            detail=_without_info(result.stderr),
        )
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def _without_info(stderr: str) -> str:
    # Helm logs a line per symlinked subchart (4: level=INFO, 3: walk.go); keep only what explains the failure.
    noise = ("level=INFO", "walk.go:", "Use --debug flag")
    return "\n".join(line for line in stderr.splitlines() if line.strip() and not line.startswith(noise))


@dataclass
class Rendered:
    """The objects of one render, looked up by kind and name."""

    objects: list[dict[str, Any]]

    def of_kind(self, *kinds: str) -> list[dict[str, Any]]:
        return [o for o in self.objects if o.get("kind") in kinds]

    def get(self, kind: str, name: str) -> dict[str, Any]:
        for obj in self.of_kind(kind):
            if obj["metadata"]["name"] == name:
                return obj
        raise KeyError(f"rendered chart has no {kind} {name!r}")

    def config_map_data(self, name: str) -> dict[str, str]:
        return dict(self.get("ConfigMap", name).get("data") or {})

    def secret_data(self, name: str) -> dict[str, str]:
        """Decoded Secret data (data is base64, stringData plain)."""
        secret = self.get("Secret", name)
        decoded = {k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()}
        return decoded | dict(secret.get("stringData") or {})

    def secret_values(self) -> set[str]:
        """Every value of every rendered Secret: what must never be printed."""
        values: set[str] = set()
        for secret in self.of_kind("Secret"):
            values.update(self.secret_data(secret["metadata"]["name"]).values())
        return {v for v in values if v}

    def masked_secrets(self) -> Rendered:
        """A copy whose Secrets keep their keys but not their values (for files people read)."""
        return Rendered([mask_secret_object(obj) for obj in self.objects])

    def workloads(self) -> Iterable[dict[str, Any]]:
        return self.of_kind("Deployment", "StatefulSet")
