"""The security and accounting promises of the charts' defaults, in one place.

A promise is a default that users rely on without setting it: the gateway fails closed, keys
are checked, the tiers have the documented budgets, pods run restricted, no secret ships in the
defaults. Each entry pins the promised value independently of values.yaml, so flipping the
default fails `test_promises.py`; the shipped overlays (values/*.yaml) must keep every promise
too. `PROMISE_KEY` says which keys of charts/*/values.yaml are security or accounting keys: each
one is either a promise here or listed in NOT_PROMISES with the reason.

Keys are dotted paths inside one chart's values.yaml (subchart keys as the subchart sees them).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

# Security or accounting keys (dotted paths inside a chart's values.yaml).
PROMISE_KEY = re.compile(
    r"(^|\.)(failureMode|tlsVerify|insecure|adminAddress|debugAddress|rateLimitTimeout|defaultMaxTokens"
    r"|runAsNonRoot|allowPrivilegeEscalation|readOnlyRootFilesystem|password|value|key|certificate)$"
    r"|(^|\.)auth\.enabled$|(^|\.)networkPolicy\.enabled$|capabilities\.drop$|seccompProfile\.type$"
    r"|^tiers\.|(^|\.)apiKeys\.keys$"
)


@dataclass(frozen=True)
class Promise:
    chart: str
    key: str
    value: Any
    why: str

    @property
    def id(self) -> str:
        return f"{self.chart}:{self.key}"


def _restricted(chart: str, prefix: str, *, read_only_root: bool = True, pod_non_root: bool = True) -> list[Promise]:
    """The PodSecurity `restricted` settings of one component's pod and container."""
    p = f"{prefix}." if prefix else ""
    why = "PodSecurity restricted"
    out = [
        Promise(chart, f"{p}securityContext.allowPrivilegeEscalation", False, why),
        Promise(chart, f"{p}securityContext.capabilities.drop", ["ALL"], why),
    ]
    if pod_non_root:
        out += [
            Promise(chart, f"{p}podSecurityContext.runAsNonRoot", True, why),
            Promise(chart, f"{p}podSecurityContext.seccompProfile.type", "RuntimeDefault", why),
        ]
    if read_only_root:
        out.append(Promise(chart, f"{p}securityContext.readOnlyRootFilesystem", True, "read-only root filesystem"))
    return out


TIER_BUDGETS = {
    "free": {"tokens": (200, "1m"), "requests": (5, "2m")},
    "premium": {"tokens": (1000, "1m"), "requests": (20, "2m")},
    "enterprise": {"tokens": (5000, "1m"), "requests": (100, "2m")},
}

