"""Queries over rendered Kubernetes objects: workloads, pod specs, containers, selectors."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

Obj = dict[str, Any]

WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob", "Pod"}


def ref(obj: Obj) -> str:
    """`Kind/name` for messages."""
    return f"{obj.get('kind')}/{(obj.get('metadata') or {}).get('name')}"


def of_kind(docs: list[Obj], kind: str) -> list[Obj]:
    return [d for d in docs if d.get("kind") == kind]


def pod_spec(obj: Obj) -> Obj | None:
    """The pod spec of a workload (CronJob -> Job template -> pod template)."""
    kind = obj.get("kind")
    spec = obj.get("spec") or {}
    if kind == "Pod":
        return spec
    if kind == "CronJob":
        spec = ((spec.get("jobTemplate") or {}).get("spec")) or {}
    if kind in WORKLOAD_KINDS:
        return ((spec.get("template") or {}).get("spec")) or {}
    return None


def pod_labels(obj: Obj) -> dict[str, str]:
    if obj.get("kind") == "Pod":
        return (obj.get("metadata") or {}).get("labels") or {}
    spec = obj.get("spec") or {}
    if obj.get("kind") == "CronJob":
        spec = ((spec.get("jobTemplate") or {}).get("spec")) or {}
    return (((spec.get("template") or {}).get("metadata") or {}).get("labels")) or {}


def workloads(docs: list[Obj]) -> list[Obj]:
    return [d for d in docs if d.get("kind") in WORKLOAD_KINDS]


@dataclass(frozen=True)
class Container:
    owner: str  # Kind/name of the workload
    section: str  # containers / initContainers / ephemeralContainers
    spec: Obj

    @property
    def where(self) -> str:
        return f"{self.owner} {self.section}[{self.spec.get('name')}]"

    @property
    def argv(self) -> list[str]:
        return [str(a) for a in (self.spec.get("command") or []) + (self.spec.get("args") or [])]

    def env(self) -> dict[str, Obj]:
        return {e["name"]: e for e in self.spec.get("env") or []}


def containers(docs: list[Obj]) -> Iterator[Container]:
    """Every container of every workload, init and ephemeral containers included."""
    for obj in workloads(docs):
        spec = pod_spec(obj) or {}
        for section in ("initContainers", "containers", "ephemeralContainers"):
            for c in spec.get(section) or []:
                yield Container(ref(obj), section, c)


def parse_flags(argv: list[str]) -> dict[str, str]:
    """`--flag=value`, `--flag value` and bare `--flag` (value "") into one dict; last one wins."""
    flags: dict[str, str] = {}
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg.startswith("--"):
            if "=" in arg:
                name, value = arg[2:].split("=", 1)
            elif i + 1 < len(argv) and not argv[i + 1].startswith("--"):
                name, value = arg[2:], argv[i + 1]
                i += 1
            else:
                name, value = arg[2:], ""
            flags[name] = value
        i += 1
    return flags


def config_map_files(obj: Obj) -> dict[str, str]:
    """A ConfigMap's data plus decoded binaryData."""
    files = dict(obj.get("data") or {})
    for key, blob in (obj.get("binaryData") or {}).items():
        files[key] = base64.b64decode(blob).decode("utf-8", errors="replace")
    return files


def secret_values(obj: Obj) -> list[str]:
    """A Secret's values, decoded."""
    values = [str(v) for v in (obj.get("stringData") or {}).values()]
    for blob in (obj.get("data") or {}).values():
        values.append(base64.b64decode(blob).decode("utf-8", errors="replace"))
    return values


def selectors(obj: Obj) -> Iterator[tuple[str, Obj]]:
    """Every label selector in an object, with its path: spec.selector, podSelector, affinity terms..."""

    def walk(node: Any, path: str) -> Iterator[tuple[str, Obj]]:
        if isinstance(node, dict):
            for key, value in node.items():
                sub = f"{path}.{key}" if path else key
                if key in ("selector", "podSelector", "namespaceSelector", "labelSelector") and isinstance(value, dict):
                    yield sub, value
                yield from walk(value, sub)
        elif isinstance(node, list):
            for i, item in enumerate(node):
                yield from walk(item, f"{path}[{i}]")

    yield from walk(obj.get("spec") or {}, "spec")


def selector_keys(selector: Obj) -> set[str]:
    """Label keys a selector matches on (Service selectors are flat maps)."""
    keys = set((selector.get("matchLabels") or {}).keys())
    keys |= {e.get("key") for e in selector.get("matchExpressions") or [] if isinstance(e, dict)}
    if "matchLabels" not in selector and "matchExpressions" not in selector:
        keys |= {k for k, v in selector.items() if isinstance(v, str)}
    return keys
