"""maas-gateway model budgets and token weights (`global.models.<key>.limits` and `tokenCost`, with
`routing.byModel`): the rate limit service's config carries one shared per-minute budget per model
limit and a per-user budget per tier limit, the Envoy config has a rate limit filter per model
budget (charged the weighted usage at stream end), the Lua step gets each entry's limits and
weights, Envoy accepts the config, and bad values fail at render or in the schema naming the field."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from charts import requirements
from charts.cases import assert_render_check_refuses, render_ok
from charts.helm import HelmBinary, Renderer
from charts.layout import chart_present
from charts.test_gateway import envoy_validate
from charts.test_gateway_routing import MODELS_JSON, URL, catch_all_route, envoy_of

pytestmark = pytest.mark.charts

CHART = "maas-gateway"
LIMITED = {
    "id": "limited-model",
    "url": URL,
    "limits": {"rpm": 30, "tpm": 3000, "tiers": {"free": {"tpm": 200}, "premium": {"tpm": 900}}},
    "tokenCost": {"input": 0.5, "output": 4},
}
PLAIN = {"id": "plain-model", "url": URL}
VALUES: dict[str, Any] = {"global": {"models": {"limited": LIMITED, "plain": PLAIN}}, "routing": {"byModel": True}}

FILTER_ORDER = [
    "maas.ratelimit.tokens",
    "maas.ratelimit.tier_model_tokens",
    "maas.ratelimit.model_tokens",
    "maas.ratelimit.requests",
    "maas.ratelimit.model_requests",
]


def ratelimit_config(renderer: Renderer, helm: HelmBinary, values: dict[str, Any]) -> dict[str, Any]:
    docs = render_ok(renderer, helm, CHART, values=values)
    maps = [d for d in docs if d and d.get("kind") == "ConfigMap" and d["metadata"]["name"].endswith("-ratelimit")]
    assert len(maps) == 1, f"expected one ratelimit ConfigMap, got {len(maps)}"
    return yaml.safe_load(maps[0]["data"]["config.yaml"])


def budgets(config: dict[str, Any]) -> dict[tuple[str, ...], tuple[str, str, int]]:
    """Descriptor path (kind, model[, tier]) -> (name, unit, limit) of the model budgets."""
    out: dict[tuple[str, ...], tuple[str, str, int]] = {}

    def walk(nodes: list[dict[str, Any]], path: tuple[str, ...]) -> None:
        for node in nodes:
            here = (*path, node.get("value", f"<{node['key']}>"))
            if "rate_limit" in node:
                rl = node["rate_limit"]
                out[path] = (rl["name"], rl["unit"], int(rl["requests_per_unit"]))
            walk(node.get("descriptors") or [], here)

    for top in config["descriptors"]:
        if top["value"].startswith(("model_", "tier_model_")):
            walk(top["descriptors"], (top["value"],))
    return out


def test_each_model_limit_is_a_budget_of_the_rate_limit_service(helm: HelmBinary, renderer: Renderer) -> None:
    found = budgets(ratelimit_config(renderer, helm, VALUES))
    assert found == {
        # Shared by every caller: no user in the descriptor.
        ("model_requests", "limited-model"): ("model_requests", "minute", 30),
        ("model_tokens", "limited-model"): ("model_tokens", "minute", 3000),
        # Per user of the tier.
        ("tier_model_tokens", "limited-model", "free", "<user>"): ("tier_model_tokens", "minute", 200),
        ("tier_model_tokens", "limited-model", "premium", "<user>"): ("tier_model_tokens", "minute", 900),
    }, found


def test_model_budget_filters_run_in_order_and_charge_the_weighted_usage(helm: HelmBinary, renderer: Renderer) -> None:
    text = envoy_of(renderer, helm, VALUES)
    envoy = yaml.safe_load(text)
    hcm = envoy["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    names = [f["name"] for f in hcm["http_filters"] if f["name"] in FILTER_ORDER]
    assert names == FILTER_ORDER, names
    per_route = catch_all_route(envoy)["typed_per_filter_config"]
    shared = per_route["maas.ratelimit.model_tokens"]["rate_limits"]
    keys = [
        a.get("metadata", {}).get("descriptor_key") or a["generic_key"]["descriptor_key"] for a in shared[0]["actions"]
    ]
    assert keys == ["kind", "model", "window"], f"the model's token budget is not shared by all callers: {keys}"
    per_tier = per_route["maas.ratelimit.tier_model_tokens"]["rate_limits"][0]["actions"]
    assert [a.get("metadata", {}).get("descriptor_key") for a in per_tier][1:] == ["model", "tier", "user", "window"]
    for name in ("maas.ratelimit.tokens", "maas.ratelimit.tier_model_tokens", "maas.ratelimit.model_tokens"):
        entries = per_route[name]["rate_limits"]
        assert entries[0]["hits_addend"] == {"number": 0}, f"{name}: the check before the call counts"
        assert entries[1]["apply_on_stream_done"] is True, name
        assert entries[1]["hits_addend"] == {"format": "%DYNAMIC_METADATA(maas.usage:charged)%"}, name
    found = MODELS_JSON.search(text)
    assert found
    table = json.loads(found.group(1))
    assert table["limited-model"]["limits"] == LIMITED["limits"]
    assert table["limited-model"]["cost"] == {"input": 0.5, "output": 4}
    assert table["plain-model"]["cost"] == {"input": 1, "output": 1} and "limits" not in table["plain-model"]


def test_without_routing_there_are_no_model_budgets(helm: HelmBinary, renderer: Renderer) -> None:
    values = {"global": {"models": {"plain": PLAIN}}}
    assert budgets(ratelimit_config(renderer, helm, values)) == {}
    text = envoy_of(renderer, helm, values)
    assert "maas.ratelimit.model_tokens" not in text and "maas.ratelimit.model_requests" not in text


def test_envoy_accepts_the_config_with_model_budgets(helm: HelmBinary, renderer: Renderer, tmp_path: Path) -> None:
    envoy = requirements.envoy()
    for values, chart in (
        (VALUES, CHART),
        ({"global": VALUES["global"], CHART: {"routing": VALUES["routing"]}}, "rag"),
    ):
        chart_present(chart)
        result = envoy_validate(envoy, envoy_of(renderer, helm, values, chart), tmp_path)
        assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]


def with_limited(**changes: Any) -> dict[str, Any]:
    return {**VALUES, "global": {"models": {"limited": {**LIMITED, **changes}}}}


def without(field: str) -> dict[str, Any]:
    return {k: v for k, v in LIMITED.items() if k != field}


REFUSALS = [
    # (id, chart, bad, good, field, hint)
    (
        "per-tier-limit-of-no-tier",
        CHART,
        with_limited(limits={"tiers": {"gold": {"tpm": 5}}}),
        with_limited(limits={"tiers": {"free": {"tpm": 5}}}),
        "global.models.limited.limits.tiers.gold",
        "name one of them or add it under tiers",
    ),
    (
        "per-tier-limit-of-no-tier-umbrella",
        "rag",
        {
            "global": {"models": {"limited": {**LIMITED, "limits": {"tiers": {"gold": {"tpm": 5}}}}}},
            CHART: {"routing": {"byModel": True}},
        },
        {
            "global": {"models": {"limited": {**LIMITED, "limits": {"tiers": {"free": {"tpm": 5}}}}}},
            CHART: {"routing": {"byModel": True}},
        },
        "global.models.limited.limits.tiers.gold",
        "name one of them or add it under tiers",
    ),
    (
        "limits-unenforced",
        CHART,
        {"global": {"models": {"limited": without("tokenCost")}}},
        {"global": {"models": {"limited": without("tokenCost")}}, "routing": {"byModel": True}},
        "global.models.limited.limits",
        "routing.byModel: true",
    ),
    (
        "limits-of-an-external-model",
        CHART,
        with_limited(external=True),
        with_limited(),
        "global.models.limited.limits",
        "remove limits or external",
    ),
    (
        "token-cost-unenforced",
        CHART,
        {"global": {"models": {"limited": without("limits")}}},
        {"global": {"models": {"limited": without("limits")}}, "routing": {"byModel": True}},
        "global.models.limited.tokenCost",
        "routing.byModel: true",
    ),
]


@pytest.mark.parametrize(("id_", "chart", "bad", "good", "field", "hint"), REFUSALS, ids=[r[0] for r in REFUSALS])
def test_bad_model_limits_fail_at_render_naming_the_field(
    helm: HelmBinary,
    renderer: Renderer,
    id_: str,
    chart: str,
    bad: dict[str, Any],
    good: dict[str, Any],
    field: str,
    hint: str,
) -> None:
    assert_render_check_refuses(renderer, helm, chart, bad, good, field, hint)


SCHEMA_REJECTIONS = [
    # (id, bad, good, field): the gateway chart's own schema, rendered alone.
    ("negative-tpm", with_limited(limits={"tpm": -1}), with_limited(limits={"tpm": 1}), "tpm"),
    ("zero-rpm", with_limited(limits={"rpm": 0}), with_limited(limits={"rpm": 1}), "rpm"),
    (
        "zero-per-tier-tpm",
        with_limited(limits={"tiers": {"free": {"tpm": 0}}}),
        with_limited(limits={"tiers": {"free": {"tpm": 1}}}),
        "tpm",
    ),
    ("zero-output-weight", with_limited(tokenCost={"output": 0}), with_limited(tokenCost={"output": 2}), "output"),
    ("negative-input-weight", with_limited(tokenCost={"input": -2}), with_limited(tokenCost={"input": 2}), "input"),
]


@pytest.mark.parametrize(("id_", "bad", "good", "field"), SCHEMA_REJECTIONS, ids=[r[0] for r in SCHEMA_REJECTIONS])
def test_schema_rejects_bad_model_limits_naming_the_field(
    helm: HelmBinary, renderer: Renderer, id_: str, bad: dict[str, Any], good: dict[str, Any], field: str
) -> None:
    ok = renderer.template(helm, CHART, values=good)
    assert ok.ok, f"control render (field fixed) must pass:\n{ok.describe()}"
    refused = renderer.template(helm, CHART, values=bad)
    assert not refused.ok, f"helm accepted the bad value of {field!r}"
    assert "schema" in refused.stderr.lower(), f"rejected, but not by values.schema.json:\n{refused.stderr}"
    assert re.search(rf"\b{re.escape(field)}\b", refused.stderr), (
        f"the error does not name {field!r}:\n{refused.stderr}"
    )
