"""Meta: the reachability tests fail when NetworkPolicy is not enforced.

The break is the lane without its enforcer: kube-router is stopped and its iptables chains
removed, which is what the cluster is like on a CNI that ignores NetworkPolicy (the charts'
policies stay installed, nothing applies them). The tests of test_network_policy then run against
that cluster: Redis (by pod IP and through its Service) and the rate limit gRPC port, which only
policy guards, must fail their tests, while the probe's positive control still passes. The
enforcer is started again before this test ends, and the Redis test must pass again.

Envoy admin and the rate limit debug port are also guarded by their loopback bind addresses (the
chart meta tests break those: tests/meta/test_no_back_doors_detected.py). The second test installs
a gateway alone with both bound to every interface: policy alone must keep them closed, and
without the enforcer their tests must fail. About half a minute and two minutes.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from harness.cluster.deploy import ClusterDeployment
from harness.cluster.runner import SubprocessRunner
from harness.kube.config import CONTEXT
from harness.paths import chart, values_file
from harness.targets.kube import restricted_namespace
from harness.waiting import Waiter, WaitPolicy

from . import test_network_policy as claims
from .network_probe import INTERNALS, Probe

pytestmark = [pytest.mark.kube, pytest.mark.meta]

META_NAMESPACE = "rag-kube-np-meta"
META_RELEASE = "np-meta"
ROLLOUT_TIMEOUT_S = 180  # Envoy, ratelimit and Redis on a busy 2-core machine

GUARDED_BY_POLICY_ONLY = [i for i in INTERNALS if i.component == "redis" or i.values_key[-1] == "grpcPort"]


def test_without_the_enforcer_the_reachability_tests_fail(
    target: Any, release: tuple[str, str], gateway_values: dict[str, Any], probe: Probe, key_pool: Any
) -> None:
    assert len(GUARDED_BY_POLICY_ONLY) == 2, "INTERNALS changed: update this meta test"
    for internal in GUARDED_BY_POLICY_ONLY:  # precondition: the claims hold with the enforcer
        claims.test_gateway_internal_is_unreachable_from_another_pod(probe, release, gateway_values, internal)
    target.cluster.stop_network_policies()
    try:
        for internal in GUARDED_BY_POLICY_ONLY:
            with pytest.raises(AssertionError, match="accepted a connection"):
                claims.test_gateway_internal_is_unreachable_from_another_pod(probe, release, gateway_values, internal)
        with pytest.raises(AssertionError, match="accepted a connection"):
            claims.test_redis_service_is_unreachable_from_another_pod(probe, release, gateway_values)
        claims.test_probe_reaches_the_gateway_api(probe, release, gateway_values, key_pool)
    finally:
        target.cluster.start_network_policies()
    claims.test_redis_service_is_unreachable_from_another_pod(probe, release, gateway_values)


def gateway_chart_open_to_any_bind(dest: Path) -> Path:
    """A copy of charts/maas-gateway whose schema accepts any admin and debug address."""
    copy = dest / "maas-gateway"
    shutil.copytree(chart("maas-gateway"), copy)
    schema_file = copy / "values.schema.json"
    schema = json.loads(schema_file.read_text())
    for section, key in (("envoy", "adminAddress"), ("ratelimit", "debugAddress")):
        field = schema["properties"][section]["properties"][key]
        assert "enum" in field, f"{section}.{key} is no longer limited by an enum: update this meta test"
        del field["enum"]
    schema_file.write_text(json.dumps(schema, indent=2))
    return copy


def test_with_admin_and_debug_on_every_interface_only_policy_keeps_them_closed(
    target: Any, gateway_values: dict[str, Any], tmp_path: Path
) -> None:
    """Envoy admin and the rate limit debug port have two guards: the loopback bind and the
    policies. A gateway installed with both bound to every interface must still refuse the
    probe while the enforcer runs (policy alone holds), and its tests must fail without it.
    (The chart's schema refuses those addresses, so a copy of the chart without that check is
    installed.)"""
    values = tmp_path / "values.yaml"
    overrides = {
        "envoy": {"adminAddress": "0.0.0.0"},
        "ratelimit": {"debugAddress": "0.0.0.0"},
        "apiKeys": {"keys": [{"user": "meta", "tier": "free", "key": "meta-network-policy-01"}]},
    }
    kind = yaml.safe_load(values_file("kind").read_text())["maas-gateway"]
    # Routing by model reads the catalog (global.models), which a gateway installed on its own lacks.
    kind.pop("routing", None)
    values.write_text(yaml.safe_dump({**kind, **overrides}))  # same ports as the session's gateway
    runner = SubprocessRunner()
    restricted_namespace(runner, META_NAMESPACE)
    deployment = ClusterDeployment(
        runner, Waiter(), META_NAMESPACE, CONTEXT, META_RELEASE, chart_dir=gateway_chart_open_to_any_bind(tmp_path),
        rollout_policy=WaitPolicy(timeout=ROLLOUT_TIMEOUT_S, initial=2, cap=10),
    )  # fmt: skip
    release = (META_NAMESPACE, META_RELEASE)
    wide_open = [i for i in INTERNALS if i not in GUARDED_BY_POLICY_ONLY]
    try:
        deployment.install([values])
        deployment.wait()
        probe = Probe.start("network-probe", META_NAMESPACE)
        for internal in wide_open:  # the policies alone keep them closed
            claims.test_gateway_internal_is_unreachable_from_another_pod(probe, release, gateway_values, internal)
        target.cluster.stop_network_policies()
        try:
            for internal in wide_open:
                with pytest.raises(AssertionError, match="accepted a connection"):
                    claims.test_gateway_internal_is_unreachable_from_another_pod(
                        probe, release, gateway_values, internal
                    )
        finally:
            target.cluster.start_network_policies()
    finally:
        deployment.uninstall(delete_namespace=True)
