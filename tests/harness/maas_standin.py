"""STAND-IN for an external MaaS: a second gateway from this repository's maas-gateway chart.

Why a stand-in: the real MaaS (CI's `maas` lane) is an external HTTPS endpoint that cannot
be reached from these machines. The stand-in renders charts/rag with values/local.yaml and
values/maas-standin.yaml (the gateway and the model server only) and runs it the way the
local target runs charts: real Envoy, envoyproxy/ratelimit and Redis processes, with the
real inference simulator behind them serving several model ids that contain a slash. It has its
own API keys (fresh per run) and serves HTTPS with a certificate signed by a CA generated
here, so clients must trust that CA (or turn verification off) exactly as with a private MaaS.

Where it listens: on the local target, 127.0.0.1. On the kube target, the same program runs
inside the cluster's network namespace (the harness process has entered it) and serves on the
node address, which the pods reach through the CNI bridge: its listener binds every address
of that namespace, which has no link to the machine's network, and its certificate names the
node address. So the MaaS traffic of both targets stays on this machine.

It stands in for the MaaS only: the stack under test, its llama-stack, its registration and
its gateway are the real ones, unchanged.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.certs import Authority
from harness.local import stack
from harness.local.ports import Ports, port_values
from harness.local.state import RunFolder
from harness.maas import MaasSettings
from harness.paths import values_file

RUN_NAME = "maas-standin"
LOOPBACK = "127.0.0.1"
MODELS = ("meta-llama/Llama-3.2-3B-Instruct", "ibm-granite/granite-3.3-8b-instruct")
KEYS_PER_TIER = {"enterprise": 3, "free": 2}
KEYS_FILE = "standin-keys.json"
CA_FILE = "ca.pem"  # public: the bundle clients trust


@dataclass(frozen=True)
class Standin:
    """A running stand-in: its HTTPS endpoint, keys by tier and the CA bundle that verifies it."""

    endpoint: str  # https://<host>:<port>/v1 (host: 127.0.0.1, or the kube node address)
    keys: dict[str, list[str]]
    ca_bundle: Path
    run_dir: Path

    def settings(self, *, tier: str = "enterprise", model: str = MODELS[0]) -> MaasSettings:
        """MaaS settings as a user would give them for this endpoint (CA bundle included)."""
        return MaasSettings(self.endpoint, self.keys[tier][0], model, tier, str(self.ca_bundle))

    @property
    def secrets(self) -> list[str]:
        return [key for keys in self.keys.values() for key in keys]


class StandinMaas:
    """Start, reuse and stop the stand-in (one per run name, like a local stack).

    `host`: the address its clients use, and that its certificate names. On 127.0.0.1 it
    listens on loopback only; on any other address (the kube node's, inside the cluster's
    network namespace) it listens on every address of the current network namespace.
    """

    def __init__(self, run_name: str = RUN_NAME, *, host: str = LOOPBACK) -> None:
        self.run = RunFolder.named(run_name)
        self.host = host

    def running(self) -> Standin | None:
        if not self.run.alive_pids():
            return None
        return self._standin()

    def up(self) -> Standin:
        stack.say(
            "starting the STAND-IN MaaS (maas-gateway chart: Envoy + ratelimit + Redis + llm-d-inference-sim) "
            f"on {self.host}"
        )
        stack.refuse_if_running(self.run)
        self.run.reset([values_file("maas-standin")])
        ports = Ports().fill_free()
        self.run.put("ports", ports.as_dict())
        self.run.put("host", self.host)
        self.run.write_values("ports.yaml", _listen_values(port_values(ports), self.host))
        keys = {
            tier: [f"standin-{tier}-{secrets.token_hex(12)}" for _ in range(n)] for tier, n in KEYS_PER_TIER.items()
        }
        self.run.write_values(KEYS_FILE, keys, secret=True)
        tls = self._issue_certificate()
        # A fixed Redis password per run (a chart-generated one changes on every re-render).
        redis = {"auth": {"password": secrets.token_urlsafe(24)}}
        gateway = {"apiKeys": {"keys": _key_entries(keys)}, "envoy": {"tls": tls}, "redis": redis}
        self.run.write_values("secrets.yaml", {"maas-gateway": gateway}, secret=True)
        stack.up(self.run)
        return self._standin()

    def down(self) -> None:
        stopped = stack.down(self.run)
        stack.say(f"stand-in MaaS: stopped {len(stopped)} processes")

    def _standin(self) -> Standin:
        port = Ports(**self.run.get("ports")).gateway
        host = str(self.run.get("host", LOOPBACK))
        keys = json.loads((self.run.values_dir / KEYS_FILE).read_text())
        return Standin(f"https://{host}:{port}/v1", keys, self.run.root / CA_FILE, self.run.root)

    def _issue_certificate(self) -> dict[str, str]:
        """A CA (written to the run folder as the trust bundle) and a server certificate for
        127.0.0.1, localhost and the stand-in's host, signed by it; returns the chart's envoy.tls
        values (cert + key)."""
        ca = Authority.new("rag-maas stand-in CA")
        served = ca.issue(server_names(self.host))
        (self.run.root / CA_FILE).write_text(ca.pem)
        return {"certificate": served.chain, "key": served.key}


def server_names(host: str) -> list[str]:
    """What the stand-in's certificate names: its host first, then loopback and localhost."""
    return list(dict.fromkeys([host, LOOPBACK, "localhost"]))


def _listen_values(values: dict[str, Any], host: str) -> dict[str, Any]:
    """The chart's port values, plus the listener's bind address when clients come from elsewhere
    than loopback. Every address, not only `host`: the runner probes readiness on 127.0.0.1, and
    the only network that reaches this namespace's other addresses is the cluster's own."""
    if host != LOOPBACK:
        values["maas-gateway"]["envoy"]["listenAddress"] = "0.0.0.0"
    return values


def _key_entries(keys: dict[str, list[str]]) -> list[dict[str, str]]:
    return [
        {"user": f"standin-{tier}-{i:02d}", "tier": tier, "key": key}
        for tier, tier_keys in keys.items()
        for i, key in enumerate(tier_keys, 1)
    ]
