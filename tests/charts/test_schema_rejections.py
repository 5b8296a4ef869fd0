"""Acceptance 4: values.schema.json rejects bad values, and helm's message names the field.

Every case has a control: the same values with the offending field fixed must render, so a
rejection can only come from that field."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pytest

from charts.helm import HelmBinary, Renderer
from charts.layout import chart_present

pytestmark = pytest.mark.charts

MODEL = {"id": "m1", "url": "http://maas.example.test/v1", "enabled": True}


def models(**entry: Any) -> dict[str, Any]:
    return {"global": {"models": {"m1": {**MODEL, **entry}}}}


def without_url() -> dict[str, Any]:
    values = models()
    del values["global"]["models"]["m1"]["url"]
    return values


def nest(dotted: str, value: Any) -> dict[str, Any]:
    """`nest("a.b", v)` is `{"a": {"b": v}}`."""
    for key in reversed(dotted.split(".")):
        value = {key: value}
    return value


def tier_limit(limit: int) -> dict[str, Any]:
    return {"tiers": {"free": {"tokens": {"limit": limit, "window": "1m"}}}}


@dataclass(frozen=True)
class Rejection:
    id: str
    chart: str
    bad: dict[str, Any]
    good: dict[str, Any]
    field: str  # the field the message must name


REJECTIONS = [
    Rejection("model-without-url", "llama-stack", without_url(), models(), "url"),
    Rejection("model-without-url-umbrella", "rag", without_url(), models(), "url"),
    Rejection("enabled-not-boolean", "llama-stack", models(enabled="yes"), models(enabled=True), "enabled"),
    Rejection("enabled-not-boolean-umbrella", "rag", models(enabled="yes"), models(enabled=True), "enabled"),
    Rejection("unknown-gateway-mode", "maas-gateway", {"mode": "istio"}, {"mode": "kuadrant"}, "mode"),
    Rejection("negative-limit", "maas-gateway", tier_limit(-5), tier_limit(5), "limit"),
    Rejection(
        "tls-verify-relative-ca-path",
        "llama-stack",
        models(provider="openai", tlsVerify="certs/ca.pem"),
        models(provider="openai", tlsVerify="/etc/pki/maas/ca.pem"),
        "tlsVerify",
    ),
    Rejection(
        "unknown-tei-pooling", "rag", {"embeddings": {"pooling": "max"}}, {"embeddings": {"pooling": "mean"}}, "pooling"
    ),
    Rejection(
        "chunk-size-over-llama-stack-limit",
        "llama-stack",
        {"vectorStore": {"chunkSizeTokens": 4097}, "embeddings": {"enabled": False}},
        {"vectorStore": {"chunkSizeTokens": 4096}, "embeddings": {"enabled": False}},
        "chunkSizeTokens",
    ),
    Rejection(
        "tls-certificate-without-key",
        "maas-gateway",
        {"envoy": {"tls": {"certificate": "PEM"}}},
        {"envoy": {"tls": {"certificate": "PEM", "key": "PEM"}}},
        "key",
    ),
    Rejection(
        "unknown-gpu-preset", "vllm-gpu", {"mode": "gpu", "preset": "v100"}, {"mode": "gpu", "preset": "a100"}, "preset"
    ),
    # Catalog fields of a model entry: each bad value fails naming the field.
    *(
        Rejection(f"catalog-{field}-{label}{suffix}", chart, models(**{field: bad}), models(**{field: good}), field)
        for field, label, bad, good in (
            ("contextLength", "zero", 0, 1),
            ("contextLength", "not-integer", "8k", 8192),
            ("capabilities", "not-list", "chat", ["chat"]),
            ("capabilities", "empty-item", [""], ["chat"]),
            ("supportsStreaming", "not-boolean", "yes", True),
            ("availability", "unknown", "retired", "deprecated"),
            ("displayName", "not-string", 7, "Model 7"),
        )
        for chart, suffix in (("llama-stack", ""), ("rag", "-umbrella"))
    ),
    # Model budgets, token weights and the upstream name: positive numbers, a non-empty name
    # (tests/charts/test_gateway_model_limits.py covers the gateway's own schema and render checks).
    *(
        Rejection(
            f"catalog-{name}{suffix}",
            chart,
            models(**{field: bad}) | enforced,
            models(**{field: good}) | enforced,
            named,
        )
        for name, field, bad, good, named in (
            ("upstreamModel-empty", "upstreamModel", "", "served-name", "upstreamModel"),
            ("limits-negative-tpm", "limits", {"tpm": -5}, {"tpm": 5}, "tpm"),
            ("limits-zero-rpm", "limits", {"rpm": 0}, {"rpm": 1}, "rpm"),
            ("limits-tier-zero-tpm", "limits", {"tiers": {"free": {"tpm": 0}}}, {"tiers": {"free": {"tpm": 9}}}, "tpm"),
            ("limits-typo", "limits", {"tpn": 5}, {"tpm": 5}, "tpn"),
            ("cost-zero-output", "tokenCost", {"output": 0}, {"output": 4}, "output"),
            ("cost-negative-input", "tokenCost", {"input": -1}, {"input": 0.5}, "input"),
        )
        for chart, suffix, enforced in (
            ("llama-stack", "", {}),
            # The umbrella's gateway applies them only when it routes by model (a render check).
            ("rag", "-umbrella", {"maas-gateway": {"routing": {"byModel": True}}}),
        )
    ),
    # Typos in keys the templates read one by one, which would otherwise be dropped silently.
    Rejection(
        "probe-key-typo",
        "llama-stack",
        {"probes": {"readiness": {"periodSecond": 5}}},
        {"probes": {"readiness": {"periodSeconds": 5}}},
        "periodSecond",
    ),
    Rejection(
        "probe-key-the-template-ignores",
        "llama-stack",
        {"probes": {"startup": {"timeoutSeconds": 5}}},
        {"probes": {"startup": {"failureThreshold": 5}}},
        "timeoutSeconds",
    ),
    *(
        Rejection(
            f"resources-key-typo-{where}",
            chart,
            nest(where, {"request": {"cpu": "1"}}),
            nest(where, {"requests": {"cpu": "1"}}),
            "request",
        )
        for chart, where in (
            ("llama-stack", "resources"),
            ("maas-gateway", "redis.resources"),
            ("vllm-gpu", "simulator.resources"),
            ("rag", "pgvector.resources"),
            ("rag", "embeddings.resources"),
            ("rag", "maas-gateway.envoy.resources"),
        )
    ),
]


@pytest.mark.parametrize("case", REJECTIONS, ids=[r.id for r in REJECTIONS])
def test_schema_rejects_with_field_name(helm: HelmBinary, renderer: Renderer, case: Rejection) -> None:
    chart_present(case.chart)
    good = renderer.template(helm, case.chart, values=case.good)
    assert good.ok, f"control render (field fixed) must pass:\n{good.describe()}"
    bad = renderer.template(helm, case.chart, values=case.bad)
    assert not bad.ok, f"helm accepted the bad value of {case.field!r}"
    assert "schema" in bad.stderr.lower(), f"rejected, but not by values.schema.json:\n{bad.stderr}"
    assert re.search(rf"\b{re.escape(case.field)}\b", bad.stderr), (
        f"the error does not name the field {case.field!r}:\n{bad.stderr}"
    )
