"""HTTPS to llama-stack (llama-stack `tls`, maas-gateway `llamaStack.tls`): llama-stack serves its API
and probes over TLS from a kubernetes.io/tls Secret at KServe's path, the gateway verifies the
certificate against a CA and the server name, and the private key stays in the Secret."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from charts.cases import render_ok
from charts.helm import HelmBinary, Renderer
from charts.manifests import Obj, config_map_files, of_kind, ref

KEY_PEM = "-----BEGIN PRIVATE KEY-----\nnot-a-real-key-7d2e\n-----END PRIVATE KEY-----\n"
CERT_PEM = "-----BEGIN CERTIFICATE-----\nllama-stack-cert\n-----END CERTIFICATE-----\n"
CA_PEM = "-----BEGIN CERTIFICATE-----\nllama-stack-ca\n-----END CERTIFICATE-----\n"
KSERVE_TLS = "/var/run/kserve/tls"
BEHIND_TLS = {
    "maas-gateway": {"llamaStack": {"enabled": True, "tls": {"enabled": True, "ca": CA_PEM}}},
    "llama-stack": {"tls": {"enabled": True, "certificate": CERT_PEM, "key": KEY_PEM}},
}


def named(docs: list[Obj], kind: str, suffix: str) -> Obj:
    (found,) = [d for d in of_kind(docs, kind) if d["metadata"]["name"].endswith(suffix)]
    return found


def container(deployment: Obj, name: str) -> Obj:
    (found,) = [c for c in deployment["spec"]["template"]["spec"]["containers"] if c["name"] == name]
    return found


def run_config(docs: list[Obj]) -> Any:
    return yaml.safe_load(config_map_files(named(docs, "ConfigMap", "llama-stack-config"))["config.yaml"])


def llama_stack_cluster(docs: list[Obj]) -> Any:
    envoy = yaml.safe_load(config_map_files(named(docs, "ConfigMap", "maas-gateway-envoy"))["envoy.yaml"])
    (cluster,) = [c for c in envoy["static_resources"]["clusters"] if c["name"] == "maas_llama_stack"]
    return cluster


@pytest.mark.parametrize("source", ("inline", "existingSecret"))
def test_llama_stack_serves_https_from_a_secret_at_kserves_path(
    helm: HelmBinary, renderer: Renderer, source: str
) -> None:
    tls: dict[str, Any] = {"enabled": True}
    tls |= {"certificate": CERT_PEM, "key": KEY_PEM} if source == "inline" else {"existingSecret": "ls-cert"}
    docs = render_ok(renderer, helm, "llama-stack", values={"tls": tls})
    server = run_config(docs)["server"]
    assert (server["tls_certfile"], server["tls_keyfile"]) == (f"{KSERVE_TLS}/tls.crt", f"{KSERVE_TLS}/tls.key")
    assert "tls_cafile" not in server, "tls_cafile would make llama-stack demand client certificates"
    deployment = named(docs, "Deployment", "llama-stack")
    main = container(deployment, "llama-stack")
    assert {"name": "tls", "mountPath": KSERVE_TLS, "readOnly": True} in main["volumeMounts"]
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    secrets = [s for s in of_kind(docs, "Secret") if s.get("type") == "kubernetes.io/tls"]
    expected = secrets[0]["metadata"]["name"] if source == "inline" else "ls-cert"
    assert len(secrets) == (1 if source == "inline" else 0), [ref(s) for s in secrets]
    assert volumes["tls"]["secret"]["secretName"] == expected
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert main[probe]["httpGet"]["scheme"] == "HTTPS", f"{probe} would probe HTTPS with plain HTTP"
    (service,) = of_kind(docs, "Service")
    assert service["spec"]["ports"][0]["appProtocol"] == "https"
    leaks = [ref(d) for d in docs if d.get("kind") != "Secret" and "not-a-real-key" in json.dumps(d)]
    assert not leaks, f"the TLS key outside Secrets: {leaks}"


def test_without_tls_llama_stack_serves_plain_http(helm: HelmBinary, renderer: Renderer) -> None:
    docs = render_ok(renderer, helm, "llama-stack", values={})
    assert "tls_certfile" not in run_config(docs)["server"]
    main = container(named(docs, "Deployment", "llama-stack"), "llama-stack")
    assert main["readinessProbe"]["httpGet"]["scheme"] == "HTTP"
    assert not [m for m in main["volumeMounts"] if m["mountPath"] == KSERVE_TLS]


def test_openshift_serving_certificate_is_requested_on_the_service(helm: HelmBinary, renderer: Renderer) -> None:
    docs = render_ok(renderer, helm, "llama-stack", values={"tls": {"enabled": True, "openshiftServingCert": True}})
    (service,) = of_kind(docs, "Service")
    secret = service["metadata"]["annotations"]["service.beta.openshift.io/serving-cert-secret-name"]
    volumes = {v["name"]: v for v in named(docs, "Deployment", "llama-stack")["spec"]["template"]["spec"]["volumes"]}
    assert volumes["tls"]["secret"]["secretName"] == secret
    assert not [s for s in of_kind(docs, "Secret") if s.get("type") == "kubernetes.io/tls"], "the operator owns it"


def test_the_gateway_verifies_llama_stacks_certificate(helm: HelmBinary, renderer: Renderer) -> None:
    docs = render_ok(renderer, helm, "rag", values=BEHIND_TLS)
    cluster = llama_stack_cluster(docs)
    tls = cluster["transport_socket"]["typed_config"]
    assert tls["sni"] == "release-name-llama-stack" or tls["sni"].endswith("-llama-stack"), tls
    validation = (tls.get("common_tls_context") or {}).get("validation_context")
    assert validation, f"the gateway does not verify llama-stack's certificate: {tls}"
    (san,) = validation["match_typed_subject_alt_names"]
    assert san == {"san_type": "DNS", "matcher": {"exact": tls["sni"]}}
    ca_file = validation["trusted_ca"]["filename"]
    gateway = named(docs, "Deployment", "maas-gateway")
    mounts = {m["name"]: m for m in container(gateway, "envoy")["volumeMounts"]}
    assert ca_file == f"{mounts['llama-stack-ca']['mountPath']}/ca.crt"
    volumes = {v["name"]: v for v in gateway["spec"]["template"]["spec"]["volumes"]}
    (ca_map,) = [
        c for c in of_kind(docs, "ConfigMap") if c["metadata"]["name"] == volumes["llama-stack-ca"]["configMap"]["name"]
    ]
    assert ca_map["data"]["ca.crt"] == CA_PEM
    stack_test = of_kind(docs, "Pod")  # the helm test pods
    urls = [
        e["value"]
        for p in stack_test
        for c in p["spec"]["containers"]
        for e in c.get("env", [])
        if e["name"] == "LLAMA_STACK_URL"
    ]
    assert urls and all(u.startswith("https://") for u in urls), urls


def test_the_gateway_verifies_against_the_openshift_service_ca(helm: HelmBinary, renderer: Renderer) -> None:
    values = {"llamaStack": {"enabled": True, "tls": {"enabled": True, "openshiftServiceCA": True}}}
    docs = render_ok(renderer, helm, "maas-gateway", values=values)
    validation = llama_stack_cluster(docs)["transport_socket"]["typed_config"]["common_tls_context"][
        "validation_context"
    ]
    assert validation["trusted_ca"]["filename"].endswith("/service-ca.crt")
    (ca_map,) = [c for c in of_kind(docs, "ConfigMap") if c["metadata"]["name"].endswith("llama-stack-ca")]
    assert ca_map["metadata"]["annotations"] == {"service.beta.openshift.io/inject-cabundle": "true"}
    assert "data" not in ca_map, "the operator fills the bundle"
