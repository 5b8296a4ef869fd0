"""A probe pod that belongs to no component, and what it can reach from inside the pod network.

The probe runs in the release namespace under PodSecurity `restricted` (the helm test pods'
distroless python image, its `nonroot` user), carries none of the chart's component labels, and
idles; each check runs in it through `kubectl exec`, so its packets leave the probe pod's own
network namespace and cross the node's netfilter hooks as any pod's would. Checks and their
answers travel as JSON on stdin/stdout: a key used by a check never reaches a command line.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from .support import kubectl, kubectl_json

PROBE_IMAGE = "gcr.io/distroless/python3-debian13:nonroot"  # built by the lane (harness.kube.images)
PROBE_READY_TIMEOUT_S = 120
CONNECT_TIMEOUT_S = 4.0  # a dropped SYN shows as a timeout; a reachable port answers in milliseconds
HTTP_TIMEOUT_S = 15.0

# Runs inside the probe: reads {"checks": [...]} from stdin, prints one JSON answer per check.
# tcp: "connected" | "refused" | "timeout" | "error: ..."; http: {"status": N, "body": "..."} or an error.
PROBE_SCRIPT = """
import json, socket, sys, urllib.error, urllib.request
request = json.load(sys.stdin)
answers = []
for check in request["checks"]:
    if check["kind"] == "tcp":
        try:
            socket.create_connection((check["host"], check["port"]), timeout=check["timeout"]).close()
            answers.append("connected")
        except ConnectionRefusedError:
            answers.append("refused")
        except (socket.timeout, TimeoutError):
            answers.append("timeout")
        except OSError as err:
            answers.append(f"error: {err}")
    else:
        req = urllib.request.Request(check["url"], headers=check.get("headers", {}))
        try:
            with urllib.request.urlopen(req, timeout=check["timeout"]) as resp:
                answers.append({"status": resp.status, "body": resp.read(2000).decode(errors="replace")})
        except urllib.error.HTTPError as err:
            answers.append({"status": err.code, "body": err.read(2000).decode(errors="replace")})
        except OSError as err:
            answers.append({"status": 0, "body": f"error: {err}"})
print(json.dumps(answers))
"""


def probe_pod_manifest(name: str, namespace: str) -> dict[str, Any]:
    """An idle pod passing PodSecurity `restricted`, labelled as no component of any chart."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {"app.kubernetes.io/name": "network-probe", "app.kubernetes.io/managed-by": "rag-harness"},
        },
        "spec": {
            "restartPolicy": "Never",
            "automountServiceAccountToken": False,
            "terminationGracePeriodSeconds": 0,
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": 65532,
                "runAsGroup": 65532,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "containers": [
                {
                    "name": "probe",
                    "image": PROBE_IMAGE,
                    "imagePullPolicy": "Never",  # imported into containerd by the lane; nothing is pulled
                    "command": ["python3", "-c", "import time; time.sleep(3600)"],
                    "securityContext": {
                        "allowPrivilegeEscalation": False,
                        "readOnlyRootFilesystem": True,
                        "capabilities": {"drop": ["ALL"]},
                    },
                }
            ],
        },
    }


@dataclass(frozen=True)
class Probe:
    """A running probe pod; `tcp` and `http` run checks inside it."""

    name: str
    namespace: str

    @classmethod
    def start(cls, name: str, namespace: str) -> Probe:
        kubectl("apply", "-f", "-", input=json.dumps(probe_pod_manifest(name, namespace)))
        kubectl("wait", "-n", namespace, "--for=condition=Ready", f"pod/{name}", f"--timeout={PROBE_READY_TIMEOUT_S}s")
        return cls(name, namespace)

    def delete(self) -> None:
        kubectl("delete", "pod", "-n", self.namespace, self.name, "--ignore-not-found", "--wait=false")

    def run(self, checks: list[dict[str, Any]]) -> list[Any]:
        out = kubectl(
            "exec", "-i", "-n", self.namespace, self.name, "--", "python3", "-c", PROBE_SCRIPT,
            input=json.dumps({"checks": checks}),
        )  # fmt: skip
        return json.loads(out)

    def tcp(self, host: str, port: int) -> str:
        """How a TCP connect from the probe to host:port ends: connected, refused, timeout or error."""
        (answer,) = self.run([{"kind": "tcp", "host": host, "port": port, "timeout": CONNECT_TIMEOUT_S}])
        return answer

    def http(self, url: str, key: str | None = None) -> tuple[int, str]:
        """(status, body) of GET url from the probe, with `Authorization: Bearer key` when given (0: no answer)."""
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        (answer,) = self.run([{"kind": "http", "url": url, "headers": headers, "timeout": HTTP_TIMEOUT_S}])
        return answer["status"], answer["body"]


@dataclass(frozen=True)
class Internal:
    """A port of one gateway component that only the gateway may reach."""

    what: str
    component: str  # app.kubernetes.io/component of the pod that listens
    values_key: tuple[str, ...]  # where maas-gateway's values set the port


INTERNALS = (
    Internal("Envoy admin", "gateway", ("envoy", "adminPort")),
    Internal("rate limit debug port", "ratelimit", ("ratelimit", "debugPort")),
    Internal("rate limit gRPC port", "ratelimit", ("ratelimit", "grpcPort")),
    Internal("Redis", "redis", ("redis", "port")),
)


def pod_ip(namespace: str, release: str, component: str) -> str:
    """The pod IP of the (first Running) pod of `component` in the release."""
    selector = f"app.kubernetes.io/instance={release},app.kubernetes.io/component={component}"
    pods = kubectl_json("get", "pods", "-n", namespace, "-l", selector)["items"]
    running = [p for p in pods if p["status"].get("phase") == "Running" and p["status"].get("podIP")]
    assert running, f"no Running pod of component {component} in {namespace} (release {release})"
    return running[0]["status"]["podIP"]


def service_host(namespace: str, release: str, component: str) -> str:
    """`<service>.<namespace>.svc` of the release's Service for `component`."""
    selector = f"app.kubernetes.io/instance={release},app.kubernetes.io/component={component}"
    services = kubectl_json("get", "services", "-n", namespace, "-l", selector)["items"]
    assert services, f"no Service of component {component} in {namespace} (release {release})"
    return f"{services[0]['metadata']['name']}.{namespace}.svc"
