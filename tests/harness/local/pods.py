"""Turn the rendered pod specs into container specs a local process can run.

The runner reads what Kubernetes would read: command, args, env (literal, secretKeyRef,
configMapKeyRef), volume mounts of ConfigMaps/Secrets/emptyDirs/PVCs, container ports and
the readiness probe. Nothing here knows a component's configuration format.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any, cast

from harness.errors import HarnessError
from harness.render import Rendered


class MissingReference(HarnessError, LookupError):
    pass


@dataclass
class Mount:
    path: str  # mountPath inside the container
    files: dict[str, bytes]  # file name -> content (empty for emptyDir/PVC)
    sub_path: str = ""
    claim: str = ""  # a PersistentVolumeClaim's name: its data outlives the container (restarts)
    config: bool = False  # a ConfigMap: its text may name other mounts' paths (rewritten locally)


@dataclass
class Probe:
    kind: str  # "http" or "tcp"
    port: int
    path: str = "/"
    scheme: str = "http"  # httpGet's scheme, lower case: a server with TLS on is probed over HTTPS


@dataclass
class ContainerSpec:
    component: str
    name: str  # unique: <workload>-<container>
    image: str
    command: list[str]
    args: list[str]
    env: dict[str, str]
    mounts: list[Mount] = field(default_factory=list)
    probe: Probe | None = None
    ports: list[int] = field(default_factory=list)  # containerPorts: what it will listen on
    # The pod's initContainers, run to completion in order before this container starts
    # (attached to the pod's first container only).
    init: list[ContainerSpec] = field(default_factory=list)

    @property
    def image_repository(self) -> str:
        return self.image.rsplit(":", 1)[0] if ":" in self.image.split("/")[-1] else self.image


def container_specs(rendered: Rendered) -> list[ContainerSpec]:
    specs = []
    for workload in rendered.workloads():
        pod = workload["spec"]["template"]["spec"]
        component = workload["metadata"].get("labels", {}).get("app.kubernetes.io/component", "")
        volumes = {v["name"]: v for v in pod.get("volumes", [])}
        name = workload["metadata"]["name"]
        for tmpl in workload["spec"].get("volumeClaimTemplates", []):
            # The claim a StatefulSet's first replica gets: <template>-<statefulset>-0.
            claim = f"{tmpl['metadata']['name']}-{name}-0"
            volumes[tmpl["metadata"]["name"]] = {
                "name": tmpl["metadata"]["name"],
                "persistentVolumeClaim": {"claimName": claim},
            }
        init = [_container_spec(rendered, name, component, c, volumes) for c in pod.get("initContainers", [])]
        for index, container in enumerate(pod["containers"]):
            spec = _container_spec(rendered, name, component, container, volumes)
            spec.init = init if index == 0 else []
            specs.append(spec)
    return specs


def _container_spec(
    rendered: Rendered, workload: str, component: str, container: dict[str, Any], volumes: dict[str, Any]
) -> ContainerSpec:
    ports = {p.get("name"): p["containerPort"] for p in container.get("ports", [])}
    return ContainerSpec(
        component=component,
        name=f"{workload}-{container['name']}",
        image=container["image"],
        command=[str(c) for c in container.get("command", [])],
        args=[str(a) for a in container.get("args", [])],
        env=_env(rendered, container.get("env", [])),
        mounts=[_mount(rendered, m, volumes[m["name"]]) for m in container.get("volumeMounts", [])],
        probe=_probe(container.get("readinessProbe") or container.get("startupProbe"), ports),
        ports=sorted(set(ports.values())),
    )


def _env(rendered: Rendered, entries: list[dict[str, Any]]) -> dict[str, str]:
    env: dict[str, str] = {}
    for entry in entries:
        if "value" in entry:
            env[entry["name"]] = str(entry["value"])
            continue
        source = entry.get("valueFrom", {})
        if "secretKeyRef" in source:
            ref = source["secretKeyRef"]
            env[entry["name"]] = _lookup(rendered.secret_data, ref, "Secret")
        elif "configMapKeyRef" in source:
            ref = source["configMapKeyRef"]
            env[entry["name"]] = _lookup(rendered.config_map_data, ref, "ConfigMap")
    return env


def _lookup(getter: Any, ref: dict[str, Any], kind: str) -> str:
    try:
        return cast(str, getter(ref["name"])[ref["key"]])
    except KeyError as exc:
        if ref.get("optional"):
            return ""
        # Secrets the chart does not render (existingSecret) cannot exist locally.
        raise MissingReference(
            f"{kind} {ref['name']!r} key {ref['key']!r} is not rendered by the chart: locally, leave "
            "existingSecret/existing ConfigMap values unset so the chart renders them"
        ) from exc


def _mount(rendered: Rendered, mount: dict[str, Any], volume: dict[str, Any]) -> Mount:
    files: dict[str, bytes] = {}
    if "configMap" in volume:
        cm = rendered.get("ConfigMap", volume["configMap"]["name"])
        files = {k: v.encode() for k, v in (cm.get("data") or {}).items()}
    elif "secret" in volume:
        secret = rendered.get("Secret", volume["secret"]["secretName"])
        files = {k: base64.b64decode(v) for k, v in (secret.get("data") or {}).items()}
        files |= {k: v.encode() for k, v in (secret.get("stringData") or {}).items()}
    items = (volume.get("configMap") or volume.get("secret") or {}).get("items")
    if items:
        files = {item["path"]: files[item["key"]] for item in items}
    claim = (volume.get("persistentVolumeClaim") or {}).get("claimName", "")
    return Mount(
        path=mount["mountPath"],
        files=files,
        sub_path=mount.get("subPath", ""),
        claim=claim,
        config="configMap" in volume,
    )


def _probe(probe: dict[str, Any] | None, ports: dict[str | None, int]) -> Probe | None:
    if not probe:
        return None
    if "httpGet" in probe:
        get = probe["httpGet"]
        scheme = str(get.get("scheme", "HTTP")).lower()
        return Probe("http", _port(get["port"], ports), get.get("path", "/"), scheme)
    if "tcpSocket" in probe:
        return Probe("tcp", _port(probe["tcpSocket"]["port"], ports))
    return None


def _port(port: int | str, ports: dict[str | None, int]) -> int:
    return port if isinstance(port, int) else ports[port]
