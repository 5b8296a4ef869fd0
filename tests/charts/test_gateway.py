"""Acceptance 6 and 7: maas-gateway. Standalone: the rendered Envoy config passes the real
`envoy --mode validate`; the ratelimit config carries the tier limits from values and follows a
change. Kuadrant: the policies carry the same tiers, limits and windows as standalone."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from charts import limits, requirements
from charts.cases import CASES, render_ok
from charts.helm import HelmBinary, Renderer
from charts.limits import Limit, Tiers
from charts.manifests import Obj, config_map_files, of_kind, ref, secret_values

pytestmark = pytest.mark.charts

CHART = "maas-gateway"
# DESIGN.md gateway contract: tokens per minute, requests per 2 minutes.
CONTRACT: Tiers = {
    "free": {"tokens": Limit(200, 60), "requests": Limit(5, 120)},
    "premium": {"tokens": Limit(1000, 60), "requests": Limit(20, 120)},
    "enterprise": {"tokens": Limit(5000, 60), "requests": Limit(100, 120)},
}
CHANGED_VALUES: dict[str, Any] = {
    "tiers": {
        "premium": {"tokens": {"limit": 1234, "window": "1m"}},
        "free": {"requests": {"limit": 7, "window": "5m"}},
    }
}
CHANGED: Tiers = {
    **CONTRACT,
    "premium": {**CONTRACT["premium"], "tokens": Limit(1234, 60)},
    "free": {**CONTRACT["free"], "requests": Limit(7, 300)},
}
VALUE_SETS = {"defaults": ({}, CONTRACT), "changed": (CHANGED_VALUES, CHANGED)}
GW_KEY = "sk-ci-gateway-key-5d8e2b71"
KEYS_VALUES = {"apiKeys": {"keys": [{"user": "ci-user", "tier": "premium", "key": GW_KEY}]}}
KUADRANT_KINDS = {
    "HTTPRoute": "gateway.networking.k8s.io/v1",
    "AuthPolicy": "kuadrant.io/v1",
    "RateLimitPolicy": "kuadrant.io/v1",
    "TokenRateLimitPolicy": "kuadrant.io/v1alpha1",
}


def standalone_configs(renderer: Renderer, helm: HelmBinary, values: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """(ratelimit config, envoy.yaml) of a standalone render."""
    docs = render_ok(renderer, helm, CHART, values={**values, "mode": "standalone"})
    try:
        _, config = limits.ratelimit_config(docs)
    except LookupError as error:
        pytest.fail(str(error), pytrace=False)
    envoy = envoy_configs(docs)
    assert len(envoy) == 1, f"expected one envoy.yaml ConfigMap, got {sorted(envoy)}"
    return config, next(iter(envoy.values()))


def standalone(renderer: Renderer, helm: HelmBinary, values: dict[str, Any]) -> Tiers:
    config, envoy = standalone_configs(renderer, helm, values)
    return limits.standalone_tiers(config, set(CONTRACT), limits.lua_windows(envoy))


@pytest.mark.parametrize("name", VALUE_SETS)
def test_ratelimit_counters_outlive_their_window(helm: HelmBinary, renderer: Renderer, name: str) -> None:
    """A counter whose unit is shorter than the tier window would reset mid-window."""
    values, expected = VALUE_SETS[name]
    config, envoy = standalone_configs(renderer, helm, values)
    windows = limits.lua_windows(envoy)
    leaves = list(limits.ratelimit_leaves(config, set(CONTRACT)))
    assert {(t, k) for t, k, _ in leaves} == {(t, k) for t in expected for k in expected[t]}
    for tier, kind, rate in leaves:
        window = windows.get(tier, {}).get(kind, expected[tier][kind].seconds)
        assert limits.bucket_seconds(rate) >= window, f"{tier}/{kind}: counter unit {rate} shorter than {window}s"


@pytest.mark.parametrize("name", VALUE_SETS)
def test_standalone_ratelimit_carries_tier_limits(helm: HelmBinary, renderer: Renderer, name: str) -> None:
    values, expected = VALUE_SETS[name]
    assert standalone(renderer, helm, values) == expected


def test_changing_a_tier_limit_changes_only_that_limit(helm: HelmBinary, renderer: Renderer) -> None:
    before = standalone(renderer, helm, {})
    after = standalone(renderer, helm, CHANGED_VALUES)
    changed = {(t, k) for t in before for k in before[t] if before[t][k] != after.get(t, {}).get(k)}
    assert changed == {("premium", "tokens"), ("free", "requests")}, f"before {before}\nafter {after}"


@pytest.mark.parametrize("name", VALUE_SETS)
def test_kuadrant_policies_match_standalone(helm: HelmBinary, renderer: Renderer, name: str) -> None:
    values, expected = VALUE_SETS[name]
    docs = render_ok(renderer, helm, CHART, values={**values, "mode": "kuadrant"})
    kuadrant = limits.kuadrant_tiers(docs, set(CONTRACT))
    assert kuadrant == standalone(renderer, helm, values)
    assert kuadrant == expected


def test_kuadrant_renders_gateway_api_and_policies(helm: HelmBinary, renderer: Renderer) -> None:
    docs = render_ok(renderer, helm, CHART, values={"mode": "kuadrant"})
    for kind, api_version in KUADRANT_KINDS.items():
        found = of_kind(docs, kind)
        assert found, f"kuadrant mode renders no {kind}"
        assert {d["apiVersion"] for d in found} == {api_version}, f"{kind} must be {api_version}"
    routes = {r["metadata"]["name"] for r in of_kind(docs, "HTTPRoute")}
    for kind in ("AuthPolicy", "RateLimitPolicy", "TokenRateLimitPolicy"):
        for policy in of_kind(docs, kind):
            target = policy["spec"]["targetRef"]
            assert target["kind"] == "Gateway" or target["name"] in routes, f"{ref(policy)} targets {target}"


def test_standalone_renders_no_kuadrant_objects(helm: HelmBinary, renderer: Renderer) -> None:
    docs = render_ok(renderer, helm, CHART, values={"mode": "standalone"})
    assert not [ref(d) for d in docs if d.get("kind") in KUADRANT_KINDS]
    assert envoy_configs(docs), "standalone mode renders no envoy.yaml ConfigMap"


@pytest.mark.parametrize("mode", ("standalone", "kuadrant"))
def test_api_keys_only_in_secrets(helm: HelmBinary, renderer: Renderer, mode: str) -> None:
    docs = render_ok(renderer, helm, CHART, values={**KEYS_VALUES, "mode": mode})
    assert any(GW_KEY in v for s in of_kind(docs, "Secret") for v in secret_values(s)), "the API key is in no Secret"
    leaks = [ref(d) for d in docs if d.get("kind") != "Secret" and GW_KEY in json.dumps(d)]
    assert not leaks, f"API key outside Secrets: {leaks}"


def envoy_configs(docs: list[Obj]) -> dict[str, str]:
    return {ref(cm): text for cm in of_kind(docs, "ConfigMap") if (text := config_map_files(cm).get("envoy.yaml"))}


_VALIDATED: dict[str, subprocess.CompletedProcess[str]] = {}


def envoy_validate(envoy: Path, text: str, workdir: Path) -> subprocess.CompletedProcess[str]:
    """`envoy --mode validate` once per distinct config."""
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    if digest not in _VALIDATED:
        path = workdir / f"envoy-{digest}.yaml"
        path.write_text(text)
        _VALIDATED[digest] = subprocess.run(
            [str(envoy), "--mode", "validate", "-c", str(path), "--log-level", "warn"],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=workdir,
        )
    return _VALIDATED[digest]


def test_envoy_accepts_every_rendered_config(helm: HelmBinary, renderer: Renderer, tmp_path: Path) -> None:
    """Every envoy.yaml the charts render (gateway defaults, changed tiers, each rag overlay) validates.
    A render that fails is reported here too, without hiding the configs that did render."""
    envoy = requirements.envoy()
    inputs: list[tuple[str, str, Path | None, dict[str, Any] | None]] = [
        ("maas-gateway-changed", CHART, None, CHANGED_VALUES)
    ]
    inputs += [(c.id, c.chart, c.overlay, c.values) for c in CASES if c.chart in (CHART, "rag")]
    failures, configs = [], {}
    for case_id, chart, overlay, values in inputs:
        result = renderer.template(helm, chart, values_files=(overlay,) if overlay else (), values=values)
        if not result.ok:
            failures.append(f"{case_id}: render failed: {result.stderr.strip()[-500:]}")
            continue
        configs.update({f"{case_id} {where}": text for where, text in envoy_configs(result.docs()).items()})
    assert any(k.startswith("maas-gateway-defaults ") for k in configs), "maas-gateway defaults render no envoy.yaml"
    for where, text in configs.items():
        validated = envoy_validate(envoy, text, tmp_path)
        if validated.returncode != 0:
            output = (validated.stdout + validated.stderr)[-3000:]
            failures.append(f"{where}: envoy exit {validated.returncode}\n{output}")
    assert not failures, f"{len(configs)} configs validated; failures:\n" + "\n\n".join(failures)


def test_envoy_validate_rejects_a_broken_config(tmp_path: Path) -> None:
    """The Envoy check is not vacuous: an unknown filter type fails validation."""
    broken = (
        "static_resources:\n  listeners:\n  - name: x\n"
        "    address: {socket_address: {address: 127.0.0.1, port_value: 1}}\n"
        "    filter_chains: [{filters: [{name: bogus, typed_config: {'@type': type.googleapis.com/nope.Nope}}]}]\n"
    )
    assert envoy_validate(requirements.envoy(), broken, tmp_path).returncode != 0


# --- windows: every accepted window resets exactly at its bounds -------------------------------

WINDOW_SCHEMA = Path(__file__).resolve().parents[2] / "charts" / CHART / "values.schema.json"
UNIT_SUFFIX = {"s": 1, "m": 60, "h": 3600}


def accepted_windows() -> dict[str, int]:
    """Every `<n>s|m|h` window (n up to 1440) that values.schema.json accepts, in seconds."""
    pattern = json.loads(WINDOW_SCHEMA.read_text())["definitions"]["budget"]["properties"]["window"]["pattern"]
    return {
        f"{n}{suffix}": n * seconds
        for suffix, seconds in UNIT_SUFFIX.items()
        for n in range(1, 1441)
        if re.fullmatch(pattern, f"{n}{suffix}")
    }


def test_every_accepted_window_gets_counters_that_reset_on_its_bounds(helm: HelmBinary, renderer: Renderer) -> None:
    """The gateway keys a counter by (window index, ratelimit unit bucket); both are epoch-aligned, so
    the counter resets exactly on the window's bounds iff the unit is a multiple of the window."""
    windows = accepted_windows()
    assert {"1m", "2m", "1h", "24h"} <= set(windows), f"the schema refuses ordinary windows: {sorted(windows)}"
    tiers = {
        f"w{name}": {"tokens": {"limit": 9, "window": name}, "requests": {"limit": 3, "window": name}}
        for name in windows
    }
    config, envoy = standalone_configs(renderer, helm, {"tiers": tiers})
    lua = limits.lua_windows(envoy)
    leaves = {(t, k): rate for t, k, rate in limits.ratelimit_leaves(config, set(tiers))}
    problems = []
    for name, seconds in windows.items():
        tier = f"w{name}"
        for kind in ("tokens", "requests"):
            unit = limits.bucket_seconds(leaves[(tier, kind)])
            if lua.get(tier, {}).get(kind) != seconds:
                problems.append(f"{name} {kind}: the gateway buckets by {lua.get(tier, {}).get(kind)}s")
            if unit % seconds:
                problems.append(f"{name} {kind}: ratelimit unit {unit}s splits the window")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("window", ["7s", "45s", "90s", "13m", "90m", "5h", "48h"])
