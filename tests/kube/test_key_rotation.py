"""Replacing the gateway's API-key Secret rotates keys on the running pods, with no restart.

The kubelet refreshes a Secret volume within its sync period (the lane's kubelet syncs every
KUBELET_SYNC_S); Envoy re-reads the key file every `apiKeys.reloadSeconds`. So within their sum
(plus one sync period of jitter and slack for a busy machine) a new key must work and a
removed key must get 401, while the gateway pods keep their uid and restart count.
"""

from __future__ import annotations

import json
import secrets
import time

import httpx
import pytest
from harness.cluster import plans
from harness.cluster.runner import SubprocessRunner
from harness.kube.config import CONTEXT, KUBELET_SYNC_S

from .support import decode, gateway_pods, kubectl, kubectl_json

pytestmark = [pytest.mark.kube, pytest.mark.auth]

SLACK_S = 20.0  # a busy 2-core machine: probe and request latency on top of the two periods
POLL_S = 2.0


def status(gateway_url: str, key: str) -> int:
    response = httpx.get(f"{gateway_url}/v1/models", headers={"Authorization": f"Bearer {key}"}, timeout=10)
    return response.status_code


def reload_seconds(namespace: str, release: str) -> int:
    doc = SubprocessRunner().run(plans.helm_get_values(release, namespace, CONTEXT, output="json")).stdout
    return int(json.loads(doc)["maas-gateway"]["apiKeys"]["reloadSeconds"])


def keys_secret(namespace: str, release: str) -> dict:
    selector = f"app.kubernetes.io/instance={release},app.kubernetes.io/component=gateway"
    # The gateway's Secrets: the key file and the key hashing secret.
    items = kubectl_json("get", "secrets", "-n", namespace, "-l", selector)["items"]
    (secret,) = [s for s in items if "api-keys" in (s.get("data") or {})]
    return secret


def replace_keys(secret: dict, key_file: str) -> None:
    """Replace the Secret's key file through kubectl's stdin (a key never reaches a command line)."""
    doc = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            k: secret["metadata"][k] for k in ("name", "namespace", "labels", "annotations") if k in secret["metadata"]
        },
        "type": secret.get("type", "Opaque"),
        "stringData": {"api-keys": key_file},
    }
    kubectl("apply", "-f", "-", input=json.dumps(doc))


def test_replacing_the_keys_secret_rotates_keys_without_restart(target, gateway_url, key_pool) -> None:
    namespace, release = target.deployment().namespace, target.options.release
    secret = keys_secret(namespace, release)
    original = decode(secret, "api-keys")
    old_key = key_pool.one("free")
    new_key = f"rotated-{secrets.token_hex(12)}"
    assert status(gateway_url, old_key) == 200 and status(gateway_url, new_key) == 401, "precondition"
    pods_before = gateway_pods(namespace, release)
    budget = reload_seconds(namespace, release) + 2 * KUBELET_SYNC_S + SLACK_S
    rotated = (
        "\n".join(line for line in original.splitlines() if old_key not in line) + f"\nfree rotated-user {new_key}\n"
    )
    replace_keys(secret, rotated)
    started = time.monotonic()
    try:
        seen = (0, 0)
        while time.monotonic() - started < budget:
            seen = (status(gateway_url, new_key), status(gateway_url, old_key))
            if seen == (200, 401):
                break
            time.sleep(POLL_S)
        elapsed = time.monotonic() - started
        assert seen == (200, 401), (
            f"after {elapsed:.0f}s (budget {budget:.0f}s): new key -> {seen[0]}, old key -> {seen[1]}"
        )
        assert gateway_pods(namespace, release) == pods_before, "a gateway pod restarted or was replaced"
    finally:
        replace_keys(secret, original)
