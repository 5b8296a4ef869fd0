"""The gateway's internals answer only the gateway, on a cluster that enforces NetworkPolicy.

The lane runs kube-router's NetworkPolicy controller (iptables + ipset), so the charts'
NetworkPolicies are enforced here. Its rules let the node's own traffic through (kubelet probes),
so reachability is checked from a pod. From a probe pod in the release namespace that
belongs to no component: Envoy admin, the rate limit debug and gRPC ports and Redis (by pod IP
and through its Service) accept no connection, while the same probe reaches the gateway's API
port and gets the gateway's own answers (the positive control: the probe's network works, so a
refused internal is refused by policy or bind address, not by a broken probe).

No service key: llama-stack calls the models with each caller's forwarded key, so its pod holds
no gateway key that a pod outside it could send; the last test checks that on the live objects.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from harness.cluster.runner import SubprocessRunner
from harness.cluster.secrets import all_keys, read_gateway_keys
from harness.kube.config import CONTEXT

from .network_probe import INTERNALS, Internal, Probe, pod_ip, service_host
from .support import kubectl_json

pytestmark = [pytest.mark.kube, pytest.mark.auth]


def value(values: dict[str, Any], path: tuple[str, ...]) -> Any:
    for key in path:
        values = values[key]
    return values


def gateway_api(release: tuple[str, str], values: dict[str, Any]) -> str:
    return f"http://{service_host(*release, 'gateway')}:{values['service']['port']}"


def test_probe_reaches_the_gateway_api(probe: Probe, release: tuple[str, str], gateway_values, key_pool) -> None:
    """Positive control: the probe gets the gateway's 401 without a key and 200 with a user's key,
    through the Service, and connects to the gateway pod's API port directly."""
    url = f"{gateway_api(release, gateway_values)}/v1/models"
    status, body = probe.http(url)
    assert status == 401 and "invalid_api_key" in body, f"GET {url} without a key from the probe: {status} {body}"
    status, body = probe.http(url, key_pool.one("free"))
    assert status == 200, f"GET {url} with a free key from the probe: {status} {body}"
    gateway = pod_ip(*release, "gateway")
    port = gateway_values["envoy"]["port"]
    assert probe.tcp(gateway, port) == "connected", f"the probe cannot connect to the gateway pod {gateway}:{port}"


@pytest.mark.parametrize("internal", INTERNALS, ids=[i.what for i in INTERNALS])
def test_gateway_internal_is_unreachable_from_another_pod(
    probe: Probe, release: tuple[str, str], gateway_values, internal: Internal
) -> None:
    host, port = pod_ip(*release, internal.component), value(gateway_values, internal.values_key)
    outcome = probe.tcp(host, port)
    assert outcome != "connected", (
        f"{internal.what} ({internal.component} pod {host}:{port}) accepted a connection from pod "
        f"{probe.name}, which is not part of the gateway"
    )


def test_redis_service_is_unreachable_from_another_pod(probe: Probe, release: tuple[str, str], gateway_values) -> None:
    host, port = service_host(*release, "redis"), gateway_values["redis"]["port"]
    outcome = probe.tcp(host, port)
    assert outcome != "connected", f"Redis's Service {host}:{port} accepted a connection from pod {probe.name}"


def test_llama_stack_behind_the_gateway_has_one_door(
    probe: Probe, release: tuple[str, str], gateway_values, key_pool
) -> None:
    """With llama-stack behind the gateway, a pod that is not the gateway (nor a helm test pod)
    cannot connect to llama-stack's pod, while the same probe reaches llama-stack through the gateway
    with a key (the positive control)."""
    behind = gateway_values.get("llamaStack") or {}
    if not behind.get("enabled"):
        pytest.skip("the release does not put llama-stack behind the gateway (maas-gateway.llamaStack.enabled)")
    url = f"{gateway_api(release, gateway_values)}{behind['pathPrefix']}/v1/models"
    status, body = probe.http(url, key_pool.shared("premium"))
    assert status == 200 and "data" in body, f"GET {url} from the probe: {status} {body}"
    host, port = pod_ip(*release, "llama-stack"), int(behind["port"])
    outcome = probe.tcp(host, port)
    assert outcome != "connected", (
        f"llama-stack's pod {host}:{port} accepted a connection from pod {probe.name}: a second, unmetered door"
    )


def referenced_objects(pod: dict[str, Any]) -> tuple[set[str], set[str]]:
    """(ConfigMap names, Secret names) a pod reads through volumes, env and envFrom."""
    config_maps, secrets = set(), set()
    for volume in pod["spec"].get("volumes", []):
        if "configMap" in volume:
            config_maps.add(volume["configMap"]["name"])
        if "secret" in volume:
            secrets.add(volume["secret"]["secretName"])
        for source in volume.get("projected", {}).get("sources", []):
            if "configMap" in source:
                config_maps.add(source["configMap"]["name"])
            if "secret" in source:
                secrets.add(source["secret"]["name"])
    for container in pod["spec"]["containers"] + pod["spec"].get("initContainers", []):
        for env in container.get("env", []):
            ref = env.get("valueFrom", {})
            if "configMapKeyRef" in ref:
                config_maps.add(ref["configMapKeyRef"]["name"])
            if "secretKeyRef" in ref:
                secrets.add(ref["secretKeyRef"]["name"])
        for source in container.get("envFrom", []):
            if "configMapRef" in source:
                config_maps.add(source["configMapRef"]["name"])
            if "secretRef" in source:
                secrets.add(source["secretRef"]["name"])
    return config_maps, secrets


def test_llama_stack_pod_holds_no_gateway_key(release: tuple[str, str]) -> None:
    """There is no service key to send from outside llama-stack's pod: no gateway key is in its
    env, nor in a ConfigMap or Secret it mounts or reads (llama-stack forwards each caller's key)."""
    namespace, name = release
    keys = set(all_keys(read_gateway_keys(SubprocessRunner(), namespace, name, CONTEXT)))
    assert keys, "the gateway's key file is empty: nothing to compare"
    selector = f"app.kubernetes.io/instance={name},app.kubernetes.io/component=llama-stack"
    pods = kubectl_json("get", "pods", "-n", namespace, "-l", selector)["items"]
    assert pods, f"no llama-stack pod in {namespace}"
    for pod in pods:
        texts = {f"pod {pod['metadata']['name']} spec": json.dumps(pod["spec"])}
        config_maps, secrets = referenced_objects(pod)
        for cm in config_maps:
            texts[f"ConfigMap {cm}"] = json.dumps(kubectl_json("get", "configmap", "-n", namespace, cm).get("data", {}))
        for secret in secrets:
            data = kubectl_json("get", "secret", "-n", namespace, secret).get("data", {})
            texts[f"Secret {secret}"] = "\n".join(base64.b64decode(v).decode(errors="replace") for v in data.values())
        holding = sorted(where for where, text in texts.items() if any(key in text for key in keys))
        assert not holding, f"llama-stack's pod can read a gateway key in: {', '.join(holding)}"
