"""llama-stack over HTTPS behind the gateway (`llama-stack.tls`, `maas-gateway.llamaStack.tls`).

The module turns TLS on for its own tests: it makes a CA and a certificate for llama-stack here
(`harness.certs`), gives them to the charts' dev-only inline values (`llama-stack.tls.certificate`
/`key`, `maas-gateway.llamaStack.tls.ca`), restarts llama-stack and the gateway, and restores the
deployment's own values afterwards. On a cluster the chart's Secret holds the certificate;
locally the stack mounts the same rendered Secret.

- llama-stack answers HTTPS with that certificate, and no plain HTTP;
- the gateway verifies it (CA and server name) and serves llama-stack's API through its front door;
- with a CA that did not issue it, the gateway answers 503 JSON (`llama_stack_unavailable`) and its
  access log names the TLS failure (`upstream_failure=`).
"""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from cryptography import x509
from harness.certs import Authority, Served
from harness.declared import Declared
from harness.targets import Target

from .faults import assert_503_json, fault_target
from .support import Gateway
from .test_llama_stack_gateway import first_within, listing

pytestmark = [pytest.mark.e2e]

# The name the gateway checks llama-stack's certificate for (SNI and DNS SAN); the certificate
# names loopback too, for this module's direct look at it through a port-forward.
SERVER_NAME = "llama-stack.rag-maas.test"
# Envoy writes its access log in batches; a line shows within this long.
ACCESS_LOG_S = 20.0
# Within this long of the gateway's restart its health check has tried llama-stack once.
HEALTH_S = 15.0


def tls_values(ca: Authority, served: Served, *, gateway_ca: Authority | None = None) -> dict[str, Any]:
    """The rag chart's values that turn TLS on between the gateway and llama-stack."""
    trusted = gateway_ca or ca
    return {
        "llama-stack": {"tls": {"enabled": True, "certificate": served.chain, "key": served.key}},
        "maas-gateway": {"llamaStack": {"tls": {"enabled": True, "serverName": SERVER_NAME, "ca": trusted.pem}}},
    }


class Tls:
    """The module's CA, llama-stack's certificate from it, and the target that runs with them."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self.ca = Authority.new("rag-maas e2e llama-stack CA")
        self.served = self.ca.issue([SERVER_NAME, "localhost", "127.0.0.1"])

    def apply(self, gateway_ca: Authority | None = None, *, restart: tuple[str, ...]) -> None:
        self.target.override_values(tls_values(self.ca, self.served, gateway_ca=gateway_ca), restart=restart)


@pytest.fixture(scope="module")
def tls(target: Target, declared: Declared) -> Iterator[Tls]:
    if not declared.llama_stack_gateway_prefix():
        pytest.skip(
            f"the values ({declared.describe()}) do not put llama-stack behind the gateway "
            "(maas-gateway.llamaStack.enabled)"
        )
    on = Tls(fault_target(target))
    try:  # a start that fails with TLS on is undone too
        on.apply(restart=("llama-stack", "gateway"))
        yield on
    finally:
        target.override_values(None, restart=("llama-stack", "gateway"))


def served_certificate(llama_stack_url: str, ca_pem: str) -> x509.Certificate:
    """The certificate llama-stack presents, from a handshake that verifies it against `ca_pem`
    and SERVER_NAME (the forwarded port is on loopback; the name is what the gateway checks)."""
    where = urlsplit(llama_stack_url)
    context = ssl.create_default_context(cadata=ca_pem)
    address = (where.hostname or "127.0.0.1", where.port or 443)
    with (
        socket.create_connection(address, timeout=10) as raw,
        context.wrap_socket(raw, server_hostname=SERVER_NAME) as conn,
    ):
        der = conn.getpeercert(binary_form=True)
    assert der, "llama-stack presented no certificate"
    return x509.load_der_x509_certificate(der)


def test_llama_stack_serves_https_with_the_certificate_from_its_secret(tls: Tls, llama_stack_url: str) -> None:
    issued = x509.load_pem_x509_certificates(tls.served.chain.encode())[0]
    assert served_certificate(llama_stack_url, tls.ca.pem) == issued, "llama-stack serves another certificate"
    https = urlsplit(llama_stack_url)._replace(scheme="https").geturl()
    health = httpx.get(f"{https}/v1/health", verify=ssl.create_default_context(cadata=tls.ca.pem), timeout=10)
    assert health.status_code == 200, health.text


def test_llama_stack_answers_no_plain_http(tls: Tls, llama_stack_url: str) -> None:
    plain = urlsplit(llama_stack_url)._replace(scheme="http").geturl()
    try:
        answer = httpx.get(f"{plain}/v1/health", timeout=10)
    except httpx.TransportError:
        return  # no HTTP answer at all
    assert answer.status_code != 200, f"llama-stack answered plain HTTP: {answer.status_code} {answer.text[:200]}"


def test_the_gateway_verifies_llama_stack_and_serves_it(
    tls: Tls, gateway: Gateway, declared: Declared, key_pool
) -> None:
    reply = listing(gateway, declared.llama_stack_gateway_prefix(), key_pool.shared("premium"))
    assert reply.status == 200, reply.describe()
    assert reply.body.get("data"), f"llama-stack's listing through the gateway is empty: {reply.describe()}"


def test_a_certificate_the_gateways_ca_did_not_issue_is_503_json_and_logged(
    tls: Tls, gateway: Gateway, declared: Declared, key_pool
) -> None:
    """Last in the module: it gives the gateway another CA, then restores the right one."""
    prefix, key = declared.llama_stack_gateway_prefix(), key_pool.shared("premium")
    tls.apply(Authority.new("rag-maas e2e unrelated CA"), restart=("gateway",))
    try:
        reply, _ = first_within(lambda: listing(gateway, prefix, key), lambda r: r.status != 200, HEALTH_S)
        assert_503_json(reply, "llama_stack_unavailable")
        deadline = time.monotonic() + ACCESS_LOG_S
        while not (failures := tls_failures(tls.target.component_log("gateway"))) and time.monotonic() < deadline:
            time.sleep(1)
        assert failures, "the gateway's access log names no TLS failure (upstream_failure=) for the refused calls"
        assert any("CERTIFICATE_VERIFY_FAILED" in line for line in failures), failures[-3:]
    finally:
        tls.apply(restart=("gateway",))
    assert listing(gateway, prefix, key).status == 200, "the gateway does not serve llama-stack with its CA back"


def tls_failures(log: str) -> list[str]:
    """The access log lines of calls whose upstream connection failed its TLS handshake (no keys:
    the format logs user and tier, never the key)."""
    return [
        line[line.index("upstream_failure=") :]
        for line in log.splitlines()
        if "upstream_failure=" in line and "upstream_failure=-" not in line and "TLS" in line
    ]
