"""Helm binaries (v4 and v3) and a session-wide cache of their renders.

Charts are rendered from a snapshot of `charts/` copied per Helm binary, so the repository is
never mutated (dependency builds land in the snapshot) and both binaries see the same inputs.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from harness import tools
from harness.paths import CHARTS_DIR

from charts import requirements

RELEASE = "ci"
# Render for the Kubernetes version the objects are validated against. A `go install`ed helm 3
# lacks the release build's ldflags and would otherwise assume Kubernetes v1.20.
KUBE_VERSION = "1.34.0"
NAMESPACE = "rag-test"
HELM_TIMEOUT_S = 120


@dataclass(frozen=True)
class HelmSpec:
    label: str  # test id: helm4 / helm3
    major: int
    tool_name: str  # name under .cache/bin
    env_var: str  # override for local runs before bootstrap


HELM_SPECS = (
    HelmSpec("helm4", 4, "helm", "HELM4_BIN"),
    HelmSpec("helm3", 3, "helm3", "HELM3_BIN"),
)


@dataclass(frozen=True)
class HelmBinary:
    label: str
    major: int
    path: Path


@dataclass(frozen=True)
class Result:
    """One helm invocation: exit code and both streams."""

    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def docs(self) -> list[dict[str, Any]]:
        """The rendered objects (empty documents dropped)."""
        return [d for d in yaml.safe_load_all(self.stdout) if d]

    def describe(self) -> str:
        return f"$ {' '.join(self.args)}\n(exit {self.returncode})\n--- stderr ---\n{self.stderr.strip()}"


def _major_version(path: Path) -> int | None:
    """`helm version --short` prints e.g. v4.1.4+g05fa379 or v3.19."""
    proc = subprocess.run([str(path), "version", "--short"], capture_output=True, text=True, timeout=30)
    text = proc.stdout.strip().lstrip("v")
    return int(text.split(".")[0]) if proc.returncode == 0 and text[:1].isdigit() else None


def locate(spec: HelmSpec) -> tuple[HelmBinary | None, str]:
    """Find a helm of the wanted major version; returns (binary, why-missing)."""
    candidates: list[Path] = []
    if env := os.environ.get(spec.env_var):
        candidates.append(Path(env))
    if found := tools.find(spec.tool_name):
        candidates.append(found)
    seen: list[str] = []
    for path in candidates:
        if not path.is_file():
            seen.append(f"{path} (missing)")
            continue
        major = _major_version(path)
        if major == spec.major:
            return HelmBinary(spec.label, spec.major, path), ""
        seen.append(f"{path} (major version {major})")
    where = ", ".join(seen) or "nowhere"
    return None, (
        f"helm {spec.major} (`{spec.tool_name}` in .cache/bin or ${spec.env_var}) not found; "
        f"looked at: {where}; run `make bootstrap`"
    )


def isolated_env(home: Path) -> dict[str, str]:
    """Helm with private config/cache dirs and no cluster: renders must never touch one."""
    env = dict(os.environ)
    for name in ("HELM_CACHE_HOME", "HELM_CONFIG_HOME", "HELM_DATA_HOME"):
        env[name] = str(home / name.lower())
    env["KUBECONFIG"] = str(home / "no-kubeconfig")
    return env


@dataclass
class Workspace:
    """A private copy of charts/ for one helm binary, dependencies resolved."""

    helm: HelmBinary
    root: Path
    env: dict[str, str]
    prepared: dict[str, Result] = field(default_factory=dict)

    def chart(self, name: str) -> Path:
        return self.root / "charts" / name

    def run(self, *args: str) -> Result:
        cmd = (str(self.helm.path), *args)
        proc = subprocess.run(cmd, capture_output=True, text=True, env=self.env, cwd=self.root, timeout=HELM_TIMEOUT_S)
        return Result(cmd, proc.returncode, proc.stdout, proc.stderr)

    def ensure_dependencies(self, name: str) -> Result | None:
        """Build file:// dependencies once unless charts/<dep> already exists (the lead symlinks them).

        Returns the failed build result, or None when the chart is ready.
        """
        if name not in self.prepared:
            self.prepared[name] = self._build_dependencies(name)
        result = self.prepared[name]
        return None if result.ok else result

    def _build_dependencies(self, name: str) -> Result:
        chart_dir = self.chart(name)
        meta = yaml.safe_load((chart_dir / "Chart.yaml").read_text()) or {}
        deps = [d["name"] for d in meta.get("dependencies") or []]
        present = {p.name for p in (chart_dir / "charts").glob("*")} if (chart_dir / "charts").is_dir() else set()
        missing = [d for d in deps if d not in present and not any(p.startswith(f"{d}-") for p in present)]
        if not missing:
            return Result(("(dependencies present)",), 0, "", "")
        return self.run("dependency", "build", str(chart_dir))


class Renderer:
    """Renders charts once per (helm, chart, values, sets) and remembers the result."""

    def __init__(self, tmp_root: Path, source: Path = CHARTS_DIR) -> None:
        self._tmp = tmp_root
        self._source = source
        self._workspaces: dict[str, Workspace] = {}
        self._cache: dict[tuple[Any, ...], Result] = {}
        self._lock = threading.Lock()
        self._values_seq = 0

    def workspace(self, helm: HelmBinary) -> Workspace:
        with self._lock:
            if helm.label not in self._workspaces:
                root = self._tmp / helm.label
                shutil.copytree(self._source, root / "charts", symlinks=True)
                self._workspaces[helm.label] = Workspace(helm, root, isolated_env(root / "home"))
            return self._workspaces[helm.label]

    def values_file(self, values: dict[str, Any]) -> Path:
        """Write an in-test values dict to a file (nested values survive, unlike --set)."""
        with self._lock:
            self._values_seq += 1
            path = self._tmp / "values" / f"values-{self._values_seq}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(values, sort_keys=True))
        return path

    def _cached(self, key: tuple[Any, ...], produce: Any) -> Result:
        if key not in self._cache:
            self._cache[key] = produce()
        return self._cache[key]

    def template(
        self,
        helm: HelmBinary,
        chart: str,
        values_files: tuple[Path, ...] = (),
        values: dict[str, Any] | None = None,
        sets: tuple[str, ...] = (),
        show_only: tuple[str, ...] = (),
    ) -> Result:
        """`helm template` of charts/<chart> with the given overlays (in order), values and --set."""
        key = ("template", helm.label, chart, values_files, _canonical(values), sets, show_only)

        def produce() -> Result:
            ws = self.workspace(helm)
            if failed := ws.ensure_dependencies(chart):
                return failed
            args = ["template", RELEASE, str(ws.chart(chart)), "--namespace", NAMESPACE, "--kube-version", KUBE_VERSION]
            for path in values_files:
                args += ["-f", str(path)]
            if values is not None:
                args += ["-f", str(self.values_file(values))]
            for item in sets:
                args += ["--set", item]
            for item in show_only:
                args += ["--show-only", item]
            return ws.run(*args)

        return self._cached(key, produce)

    def lint(self, helm: HelmBinary, chart: str) -> Result:
        def produce() -> Result:
            ws = self.workspace(helm)
            if failed := ws.ensure_dependencies(chart):
                return failed
            chart_dir = str(ws.chart(chart))
            return ws.run("lint", "--strict", chart_dir, "--namespace", NAMESPACE, "--kube-version", KUBE_VERSION)

        return self._cached(("lint", helm.label, chart), produce)

    def notes(self, helm: HelmBinary, chart: str, values: dict[str, Any]) -> tuple[str, Result]:
        """The NOTES a user sees after `helm install`, rendered without a cluster.

        Helm 3's `install --dry-run=client` still needs a reachable cluster, and `helm template`
        drops NOTES.txt. Every template file is also a named template, so a test-only copy of the
        chart gets one extra manifest that includes `<chart>/templates/NOTES.txt` into a ConfigMap;
        test_notes_method_matches_helm_install checks this equals Helm 4's real install output.
        """
        key = ("notes", helm.label, chart, _canonical(values))
        holder: dict[str, str] = {}

        def produce() -> Result:
            root = self._tmp / f"notes-{helm.label}-{len(self._cache)}"
            shutil.copytree(self._source, root / "charts", symlinks=True)
            ws = Workspace(helm, root, isolated_env(root / "home"))
            if failed := ws.ensure_dependencies(chart):
                return failed
            probe = ws.chart(chart) / "templates" / "zz-ci-rendered-notes.yaml"
            probe.write_text(_NOTES_PROBE.replace("@NOTES@", f"{chart}/templates/NOTES.txt"))
            return ws.run(
                "template",
                RELEASE,
                str(ws.chart(chart)),
                "--namespace",
                NAMESPACE,
                "--kube-version",
                KUBE_VERSION,
                "-f",
                str(self.values_file(values)),
                "--show-only",
                "templates/zz-ci-rendered-notes.yaml",
            )

        result = self._cached(key, produce)
        if result.ok:
            holder["notes"] = result.docs()[0]["data"]["notes"]
        return holder.get("notes", ""), result

    def install_dry_run_notes(self, helm: HelmBinary, chart: str, values: dict[str, Any]) -> tuple[str, Result]:
        """Helm 4 only: `helm install --dry-run=client -o json` prints the release with its notes."""

        def produce() -> Result:
            ws = self.workspace(helm)
            if failed := ws.ensure_dependencies(chart):
                return failed
            return ws.run(
                "install",
                RELEASE,
                str(ws.chart(chart)),
                "--namespace",
                NAMESPACE,
                "--dry-run=client",
                "-o",
                "json",
                "-f",
                str(self.values_file(values)),
            )

        result = self._cached(("install-notes", helm.label, chart, _canonical(values)), produce)
        notes = json.loads(result.stdout)["info"].get("notes", "") if result.ok else ""
        return notes, result


_NOTES_PROBE = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: ci-rendered-notes
data:
  notes: {{ include "@NOTES@" . | toJson }}
"""


def _canonical(values: dict[str, Any] | None) -> str:
    return json.dumps(values, sort_keys=True) if values is not None else ""


_BINARIES: dict[str, tuple[HelmBinary | None, str]] = {}


def binary(label: str) -> HelmBinary:
    """The helm for this label, or skip (fail under RAG_REQUIRE_TOOLS=1) naming what is missing."""
    if label not in _BINARIES:
        spec = next(s for s in HELM_SPECS if s.label == label)
        _BINARIES[label] = locate(spec)
    found, why = _BINARIES[label]
    if found is None:
        requirements.missing(why)
    assert found is not None
    return found
