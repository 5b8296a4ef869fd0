"""What the fault tests need from a target and from the gateway's rendered config.

A target supports faults when it can stop and start one component's real processes (local:
the processes; a cluster target: its pods). The gateway's fault settings are read from the
Envoy config the chart rendered for the running stack, so the tests check the configured
values, whatever overlay set them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from harness.capabilities import Capability
from harness.targets import Target

from .support import Reply, duration_s

RATELIMIT_FILTER = "type.googleapis.com/envoy.extensions.filters.http.ratelimit.v3.RateLimit"
# A component counts as recovered when a request succeeds within this long of its return.
RECOVERY_S = 5.0
# Slack over the rate limit timeout for the 503 (the contract's +100 ms), on top of the
# gateway's own latency measured just before (`normal_latency`): on a busy 2-core machine, the
# kube lane's gateway pod alone takes tens of milliseconds more than the local process.
TIMEOUT_SLACK_S = 0.1
# Calls timed for the gateway's normal latency; the slowest counts.
BASELINE_CALLS = 3


def fault_target(target: Target) -> Target:
    if Capability.FAULTS not in target.capabilities:
        pytest.skip(f"target {target.name!r} cannot stop and start components (no {Capability.FAULTS} capability)")
    return target


@dataclass(frozen=True)
class GatewaySettings:
    fail_closed: bool
    rate_limit_timeout_s: float
    route_timeout_s: float


def gateway_settings(objects: list[dict[str, Any]]) -> GatewaySettings:
    """failureMode, rate limit timeout and route timeout of the rendered Envoy config."""
    for obj in objects:
        text = (obj.get("data") or {}).get("envoy.yaml") if obj.get("kind") == "ConfigMap" else None
        if not text:
            continue
        manager = yaml.safe_load(text)["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
        config = manager["typed_config"]
        enforced = [
            f["typed_config"]
            for f in config["http_filters"]
            if f["typed_config"].get("@type") == RATELIMIT_FILTER and "filter_enforced" not in f["typed_config"]
        ]
        routes = config["route_config"]["virtual_hosts"][0]["routes"]
        return GatewaySettings(
            fail_closed=all(f.get("failure_mode_deny") for f in enforced),
            rate_limit_timeout_s=max(duration_s(f["timeout"]) for f in enforced),
            route_timeout_s=duration_s(routes[-1]["route"]["timeout"]),
        )
    raise LookupError("the rendered stack has no ConfigMap with an envoy.yaml")


def user_override(files: list[Path], chart: str, key: str) -> Path | None:
    """The last of the user's own values files (--values / VALUES) that sets `<chart>.<key>`, if any."""
    found = None
    for path in files:
        values = yaml.safe_load(Path(path).read_text()) or {}
        section = values.get(chart) if isinstance(values, dict) else None
        if isinstance(section, dict) and key in section:
            found = Path(path)
    return found


def timed(call: Callable[[], Reply]) -> tuple[Reply, float]:
    started = time.monotonic()
    reply = call()
    return reply, time.monotonic() - started


def normal_latency(call: Callable[[], Reply]) -> float:
    """The slowest of BASELINE_CALLS successful calls: what the gateway takes with every
    component up, measured in the same test, so a timing bound holds on any target."""
    slowest = 0.0
    for _ in range(BASELINE_CALLS):
        reply, took = timed(call)
        assert reply.status == 200, f"a baseline call failed before the fault: {reply.describe()}"
        slowest = max(slowest, took)
    return slowest


def assert_503_json(reply: Reply, code: str) -> None:
    assert reply.status == 503, f"expected 503, got {reply.describe()}"
    error = reply.body.get("error") if isinstance(reply.body, dict) else None
    assert isinstance(error, dict) and error.get("code") == code and error.get("message"), (
        f"503 without the OpenAI-style error {code!r}: {reply.describe()}"
    )


def recovery_time(call: Callable[[], Reply], ok: Callable[[Reply], bool]) -> float:
    """Seconds until `call` answers `ok`; fails when that takes longer than RECOVERY_S."""
    started = time.monotonic()
    last = None
    while time.monotonic() - started < RECOVERY_S:
        last = call()
        if ok(last):
            return time.monotonic() - started
        time.sleep(0.1)
    raise AssertionError(f"not recovered {RECOVERY_S}s after the process returned: {last and last.describe()}")