@pytest.mark.parametrize("mode", ["standalone", "kuadrant"])
def test_windows_that_straddle_counter_units_are_refused(
    helm: HelmBinary, renderer: Renderer, window: str, mode: str
) -> None:
    values = {"mode": mode, "tiers": {"free": {"tokens": {"limit": 5, "window": window}}}}
    result = renderer.template(helm, CHART, values=values)
    assert not result.ok, f"a {window} window was accepted in {mode} mode"
    assert "window" in result.stderr, f"the error does not name the field:\n{result.stderr}"
    allowed = ("1", "2", "3", "4", "5", "6", "10", "12", "15", "20", "30", "60")
    assert all(n in result.stderr for n in allowed), f"the error does not list the allowed values:\n{result.stderr}"


# --- usage is reported, identity never reaches the model server --------------------------------


@pytest.mark.parametrize("preset", ["none", "t4", "a100", "h100"])
def test_vllm_forces_usage_in_streams(helm: HelmBinary, renderer: Renderer, preset: str) -> None:
    docs = render_ok(renderer, helm, "vllm-gpu", values={"mode": "gpu", "preset": preset})
    args = [
        a
        for d in of_kind(docs, "Deployment")
        for c in d["spec"]["template"]["spec"]["containers"]
        for a in c.get("args", [])
    ]
    assert "--enable-force-include-usage" in args, f"preset {preset}: vLLM args {args}"


