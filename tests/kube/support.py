"""Helpers the kube lane tests share: kubectl against the lane's cluster, the gateway's keys Secret."""

from __future__ import annotations

import base64
import json
import subprocess
from typing import Any

from harness.kube.config import CONTEXT
from harness.tools import require


def kubectl(*args: str, input: str | None = None) -> str:
    """Run kubectl on the lane's context (KUBECONFIG is the lane's, set by the target); stdout."""
    argv = [str(require("kubectl")), "--context", CONTEXT, *args]
    proc = subprocess.run(argv, input=input, capture_output=True, text=True, check=False, timeout=120)
    assert proc.returncode == 0, f"kubectl {' '.join(args)} failed: {proc.stderr.strip()}"
    return proc.stdout


def kubectl_json(*args: str) -> Any:
    return json.loads(kubectl(*args, "-o", "json"))


def decode(secret: dict[str, Any], key: str) -> str:
    return base64.b64decode(secret["data"][key]).decode()


def gateway_pods(namespace: str, release: str) -> dict[str, tuple[str, int]]:
    """{pod name: (uid, total restarts)} of the gateway's pods."""
    selector = f"app.kubernetes.io/instance={release},app.kubernetes.io/component=gateway"
    pods = kubectl_json("get", "pods", "-n", namespace, "-l", selector)["items"]
    return {
        p["metadata"]["name"]: (
            p["metadata"]["uid"],
            sum(cs.get("restartCount", 0) for cs in p["status"].get("containerStatuses", [])),
        )
        for p in pods
    }
