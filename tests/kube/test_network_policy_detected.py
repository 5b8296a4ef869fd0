"""Meta: the reachability tests fail when NetworkPolicy is not enforced.

The break is the lane without its enforcer: kube-network-policies is stopped and its nftables
table removed, which is what the cluster is like on a CNI that ignores NetworkPolicy (the charts'
policies stay installed, nothing applies them). The tests of test_network_policy then run against
that cluster: Redis (by pod IP and through its Service) and the rate limit gRPC port, which only
policy guards, must fail their tests, while the probe's positive control still passes. The
enforcer is started again before this test ends, and the Redis test must pass again. Envoy admin
and the rate limit debug port are also guarded by their loopback bind addresses, which the chart
meta tests break (tests/meta/test_no_back_doors_detected.py). Takes about half a minute.
"""

from __future__ import annotations

from typing import Any

import pytest

from . import test_network_policy as claims
from .network_probe import INTERNALS, Probe

pytestmark = [pytest.mark.kube, pytest.mark.meta]

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