LUA_STRIP = re.compile(r'\["(x-[a-z0-9-]+)"\]\s*=\s*true')


def test_both_modes_strip_the_same_identity_headers(helm: HelmBinary, renderer: Renderer) -> None:
    _, envoy = standalone_configs(renderer, helm, {})
    standalone_names = set(LUA_STRIP.findall(envoy))
    docs = render_ok(renderer, helm, CHART, values={"mode": "kuadrant"})
    (route,) = of_kind(docs, "HTTPRoute")
    removed = {
        name.lower()
        for rule in route["spec"]["rules"]
        for f in rule.get("filters", [])
        if f["type"] == "RequestHeaderModifier"
        for name in f["requestHeaderModifier"].get("remove", [])
    }
    assert "authorization" in removed, f"kuadrant forwards the gateway key to the model server: {removed}"
    assert {"x-maas-user", "x-maas-tier"} <= removed, removed
    assert standalone_names and standalone_names <= removed, f"only standalone strips {standalone_names - removed}"
    (policy,) = of_kind(docs, "AuthPolicy")
    assert not policy["spec"]["rules"].get("response", {}).get("success", {}).get("headers"), (
        "the AuthPolicy forwards caller identity headers to the model server"
    )


TLS_KEY_PEM = "-----BEGIN PRIVATE KEY-----\nnot-a-real-key-4f1c\n-----END PRIVATE KEY-----\n"
TLS_VALUES = {"envoy": {"tls": {"certificate": "-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n",
                                "key": TLS_KEY_PEM}}}  # fmt: skip


