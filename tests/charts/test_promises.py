"""The charts' security and accounting promises (charts/promises.py) hold in the defaults, in
every shipped overlay and in what they render. Flipping a promised default fails here."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from harness.declared import Declared
from harness.paths import CHARTS_DIR

from charts.cases import render_ok
from charts.helm import HelmBinary, Renderer
from charts.layout import CHARTS, UMBRELLA, overlays
from charts.promises import NOT_PROMISES, PROMISE_KEY, PROMISES, Promise, leaf_keys, value_at
from charts.test_no_back_doors import GATEWAY_OVERLAYS, envoy_config

pytestmark = pytest.mark.charts

RATELIMIT_FILTER = "type.googleapis.com/envoy.extensions.filters.http.ratelimit.v3.RateLimit"
# Shipped overlays that change a promised value on purpose: (overlay stem, promise id) -> why.
DEV_KEYS = "a development overlay: the e2e suite's own keys (values/*.yaml are not production values)"
OVERLAY_EXCEPTIONS: dict[tuple[str, str], str] = {
    ("local", "maas-gateway:envoy.rateLimitTimeout"): "every local process shares two cores: 2s keeps end-of-stream "
    "charges from timing out (a slower answer, still failing closed)",
    ("local", "maas-gateway:apiKeys.keys"): DEV_KEYS,
    ("kind", "maas-gateway:apiKeys.keys"): DEV_KEYS,
    ("kind-maas", "llama-stack:auth.enabled"): "the external-MaaS lane deploys no gateway to validate keys, and "
    "llama-stack gets no Route there (port-forward only)",
    ("maas-standin", "maas-gateway:tiers.enterprise.tokens.limit"): "the stand-in MaaS: the stack under test runs "
    "the whole e2e suite through one enterprise key",
    ("maas-standin", "maas-gateway:tiers.enterprise.requests.limit"): "the stand-in MaaS: the stack under test runs "
    "the whole e2e suite through one enterprise key",
}


def chart_values(chart: str) -> dict[str, Any]:
    return yaml.safe_load((CHARTS_DIR / chart / "values.yaml").read_text())


def test_the_promise_list_covers_every_security_and_accounting_key() -> None:
    promised = {p.id for p in PROMISES}
    assert len(promised) == len(PROMISES), "a promise is listed twice"
    found: set[str] = set()
    for chart in CHARTS:
        found |= {f"{chart}:{key}" for key in leaf_keys(chart_values(chart)) if PROMISE_KEY.search(key)}
    unlisted = sorted(found - promised - set(NOT_PROMISES))
    assert not unlisted, f"security or accounting keys with no promise in charts/promises.py: {unlisted}"
    stale = sorted((promised | set(NOT_PROMISES)) - found)
    assert not stale, f"charts/promises.py lists keys that no values.yaml has (or PROMISE_KEY misses): {stale}"


@pytest.mark.parametrize("promise", PROMISES, ids=[p.id for p in PROMISES])
def test_the_chart_default_keeps_its_promise(promise: Promise) -> None:
    actual = value_at(chart_values(promise.chart), promise.key)
    assert actual == promise.value, (
        f"charts/{promise.chart}/values.yaml sets {promise.key}: {actual!r}; the promise is {promise.value!r} "
        f"({promise.why})"
    )


def declared_value(declared: Declared, promise: Promise) -> Any:
    section = declared.values if promise.chart == UMBRELLA else declared.values[promise.chart]
    return value_at(section, promise.key)


@pytest.mark.parametrize("overlay", overlays(), ids=[p.stem for p in overlays()])
def test_every_shipped_overlay_keeps_the_promises(overlay: Path) -> None:
    declared = Declared.from_files([overlay])
    broken = []
    for promise in PROMISES:
        if (overlay.stem, promise.id) in OVERLAY_EXCEPTIONS:
            continue
        actual = declared_value(declared, promise)
        if actual != promise.value:
            broken.append(f"{promise.id} = {actual!r} (promised {promise.value!r}: {promise.why})")
    assert not broken, f"values/{overlay.name} breaks promises: {broken}"


def test_overlay_exceptions_are_still_needed() -> None:
    by_id = {p.id: p for p in PROMISES}
    for (stem, promise_id), _why in OVERLAY_EXCEPTIONS.items():
        declared = Declared.from_files([next(p for p in overlays() if p.stem == stem)])
        assert declared_value(declared, by_id[promise_id]) != by_id[promise_id].value, (
            f"values/{stem}.yaml keeps {promise_id} now: remove its exception"
        )


@pytest.mark.parametrize("overlay", [None, *GATEWAY_OVERLAYS], ids=["defaults", *[p.stem for p in GATEWAY_OVERLAYS]])
def test_the_gateway_renders_fail_closed(helm: HelmBinary, renderer: Renderer, overlay: Path | None) -> None:
    """failureMode closed reaches Envoy: every enforced rate limit filter denies on error."""
    docs = render_ok(renderer, helm, "rag" if overlay else "maas-gateway", overlay=overlay)
    manager = envoy_config(docs)["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
    filters = [f for f in manager["typed_config"]["http_filters"] if f["typed_config"].get("@type") == RATELIMIT_FILTER]
    enforced = [f for f in filters if "filter_enforced" not in f["typed_config"]]
    # The tier's tokens and requests, and with routing by model the model budgets' filters too.
    names = {f["name"] for f in enforced}
    assert {"maas.ratelimit.tokens", "maas.ratelimit.requests"} <= names, (
        f"expected the tokens and requests filters enforced: {[f['name'] for f in filters]}"
    )
    open_ = [f["name"] for f in enforced if f["typed_config"].get("failure_mode_deny") is not True]
    assert not open_, f"these rate limit filters let calls through when the limiter is down: {open_}"