PROMISES: list[Promise] = [
    # maas-gateway: accounting
    Promise("maas-gateway", "failureMode", "closed", "limiter unreachable: refuse (503), never pass unchecked"),
    Promise("maas-gateway", "envoy.rateLimitTimeout", "500ms", "Envoy's own 20 ms fails open under load"),
    Promise("maas-gateway", "accounting.defaultMaxTokens", 4096, "an aborted stream without max_tokens is charged"),
    *(
        Promise("maas-gateway", f"tiers.{tier}.{kind}.{field}", value, "the documented tier budgets")
        for tier, kinds in TIER_BUDGETS.items()
        for kind, (limit, window) in kinds.items()
        for field, value in (("limit", limit), ("window", window))
    ),
    # maas-gateway: security
    Promise("maas-gateway", "apiKeys.keys", [], "no key ships in the defaults"),
    Promise("maas-gateway", "upstream.tlsVerify", True, "the model server's certificate is verified"),
    Promise("maas-gateway", "envoy.adminAddress", "127.0.0.1", "Envoy's admin API stays on the pod's loopback"),
    Promise("maas-gateway", "ratelimit.debugAddress", "127.0.0.1", "the limiter's debug port stays on loopback"),
    Promise("maas-gateway", "redis.auth.enabled", True, "the counters (every user's budget) need a password"),
    Promise("maas-gateway", "redis.auth.password", "", "no password ships in the defaults"),
    Promise("maas-gateway", "envoy.tls.key", "", "no private key ships in the defaults"),
    Promise("maas-gateway", "envoy.tls.certificate", "", "no certificate ships in the defaults"),
    Promise("maas-gateway", "networkPolicy.enabled", True, "Redis and the limiter accept only their callers"),
    *_restricted("maas-gateway", "envoy"),
    *_restricted("maas-gateway", "ratelimit"),
    *_restricted("maas-gateway", "redis"),
    Promise("maas-gateway", "tests.podSecurityContext.runAsNonRoot", True, "PodSecurity restricted"),
    Promise("maas-gateway", "tests.podSecurityContext.seccompProfile.type", "RuntimeDefault", "PodSecurity restricted"),
    # llama-stack
    Promise("llama-stack", "auth.enabled", True, "every API call is checked against the gateway's keys"),
    Promise("llama-stack", "auth.insecure", False, "no external route without auth"),
    Promise("llama-stack", "server.insecure", False, "OGX serves HTTPS only unless told otherwise"),
    Promise("llama-stack", "tls.key", "", "no private key ships in the defaults"),
    Promise("llama-stack", "tls.certificate", "", "no certificate ships in the defaults"),
    *_restricted("llama-stack", "", read_only_root=False),
    Promise("llama-stack", "securityContext.runAsNonRoot", True, "PodSecurity restricted"),
    Promise("llama-stack", "securityContext.seccompProfile.type", "RuntimeDefault", "PodSecurity restricted"),
    # vllm-gpu
    Promise("vllm-gpu", "hfToken.value", "", "no Hugging Face token ships in the defaults"),
    *_restricted("vllm-gpu", "", read_only_root=False),
    Promise("vllm-gpu", "securityContext.runAsNonRoot", True, "PodSecurity restricted"),
    Promise("vllm-gpu", "securityContext.seccompProfile.type", "RuntimeDefault", "PodSecurity restricted"),
    # rag (umbrella)
    Promise("rag", "pgvector.auth.password", "", "no database password ships in the defaults"),
    Promise("rag", "networkPolicy.enabled", True, "pgvector accepts only llama-stack"),
    Promise("rag", "podSecurityContext.runAsNonRoot", True, "PodSecurity restricted"),
    Promise("rag", "podSecurityContext.seccompProfile.type", "RuntimeDefault", "PodSecurity restricted"),
    Promise("rag", "containerSecurityContext.allowPrivilegeEscalation", False, "PodSecurity restricted"),
    Promise("rag", "containerSecurityContext.capabilities.drop", ["ALL"], "PodSecurity restricted"),
]

# Keys PROMISE_KEY matches that are not promises, and why.
NOT_PROMISES: dict[str, str] = {
    "llama-stack:embeddings.apiKeySecretRef.key": "a Secret's data key name, not a secret",
    "llama-stack:vectorStore.pgvector.passwordSecretRef.key": "a Secret's data key name, not a secret",
    "llama-stack:test.apiKeySecretRef.key": "a Secret's data key name, not a secret",
    "vllm-gpu:hfToken.secretRef.key": "a Secret's data key name, not a secret",
    "maas-gateway:llamaStack.tls.caConfigMap.key": "a ConfigMap's data key name, not a secret",
    "rag:containerSecurityContext.readOnlyRootFilesystem": "pgvector and the embeddings server write to their root "
    "filesystem (false is the honest default; restricted does not require it)",
}


def value_at(values: dict[str, Any], key: str) -> Any:
    """The value at a dotted path (KeyError when a part is missing)."""
    node: Any = values
    for part in key.split("."):
        node = node[part]
    return node


def leaf_keys(values: Any, prefix: str = "") -> list[str]:
    """Every dotted path to a non-mapping value (an empty mapping counts as a value)."""
    if isinstance(values, dict) and values:
        out: list[str] = []
        for k, v in values.items():
            out += leaf_keys(v, f"{prefix}{k}.")
        return out
    return [prefix.rstrip(".")]
