"""A model's private CA bundle on a cluster target: shipped as a ConfigMap, mounted by the llama-stack
chart's extraVolumes, named by the model's tlsVerify; registration stays additive and idempotent.
Also: the stand-in MaaS serves where the target's pods reach it, with a certificate naming that address.
(The cluster side, ConfigMap and upgrade values: tests/unit/test_cluster_parity.py.)"""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from harness import maas_standin
from harness import registration as reg
from harness.cluster import model_ca
from harness.errors import HarnessError

pytestmark = pytest.mark.unit

PEM = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


def test_a_bundle_gets_a_stable_configmap_and_path_inside_llama_stack() -> None:
    name = model_ca.configmap_name(PEM)
    assert name == model_ca.configmap_name(PEM) and name.startswith("model-ca-") and len(name) <= 63
    assert name != model_ca.configmap_name(PEM + b"\n")
    assert model_ca.in_container_path(name) == f"/etc/model-ca/{name}/ca.pem"


def test_an_unreadable_or_non_pem_bundle_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(HarnessError, match="missing.pem cannot be read"):
        model_ca.read_bundle(tmp_path / "missing.pem")
    (tmp_path / "key.txt").write_text("not a certificate")
    with pytest.raises(HarnessError, match="key.txt holds no PEM certificate"):
        model_ca.read_bundle(tmp_path / "key.txt")


def test_volume_values_mount_each_bundle_the_models_name_once_after_the_values_files_lists(tmp_path: Path) -> None:
    name = model_ca.configmap_name(PEM)
    path = model_ca.in_container_path(name)
    models: dict[str, dict[str, Any]] = {
        "a": {"id": "x", "tlsVerify": path},
        "b": {"id": "y", "tlsVerify": path},
        "c": {"id": "z", "tlsVerify": False},
        "d": {"enabled": False},
        "e": {"id": "w", "tlsVerify": "/etc/ssl/own-mount.pem"},  # the user's own mount: not ours
    }
    own = tmp_path / "own.yaml"
    own.write_text(yaml.safe_dump({"llama-stack": {"extraVolumes": [{"name": "mine", "emptyDir": {}}]}}))
    values = model_ca.volume_values(models, [own])["llama-stack"]
    assert values["extraVolumes"] == [{"name": "mine", "emptyDir": {}}, {"name": name, "configMap": {"name": name}}]
    assert values["extraVolumeMounts"] == [{"name": name, "mountPath": f"/etc/model-ca/{name}", "readOnly": True}]
    assert model_ca.volume_values({"c": {"id": "z", "tlsVerify": True}}) == {}


class PlacingTarget:
    """A target whose llama-stack reads CA bundles elsewhere (like a cluster's pod)."""

    def __init__(self, applied: dict[str, dict[str, Any]]) -> None:
        self.applied = applied
        self.placed: list[str] = []
        self.applies: list[dict[str, Any]] = []

    def model_ca_path(self, path: str) -> str:
        self.placed.append(path)
        return "/etc/model-ca/model-ca-0123456789ab/ca.pem"

    def applied_models(self) -> dict[str, dict[str, Any]]:
        return dict(self.applied)

    def apply_models(self, models: dict[str, dict[str, Any]]) -> None:
        self.applies.append(models)


def test_registration_compares_the_bundle_path_llama_stack_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = reg.ModelSpec("maas-m", "org/m", "https://10.213.0.2:4443/v1", api_token="tok", tls_verify="/host/ca.pem")
    placed = reg.as_llama_stack_sees_it(PlacingTarget({}), {spec.key: spec})[spec.key]
    assert placed.tls_verify == "/etc/model-ca/model-ca-0123456789ab/ca.pem"
    unchanged = reg.ModelSpec("k", "m", "https://x/v1", tls_verify=False)
    assert reg.as_llama_stack_sees_it(PlacingTarget({}), {"k": unchanged})["k"] is unchanged
    # Applied before with the in-pod path: registering again with the local path changes nothing.
    target = PlacingTarget({spec.key: placed.to_values()})
    monkeypatch.setattr(reg, "list_models", lambda url, timeout=0: [spec.llama_stack_id])
    report = reg.register(target, "http://llama-stack", {spec.key: spec})
    assert (report.method, report.applied, target.applies) == ("none", False, []), report.render()
    assert target.placed == ["/host/ca.pem"]


def test_the_stand_in_certificate_names_its_host_and_binds_beyond_loopback_only_there() -> None:
    from cryptography import x509
    from harness.certs import Authority

    served = Authority.new("test CA").issue(maas_standin.server_names("10.213.0.2"))
    cert = x509.load_pem_x509_certificates(served.chain.encode())[0]
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    addresses = names.get_values_for_type(x509.IPAddress)
    assert addresses == [ipaddress.ip_address("10.213.0.2"), ipaddress.ip_address("127.0.0.1")]
    assert names.get_values_for_type(x509.DNSName) == ["localhost"]
    ports = {"maas-gateway": {"envoy": {"port": 1}}}
    assert maas_standin._listen_values(json.loads(json.dumps(ports)), "127.0.0.1") == ports
    remote = maas_standin._listen_values(json.loads(json.dumps(ports)), "10.213.0.2")
    assert remote["maas-gateway"]["envoy"]["listenAddress"] == "0.0.0.0"
