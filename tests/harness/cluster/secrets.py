"""Secrets on their way to a cluster and back: never on a command line, never printed.

- Private values files (mode 0600 in a 0700 temp dir) carry anything secret-adjacent to helm.
- The MaaS API key becomes the Secret that `values/kind-maas.yaml` references
  (`maas-api-key`/`token`), applied with the manifest on stdin.
- Gateway keys for the tests are read back from the gateway's keys Secret (base64).
"""

from __future__ import annotations

import base64
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import yaml

from harness import gateway_keys
from harness.cluster import plans
from harness.cluster.runner import CommandRunner

MAAS_SECRET_NAME = "maas-api-key"
MAAS_SECRET_KEY = "token"
KEYS_SECRET_KEY = gateway_keys.KEYS_SECRET_KEY


def private_dir(prefix: str = "rag-harness-") -> Path:
    return Path(tempfile.mkdtemp(prefix=prefix))  # mkdtemp creates it 0700


def write_private_values(directory: Path, name: str, values: dict[str, Any]) -> Path:
    """Write a values file readable only by this user; created 0600 before any byte is written."""
    path = directory / name
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        yaml.safe_dump(values, handle, sort_keys=False)
    return path


def maas_secret_manifest(api_key: str, namespace: str) -> str:
    doc = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": MAAS_SECRET_NAME, "namespace": namespace},
        "type": "Opaque",
        "stringData": {MAAS_SECRET_KEY: api_key},
    }
    return json.dumps(doc)


def apply_maas_secret(runner: CommandRunner, api_key: str, namespace: str, context: str = "") -> None:
    """`kubectl apply -f -` with the Secret on stdin: the key never appears in argv or output."""
    argv = ["kubectl", *(["--context", context] if context else []), "apply", "-n", namespace, "-f", "-"]
    runner.run(argv, input=maas_secret_manifest(api_key, namespace))


def maas_model_values(endpoint: str, model: str) -> dict[str, Any]:
    """The non-secret half of the MaaS model `external` (values/kind-maas.yaml): where it is and which id."""
    entry: dict[str, Any] = {"enabled": True}
    if endpoint:
        entry["url"] = endpoint.rstrip("/") if endpoint.rstrip("/").endswith("/v1") else endpoint.rstrip("/") + "/v1"
    if model:
        entry["id"] = model
    return {"global": {"models": {"external": entry}}} if endpoint else {}


# Reading gateway keys back --------------------------------------------------------------------


def keys_from_secret(secret: dict[str, Any], secret_key: str = KEYS_SECRET_KEY) -> dict[str, list[str]]:
    """tier -> keys from one Secret object whose `secret_key` entry is the gateway's key file."""
    encoded = (secret.get("data") or {}).get(secret_key)
    if not encoded:
        return {}
    return gateway_keys.by_tier(gateway_keys.parse(base64.b64decode(encoded).decode()))


def keys_from_secret_list(doc: str, secret_key: str = KEYS_SECRET_KEY) -> dict[str, list[str]]:
    """Merge the keys of every Secret in `kubectl get secrets -o json` (or of a single Secret)."""
    parsed = json.loads(doc or "{}")
    keys: dict[str, list[str]] = {}
    for secret in parsed.get("items", [parsed] if parsed.get("kind") == "Secret" else []):
        for tier, tier_keys in keys_from_secret(secret, secret_key).items():
            keys.setdefault(tier, []).extend(k for k in tier_keys if k not in keys.get(tier, []))
    return keys


def gateway_values(values: dict[str, Any]) -> dict[str, Any]:
    """The maas-gateway values of a release's `helm get values --all`: the rag chart's `maas-gateway`
    section, or the whole of a release of the maas-gateway chart itself."""
    if isinstance(values.get("maas-gateway"), dict):
        return dict(values["maas-gateway"])
    return values if "apiKeys" in values else {}


def key_sources(values: dict[str, Any]) -> tuple[str, str, str, str]:
    """(keys Secret name or "", its data key, hashing Secret name or "", its data key) from the
    release's `helm get values --all`: "" names the chart-owned Secret."""
    api_keys = gateway_values(values).get("apiKeys") or {}
    hmac = api_keys.get("hmac") or {}
    return (
        str(api_keys.get("existingSecret") or ""),
        str(api_keys.get("secretKey") or KEYS_SECRET_KEY),
        str(hmac.get("existingSecret") or ""),
        str(hmac.get("secretKey") or gateway_keys.HMAC_SECRET_KEY),
    )


def gateway_key_source(values_json: str) -> tuple[str, str]:
    """(existingSecret name or "", data key) from `helm get values --all -o json`."""
    existing, secret_key, _, _ = key_sources(json.loads(values_json or "{}") or {})
    return existing, secret_key


def read_gateway_keys(runner: CommandRunner, namespace: str, release: str, context: str = "") -> dict[str, list[str]]:
    """Keys by tier from the gateway's keys Secret (the chart's, or apiKeys.existingSecret); never printed."""
    values = runner.run(plans.helm_get_values(release, namespace, context, output="json"), check=False)
    existing, secret_key = gateway_key_source(values.stdout) if values.ok else ("", KEYS_SECRET_KEY)
    if existing:
        result = runner.run(plans.kubectl_get_secret(existing, namespace, context), check=False)
    else:
        selector = plans.instance_selector(release, "gateway")
        result = runner.run(plans.kubectl_get_secrets(namespace, selector, context), check=False)
    return keys_from_secret_list(result.stdout, secret_key) if result.ok else {}


def all_keys(keys: dict[str, list[str]]) -> list[str]:
    return [key for tier_keys in keys.values() for key in tier_keys]


# Reading the pgvector password back -----------------------------------------------------------

PGVECTOR = "pgvector"


def pgvector_login(values_json: str) -> tuple[str, str, str, str]:
    """(user, database, existingSecret name or "", data key) of pgvector from `helm get values --all -o json`."""
    values = (json.loads(values_json or "{}") or {}).get(PGVECTOR) or {}
    auth = values.get("auth") or {}
    return (
        str(values.get("user") or ""),
        str(values.get("database") or ""),
        str(auth.get("existingSecret") or ""),
        str(auth.get("secretKey") or "password"),
    )


def secret_value(doc: str, secret_key: str) -> str:
    """The decoded `secret_key` of the first Secret in `kubectl get secret(s) -o json` ("" when absent)."""
    parsed = json.loads(doc or "{}")
    for secret in parsed.get("items", [parsed] if parsed.get("kind") == "Secret" else []):
        if encoded := (secret.get("data") or {}).get(secret_key):
            return base64.b64decode(encoded).decode()
    return ""


def read_pgvector_login(runner: CommandRunner, namespace: str, release: str, context: str = "") -> tuple[str, str, str]:
    """(user, database, password) of the release's PostgreSQL: the password from its Secret (the
    chart's, or pgvector.auth.existingSecret). Never printed; raises KeyError when it is missing."""
    values = runner.run(plans.helm_get_values(release, namespace, context, output="json"))
    user, database, existing, secret_key = pgvector_login(values.stdout)
    if existing:
        result = runner.run(plans.kubectl_get_secret(existing, namespace, context))
    else:
        result = runner.run(plans.kubectl_get_secrets(namespace, plans.instance_selector(release, PGVECTOR), context))
    password = secret_value(result.stdout, secret_key)
    if not password:
        where = existing or f"the Secret labelled {plans.instance_selector(release, PGVECTOR)}"
        raise KeyError(f"{where} in namespace {namespace} holds no {secret_key!r}: no PostgreSQL password to read")
    return user, database, password
