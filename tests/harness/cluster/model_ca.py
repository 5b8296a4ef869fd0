"""A model's private CA bundle on a cluster: a ConfigMap, mounted into llama-stack by the chart.

A MaaS behind a private CA is trusted through `global.models.<key>.tlsVerify: <path of a CA
bundle inside the container>`, and the llama-stack chart mounts the bundle with
`extraVolumes`/`extraVolumeMounts` (see its values.schema.json). A CA bundle given on this
machine (MAAS_CA_BUNDLE, or the stand-in MaaS's CA) therefore becomes:
- a ConfigMap `model-ca-<digest>` in the release's namespace (a CA certificate is public; the
  MaaS key never goes here: it stays in the chart's Secret);
- the in-container path `/etc/model-ca/model-ca-<digest>/ca.pem` as the model's `tlsVerify`;
- on every helm upgrade, one volume and one read-only mount per bundle that an applied model's
  `tlsVerify` names, computed from `global.models` itself, so a later process (another
  `register`) needs no record of earlier bundles.
The digest is of the bundle's content: registering the same bundle again gives the same name
and the same `tlsVerify`, so registration stays idempotent.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from harness.errors import HarnessError

MOUNT_ROOT = "/etc/model-ca"
FILE_NAME = "ca.pem"
NAME_PREFIX = "model-ca-"
DIGEST_CHARS = 12  # of sha256: a distinct name per bundle, well inside a 63-character volume name
MANAGED_BY = {"app.kubernetes.io/managed-by": "rag-harness"}
CHART = "llama-stack"  # the rag chart's key for the llama-stack subchart


def read_bundle(path: str | Path) -> bytes:
    """The PEM bundle at `path` on this machine; HarnessError naming the path when unusable."""
    try:
        pem = Path(path).read_bytes()
    except OSError as error:
        raise HarnessError(f"CA bundle {path} cannot be read ({error.strerror}): check MAAS_CA_BUNDLE") from None
    if b"-----BEGIN CERTIFICATE-----" not in pem:
        raise HarnessError(f"CA bundle {path} holds no PEM certificate: check MAAS_CA_BUNDLE")
    return pem


def configmap_name(pem: bytes) -> str:
    return NAME_PREFIX + hashlib.sha256(pem).hexdigest()[:DIGEST_CHARS]


def in_container_path(name: str) -> str:
    """Where llama-stack reads the bundle of ConfigMap `name` (the model's tlsVerify)."""
    return f"{MOUNT_ROOT}/{name}/{FILE_NAME}"


def configmap_manifest(name: str, pem: bytes, namespace: str) -> str:
    """The ConfigMap as JSON, for `kubectl apply -f -`."""
    doc = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace, "labels": MANAGED_BY},
        "data": {FILE_NAME: pem.decode()},
    }
    return json.dumps(doc)


def bundles_named(models: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """ConfigMap names of the bundles that `global.models` entries' tlsVerify point at, sorted."""
    names = set()
    for entry in models.values():
        verify = (entry or {}).get("tlsVerify")
        if isinstance(verify, str) and verify.startswith(MOUNT_ROOT + "/"):
            names.add(verify.removeprefix(MOUNT_ROOT + "/").split("/", 1)[0])
    return sorted(names)


def volume_values(models: Mapping[str, Mapping[str, Any]], values_files: Iterable[Path] = ()) -> dict[str, Any]:
    """llama-stack's extraVolumes/extraVolumeMounts for the bundles `models` name; {} when none.

    Helm replaces lists instead of merging them, so the lists the values files set (the last
    file that sets one wins, as in Helm) come first and the bundles' entries are added to them.
    """
    names = bundles_named(models)
    if not names:
        return {}
    volumes, mounts = _listed(values_files, "extraVolumes"), _listed(values_files, "extraVolumeMounts")
    volumes += [{"name": n, "configMap": {"name": n}} for n in names]
    mounts += [{"name": n, "mountPath": f"{MOUNT_ROOT}/{n}", "readOnly": True} for n in names]
    return {CHART: {"extraVolumes": volumes, "extraVolumeMounts": mounts}}


def _listed(values_files: Iterable[Path], key: str) -> list[Any]:
    found: list[Any] = []
    for path in values_files:
        document = yaml.safe_load(Path(path).read_text()) or {}
        chart = document.get(CHART) or {}
        if isinstance(chart, dict) and key in chart:
            found = list(chart[key] or [])
    return found
