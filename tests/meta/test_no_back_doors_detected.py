"""Tests of the no-back-doors chart tests: each mechanism is broken in a copy of charts/, and the
tests that claim it must fail against that copy (and pass against the real charts)."""

from __future__ import annotations

from pathlib import Path

import pytest
from charts.helm import HelmBinary
from harness.paths import VALUES_DIR

from charts import helm as helm_mod
from charts import test_no_back_doors as doors
from meta.test_chart_checks_detected import Break, check_break, refusal

pytestmark = [pytest.mark.meta, pytest.mark.charts]

KIND = VALUES_DIR / "kind.yaml"
LS_CONFIG = "llama-stack/templates/configmap.yaml"
BREAKS = {
    "external route accepted without auth": Break(
        "llama-stack/templates/_helpers.tpl",
        "{{- if and $exposed (not .Values.auth.enabled) (not .Values.auth.insecure) }}",
        "{{- if false }}",
        (refusal("route-without-auth"), refusal("route-without-auth-umbrella")),
    ),
    "run config without server.auth": Break(
        LS_CONFIG,
        "{{- if .Values.auth.enabled }}",
        "{{- if false }}",
        (
            doors.test_auth_is_on_by_default,
            lambda h, r: doors.test_llama_stack_asks_the_gateway_about_every_key(h, r, KIND),
        ),
    ),
    "llama-stack holds a model key": Break(
        LS_CONFIG,
        "{{- if or $m.apiToken $m.apiTokenSecretRef }}\n            api_token:",
        "{{- if true }}\n            api_token:",
        (lambda h, r: doors.test_llama_stack_holds_no_model_key_of_its_own(h, r, KIND),),
    ),
    "Envoy admin on every interface": Break(
        "maas-gateway/templates/envoy-configmap.yaml",
        "socket_address: {address: {{ .Values.envoy.adminAddress | quote }}",
        'socket_address: {address: "0.0.0.0"',
        (lambda h, r: doors.test_envoy_admin_listens_on_loopback_and_probes_use_the_health_listener(h, r, None),),
    ),
    "rate limit debug port on every interface": Break(
        "maas-gateway/templates/ratelimit-deployment.yaml",
        "{name: DEBUG_HOST, value: {{ .Values.ratelimit.debugAddress | quote }}}",
        "{name: DEBUG_HOST, value: {{ .Values.ratelimit.bindAddress | quote }}}",
        (lambda h, r: doors.test_ratelimit_debug_port_is_local(h, r, None),),
    ),
    "Redis without a password": Break(
        "maas-gateway/templates/redis-deployment.yaml",
        "{{- if .Values.redis.auth.enabled }}\n        # The config file",
        "{{- if false }}\n        # The config file",
        (lambda h, r: doors.test_redis_requires_a_password_kept_in_a_secret(h, r, KIND),),
    ),
    "NetworkPolicies off by default": Break(
        "maas-gateway/values.yaml",
        "networkPolicy:\n  enabled: true",
        "networkPolicy:\n  enabled: false",
        (lambda h, r: doors.test_network_policies_allow_only_the_flows_each_internal_needs(h, r, None),),
    ),
    "model server open to every pod": Break(
        "rag/templates/networkpolicies.yaml",
        "{{- if $values.enabled }}",
        "{{- if false }}",
        (lambda h, r: doors.test_back_ends_accept_only_their_client(h, r, KIND),),
    ),
}


@pytest.fixture(scope="module")
def helm4() -> HelmBinary:
    return helm_mod.binary("helm4")


@pytest.mark.parametrize("name", list(BREAKS))
def test_broken_mechanism_fails_its_tests(helm4: HelmBinary, tmp_path: Path, name: str) -> None:
    check_break(helm4, tmp_path, BREAKS[name])