@pytest.mark.parametrize("source", ("inline", "existingSecret"))
def test_listener_serves_https_from_a_tls_secret(helm: HelmBinary, renderer: Renderer, source: str) -> None:
    values = TLS_VALUES if source == "inline" else {"envoy": {"tls": {"existingSecret": "gateway-cert"}}}
    docs = render_ok(renderer, helm, CHART, values={**values, "mode": "standalone"})
    (envoy,) = envoy_configs(docs).values()
    assert "DownstreamTlsContext" in envoy and "/etc/envoy-tls/tls.crt" in envoy, "the listener serves no TLS"
    tls_secrets = [s for s in of_kind(docs, "Secret") if s.get("type") == "kubernetes.io/tls"]
    expected = "gateway-cert" if source == "existingSecret" else tls_secrets[0]["metadata"]["name"]
    assert len(tls_secrets) == (1 if source == "inline" else 0), [ref(s) for s in tls_secrets]
    (deployment,) = [d for d in of_kind(docs, "Deployment") if d["metadata"]["name"].endswith("maas-gateway")]
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    assert volumes["tls"]["secret"]["secretName"] == expected
    leaks = [ref(d) for d in docs if d.get("kind") != "Secret" and "not-a-real-key" in json.dumps(d)]
    assert not leaks, f"the TLS key outside Secrets: {leaks}"


def test_listener_is_plain_http_without_tls_values(helm: HelmBinary, renderer: Renderer) -> None:
    docs = render_ok(renderer, helm, CHART, values={"mode": "standalone"})
    (envoy,) = envoy_configs(docs).values()
    assert "DownstreamTlsContext" not in envoy


@pytest.mark.parametrize("enabled", (True, False))
def test_readiness_reports_llama_stack_on_its_own_path(helm: HelmBinary, renderer: Renderer, enabled: bool) -> None:
    """/ready/llama-stack follows the health check of llama-stack; the pod's /ready does not."""
    docs = render_ok(renderer, helm, CHART, values={"mode": "standalone", "llamaStack": {"enabled": enabled}})
    (envoy,) = envoy_configs(docs).values()
    listener = next(x for x in yaml.safe_load(envoy)["static_resources"]["listeners"] if x["name"] == "health")
    manager = listener["filter_chains"][0]["filters"][0]["typed_config"]
    checks = {
        f["typed_config"]["headers"][0]["string_match"]["exact"]: f["typed_config"].get(
            "cluster_min_healthy_percentages"
        )
        for f in manager["http_filters"]
        if f["name"] == "envoy.filters.http.health_check"
    }
    expected = {"/ready": None} | ({"/ready/llama-stack": {"maas_llama_stack": {"value": 100}}} if enabled else {})
    assert checks == expected


def test_each_call_to_llama_stack_gets_its_own_connection(helm: HelmBinary, renderer: Renderer) -> None:
    """llama-stack 0.7.3 closes its connection after a call that raised; a pooled connection reused
    as it closed failed the next caller's call with 503. Model servers keep their pooled connections."""
    docs = render_ok(renderer, helm, CHART, values={"mode": "standalone", "llamaStack": {"enabled": True}})
    (envoy,) = envoy_configs(docs).values()
    per_connection = {
        c["name"]: (
            c.get("typed_extension_protocol_options", {})
            .get("envoy.extensions.upstreams.http.v3.HttpProtocolOptions", {})
            .get("common_http_protocol_options", {})
            .get("max_requests_per_connection")
        )
        for c in yaml.safe_load(envoy)["static_resources"]["clusters"]
    }
    assert per_connection.pop("maas_llama_stack") == 1
    assert set(per_connection.values()) == {None}, per_connection
