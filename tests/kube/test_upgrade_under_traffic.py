"""`helm upgrade` under steady chat traffic: no failed request, a new tier limit, a second model.

A client thread sends a chat request through the gateway's Service IP every INTERVAL_S, with
the tier's shared key (the e2e suite spends the fresh ones); the tier's request limit may run out
during the test, which the 429 rule below explains (the
test process runs inside the cluster's network namespace, so kube-proxy balances across the
ready gateway pods exactly as for an in-cluster client; a port-forward would pin one pod).
Meanwhile `helm upgrade` raises the enterprise tier's token limit and adds a second model to
`global.models`. Every response must be a 200, or a 429 the limits explain (OpenAI-style
`rate_limit_exceeded` with Retry-After). Afterwards the headers show the new limit and
llama-stack lists the new model. The release is upgraded back to its values at the end.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import httpx
import pytest
from harness.cluster import plans
from harness.cluster.deploy import ClusterDeployment
from harness.declared import Declared
from harness.http import list_models
from harness.registration import listed_id

from .support import kubectl_json

pytestmark = [pytest.mark.kube, pytest.mark.chat, pytest.mark.ratelimit]

TIER = "enterprise"
NEW_TOKEN_LIMIT = 7000  # values/kind.yaml: 5000
EXTRA_MODEL_KEY = "maas-upgrade"
INTERVAL_S = 0.3  # dense enough that a pod switch without a drain (about 1 s) is always hit
AFTER_ROLLOUT_S = 20.0  # traffic continues this long after every rollout reported ready
SETTLE_S = 60.0  # after the rollout: how long the new limit and model may take to show


@dataclass
class Traffic:
    """Steady chat requests from a thread; every outcome is recorded."""

    url: str
    key: str
    model: str
    outcomes: list[tuple[float, int, str, httpx.Headers | None]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        body = {"model": self.model, "messages": [{"role": "user", "content": "steady"}], "max_tokens": 5}
        headers = {"Authorization": f"Bearer {self.key}"}
        # No keep-alive: each request opens a connection, so kube-proxy picks a ready pod each time.
        with httpx.Client(timeout=30, limits=httpx.Limits(max_keepalive_connections=0)) as http:
            while not self.stop.is_set():
                at = time.monotonic()
                try:
                    response = http.post(f"{self.url}/v1/chat/completions", json=body, headers=headers)
                    self.outcomes.append((at, response.status_code, response.text[:300], response.headers))
                except httpx.HTTPError as error:
                    self.outcomes.append((at, 0, f"{type(error).__name__}: {error}", None))
                self.stop.wait(INTERVAL_S)

    def unexplained(self) -> list[str]:
        bad = []
        for at, code, text, headers in self.outcomes:
            explained_429 = (
                code == 429 and headers is not None and headers.get("retry-after", "").isdigit()
                and "rate_limit_exceeded" in text
            )  # fmt: skip
            if code != 200 and not explained_429:
                bad.append(f"t={at:.1f} status={code} {text[:160]}")
        return bad


def gateway_service_url(namespace: str, release: str) -> str:
    selector = f"app.kubernetes.io/instance={release},app.kubernetes.io/component=gateway"
    (svc,) = kubectl_json("get", "services", "-n", namespace, "-l", selector)["items"]
    port = next((p for p in svc["spec"]["ports"] if p.get("name") == "http"), svc["spec"]["ports"][0])
    return f"http://{svc['spec']['clusterIP']}:{port['port']}"


def upgrade(deployment: ClusterDeployment, values: list) -> None:
    argv = plans.helm_upgrade_install(deployment.release, deployment.chart_dir, deployment.namespace, values,
                                      deployment.context)  # fmt: skip
    deployment.runner.run(argv)
    deployment.wait()


def test_upgrade_under_traffic_changes_limit_and_adds_model(target, endpoints, key_pool, gateway_model) -> None:
    deployment = target.deployment()
    base = target.values()
    maas = dict(target_models(target)["maas"])
    # The same server model under a public id of its own: the chart refuses two entries with one id.
    # A gateway that relays every call to its one server knows no public ids: llama-stack then calls
    # it by the served name, as it calls a model outside the stack (`external`).
    served = maas.get("upstreamModel") or maas["id"]
    relays = not Declared.from_files(target.values()).routed_models()
    added = {**maas, "id": EXTRA_MODEL_KEY, "upstreamModel": served, "enabled": True, "external": relays}
    extra = {"global": {"models": {EXTRA_MODEL_KEY: added}}}
    limits = {"maas-gateway": {"tiers": {TIER: {"tokens": {"limit": NEW_TOKEN_LIMIT, "window": "1m"}}}}}
    overlay = deployment.private_values("upgrade.yaml", extra | limits)  # 0600: the entry carries an apiToken
    traffic = Traffic(
        gateway_service_url(deployment.namespace, deployment.release), key_pool.shared(TIER), gateway_model
    )
    thread = threading.Thread(target=traffic.run, daemon=True)
    thread.start()
    try:
        time.sleep(5 * INTERVAL_S)  # some traffic before the upgrade starts
        upgrade(deployment, [*base, overlay])
        rolled = time.monotonic()
        # Keep the traffic going: old pods drain after the rollout, and the new limit must show.
        while time.monotonic() - rolled < SETTLE_S and (
            not _new_limit_seen(traffic) or time.monotonic() - rolled < AFTER_ROLLOUT_S
        ):
            time.sleep(INTERVAL_S)
    finally:
        traffic.stop.set()
        thread.join(timeout=60)
    try:
        assert len(traffic.outcomes) >= 10, f"too little traffic: {len(traffic.outcomes)} requests"
        assert traffic.unexplained() == [], f"{len(traffic.outcomes)} requests; failures during the upgrade"
        assert _new_limit_seen(traffic), f"no response carried x-ratelimit-limit-tokens: {NEW_TOKEN_LIMIT}"
        wanted = listed_id(EXTRA_MODEL_KEY, added)
        deadline = time.monotonic() + SETTLE_S
        while wanted not in (listed := _models(endpoints.llama_stack_url)) and time.monotonic() < deadline:
            time.sleep(2)
        assert wanted in listed, f"llama-stack lists {sorted(listed)}, not {wanted}"
    finally:
        upgrade(deployment, base)


def _new_limit_seen(traffic: Traffic) -> bool:
    return any(
        headers is not None and _first(headers.get("x-ratelimit-limit-tokens", "")) == str(NEW_TOKEN_LIMIT)
        for _, _, _, headers in traffic.outcomes
    )


def _first(value: str) -> str:
    """`7000, 7000;w=60` -> `7000` (the IETF RateLimit header form the gateway sends)."""
    return value.split(",")[0].split(";")[0].strip()


def _models(llama_stack_url: str) -> list[str]:
    """llama-stack's models; [] while its pod restarts and the port-forward reconnects."""
    try:
        return list_models(llama_stack_url)
    except (LookupError, OSError, httpx.HTTPError):
        return []


def target_models(target) -> dict:
    from harness.registration import base_models

    return base_models(target.name, target.options.values)
