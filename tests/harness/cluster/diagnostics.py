"""Cluster diagnostics: everything needed to understand a failed run, in one folder, secrets redacted.

Collected: pods/services overview, events, `describe` of every pod that is not ready or has
restarted, logs of every container (and of its previous instance), `helm get values --all` and
the rendered manifests (Secret data masked). Every file passes through `harness.redact.redact`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.cluster import plans
from harness.cluster.runner import CommandRunner
from harness.redact import mask_secret_manifest, redact


def needs_describe(pod: dict[str, Any]) -> bool:
    status = pod.get("status", {})
    if status.get("phase") == "Succeeded":
        return False
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions", []))
    restarted = any(cs.get("restartCount", 0) > 0 for cs in status.get("containerStatuses", []))
    return not ready or restarted


def containers(pod: dict[str, Any]) -> list[str]:
    spec = pod.get("spec", {})
    return [c["name"] for c in spec.get("initContainers", []) + spec.get("containers", [])]


@dataclass
class ClusterDiagnostics:
    runner: CommandRunner
    namespace: str
    release: str
    context: str = ""
    secrets: list[str] = field(default_factory=list)

    def collect(self, dest: Path) -> Path:
        dest.mkdir(parents=True, exist_ok=True)
        ns, ctx = self.namespace, self.context
        self._save(dest / "overview.txt", plans.kubectl_get_all(ns, ctx))
        self._save(dest / "events.txt", plans.kubectl_get_events(ns, ctx))
        self._save(dest / "helm-values.yaml", plans.helm_get_values(self.release, ns, ctx))
        manifest = self.runner.run(plans.helm_get_manifest(self.release, ns, ctx), check=False)
        self._write(dest / "manifest.yaml", mask_secret_manifest(manifest.stdout) if manifest.ok else manifest.stderr)
        pods = self.runner.run(plans.kubectl_get_pods(ns, plans.instance_selector(self.release), ctx), check=False)
        for pod in json.loads(pods.stdout or "{}").get("items", []) if pods.ok else []:
            self._pod(dest / "pods", pod)
        return dest

    def _pod(self, folder: Path, pod: dict[str, Any]) -> None:
        name = pod["metadata"]["name"]
        if needs_describe(pod):
            self._save(folder / f"{name}.describe.txt", plans.kubectl_describe_pod(name, self.namespace, self.context))
        for container in containers(pod):
            base = folder / f"{name}.{container}"
            self._save(Path(f"{base}.log"), plans.kubectl_logs(name, container, self.namespace, self.context))
            previous = self.runner.run(
                plans.kubectl_logs(name, container, self.namespace, self.context, previous=True), check=False
            )
            if previous.ok and previous.stdout:
                self._write(Path(f"{base}.previous.log"), previous.stdout)

    def _save(self, path: Path, argv: list[str]) -> None:
        result = self.runner.run(argv, check=False)
        self._write(path, result.stdout if result.ok else f"# {argv[:4]} failed: {result.stderr}")

    def _write(self, path: Path, text: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(redact(text, self.secrets))
