"""A cluster's gateway key store: the gateway's keys Secret and its key hashing Secret, read and
written through the Kubernetes API (the `kubernetes` client), never through a command line.

The gateway's pods see a changed Secret when the kubelet syncs its volume (its `syncFrequency`,
about a minute by default; the kube lane sets 10 s), and read it within `apiKeys.reloadSeconds`
after that; nothing restarts. A write names the Secret's resourceVersion as it was read, so a
change made meanwhile by someone else is refused, never overwritten. The store is marked
`maas-gateway/key-store: harness-keys`; from then on the chart keeps its data across
`helm upgrade` instead of rendering `apiKeys.keys` over it.
"""

from __future__ import annotations

import base64
import json
import os
from dataclasses import dataclass
from typing import Any

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from harness import gateway_keys
from harness.cluster import plans
from harness.cluster.runner import CommandRunner
from harness.cluster.secrets import gateway_values, key_sources
from harness.errors import HarnessError

MANAGED_ANNOTATION = "maas-gateway/key-store"  # the chart's templates/secret-api-keys.yaml reads it
MANAGED_BY = "harness-keys"
API_TIMEOUT_S = 30


class NoClusterKeyStore(HarnessError):
    pass


@dataclass(frozen=True)
class SecretRef:
    name: str
    key: str


def pick(secrets: list[dict[str, Any]], data_key: str, exclude: str = "") -> str:
    """The name of the (chart-owned, labelled) Secret that holds `data_key`, other than `exclude`."""
    names = sorted(
        str(s["metadata"]["name"]) for s in secrets
        if data_key in (s.get("data") or {}) and s["metadata"]["name"] != exclude
    )  # fmt: skip
    return names[0] if names else ""


class ClusterKeySecret:
    """The KeyStore of a release on a cluster (harness.gateway_keys.KeyStore)."""

    def __init__(self, runner: CommandRunner, namespace: str, release: str, context: str = "") -> None:
        self.namespace = namespace
        self.release = release
        values = runner.run(plans.helm_get_values(release, namespace, context, output="json"), check=False)
        if not values.ok:
            raise NoClusterKeyStore(
                f"release {release} not found in namespace {namespace}: install it first (`make up TARGET=...`)"
            )
        installed = json.loads(values.stdout or "{}") or {}
        keys_name, keys_key, hmac_name, hmac_key = key_sources(installed)
        gateway = gateway_values(installed)
        self.tiers = [str(name) for name in gateway.get("tiers") or {}]
        reload_s = int((gateway.get("apiKeys") or {}).get("reloadSeconds") or 0)
        chart_owned = not keys_name
        try:
            # KUBECONFIG as it is now: the kube target sets it after the client library was imported
            # (which read it once, for its default).
            config.load_kube_config(config_file=os.environ.get("KUBECONFIG") or None, context=context or None)
        except (config.ConfigException, OSError) as error:
            raise NoClusterKeyStore(f"no kubeconfig for context {context or '(current)'}: {error}") from None
        self.api = client.CoreV1Api()
        if not keys_name or not hmac_name:
            selector = plans.instance_selector(release, "gateway")
            listed = self._call(
                lambda: self.api.list_namespaced_secret(
                    namespace, label_selector=selector, _request_timeout=API_TIMEOUT_S
                )
            )
            owned = [s.to_dict() for s in listed.items]
            keys_name = keys_name or pick(owned, keys_key)
            hmac_name = hmac_name or pick(owned, hmac_key, exclude=keys_name)
        if not keys_name or not hmac_name:
            raise NoClusterKeyStore(
                f"release {release} in namespace {namespace} has no gateway key store (a Secret with {keys_key!r} "
                f"and one with {hmac_key!r}): the key lifecycle needs maas-gateway mode standalone"
            )
        self.keys = SecretRef(keys_name, keys_key)
        self.hmac = SecretRef(hmac_name, hmac_key)
        self._version = ""
        self.where = f"Secret {namespace}/{keys_name} (key {keys_key})"
        kept = (
            "the chart keeps it across `helm upgrade` from now on" if chart_owned
            else "the chart never renders this Secret (apiKeys.existingSecret)"
        )  # fmt: skip
        read = gateway_keys.reload_note(reload_s)
        self.lasts = f"once the kubelet has synced the Secret's volume, {read}; {kept}"

    def _call(self, do: Any) -> Any:
        try:
            return do()
        except ApiException as error:
            raise NoClusterKeyStore(
                f"the Kubernetes API refused ({error.status} {error.reason}) in namespace {self.namespace}: "
                "check the kube context and that you may get and update Secrets there"
            ) from None
        except (HTTPError, OSError) as error:
            raise NoClusterKeyStore(
                f"the Kubernetes API did not answer ({type(error).__name__}): check the kube context and that "
                "the cluster runs"
            ) from None

    def _read(self, ref: SecretRef) -> tuple[str, str]:
        secret = self._call(
            lambda: self.api.read_namespaced_secret(ref.name, self.namespace, _request_timeout=API_TIMEOUT_S)
        )
        encoded = (secret.data or {}).get(ref.key)
        if encoded is None:
            raise NoClusterKeyStore(f"Secret {self.namespace}/{ref.name} has no data key {ref.key!r}")
        return base64.b64decode(encoded).decode(), str(secret.metadata.resource_version)

    def read(self) -> list[gateway_keys.KeyRecord]:
        text, self._version = self._read(self.keys)
        return gateway_keys.parse_records(text)

    def secret(self) -> str:
        return self._read(self.hmac)[0].strip()

    def write(self, records: list[gateway_keys.KeyRecord]) -> None:
        """Replace the key file in the Secret, if nobody changed the Secret since `read()`."""
        if not self._version:
            raise RuntimeError("ClusterKeySecret.write before read")
        body = {
            "metadata": {
                "resourceVersion": self._version,
                "annotations": {MANAGED_ANNOTATION: MANAGED_BY},
            },
            "data": {self.keys.key: base64.b64encode(gateway_keys.render(records).encode()).decode()},
        }
        try:
            self.api.patch_namespaced_secret(self.keys.name, self.namespace, body, _request_timeout=API_TIMEOUT_S)
        except ApiException as error:
            if error.status == 409:
                raise NoClusterKeyStore(
                    f"{self.where} changed since it was read (another change at the same time?): "
                    "nothing written; run the command again"
                ) from None
            raise NoClusterKeyStore(
                f"the Kubernetes API refused to update {self.where} ({error.status} {error.reason})"
            ) from None
        except (HTTPError, OSError) as error:
            raise NoClusterKeyStore(
                f"the Kubernetes API did not answer ({type(error).__name__}) while updating {self.where}: "
                "run `keys list` to see whether the change was made"
            ) from None

    def unmark(self) -> None:
        """Hand the key file back to the chart: without the annotation, the next `helm upgrade`
        renders `apiKeys.keys` over it again."""
        body = {"metadata": {"annotations": {MANAGED_ANNOTATION: None}}}
        self._call(
            lambda: self.api.patch_namespaced_secret(
                self.keys.name, self.namespace, body, _request_timeout=API_TIMEOUT_S
            )
        )
