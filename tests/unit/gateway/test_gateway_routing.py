"""Routing by model (maas-gateway `routing.byModel`): the body's `model` picks the catalog entry,
its tiers decide who may call it, its cluster serves it, and `/v1/models` lists the caller's
entries with their catalog metadata. Refusals come before any budget is checked."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from .envoy_model import Gateway, Upstream, model_server

pytestmark = pytest.mark.unit

FREE = "k-free"
PREMIUM = "k-premium"

# maas-gateway.routingTable for a catalog of two entries: `open` on the default upstream, `premium`
# (premium and enterprise only) on a cluster of its own, served under another name.
MODELS: dict[str, dict[str, Any]] = {
    "open-model": {
        "cluster": "maas_upstream",
        "served": "open-model",
        "meta": {"displayName": "Open model", "capabilities": ["chat"], "contextLength": 4096},
    },
    "premium-model": {
        "cluster": "maas_model_premium",
        "served": "served-premium",
        "tiers": ["premium", "enterprise"],
        "meta": {"displayName": "Premium model", "availability": "preview"},
    },
}


@pytest.fixture
def routed(make_gateway: Callable[..., Gateway]) -> Gateway:
    return make_gateway(models=MODELS)


def named(name: str, seen: list[tuple[str, dict[str, Any]]]) -> Upstream:
    """A model server that records what it was sent under its own name."""
    inner = model_server()

    def answer(headers: dict[str, str], body: str) -> tuple[int, list[tuple[str, str]], str]:
        seen.append((name, json.loads(body) if body else {}))
        return inner(headers, body)

    return answer


def servers(seen: list[tuple[str, dict[str, Any]]]) -> dict[str, Upstream]:
    return {"maas_upstream": named("default", seen), "maas_model_premium": named("premium", seen)}


def chat(gateway: Gateway, key: str, upstream: Any, **body: Any) -> Any:
    doc = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 8, **body}
    return gateway.call("POST", "/v1/chat/completions", key=key, body=doc, upstream=upstream)


def test_each_model_reaches_its_own_server(routed: Gateway) -> None:
    seen: list[tuple[str, dict[str, Any]]] = []
    for model in ("open-model", "premium-model", "open-model"):
        reply = chat(routed, PREMIUM, servers(seen), model=model)
        assert reply.status == 200, reply.describe()
    assert [name for name, _ in seen] == ["default", "premium", "default"]


def test_upstream_model_replaces_the_public_id(routed: Gateway) -> None:
    seen: list[tuple[str, dict[str, Any]]] = []
    assert chat(routed, PREMIUM, servers(seen), model="premium-model").status == 200
    assert chat(routed, PREMIUM, servers(seen), model="open-model").status == 200
    assert [body["model"] for _, body in seen] == ["served-premium", "open-model"]
    assert seen[0][1]["messages"] == [{"role": "user", "content": "hi"}], "the rest of the body changed"


def test_a_client_cannot_pick_the_cluster(routed: Gateway) -> None:
    seen: list[tuple[str, dict[str, Any]]] = []
    doc = {"model": "open-model", "messages": [], "max_tokens": 8}
    reply = routed.call(
        "POST",
        "/v1/chat/completions",
        key=FREE,
        headers=[("X-MaaS-Cluster", "maas_model_premium")],
        body=doc,
        upstream=servers(seen),
    )
    assert reply.status == 200, reply.describe()
    assert [name for name, _ in seen] == ["default"]


def test_a_call_without_a_model_header_change_still_goes_to_the_default_cluster(routed: Gateway) -> None:
    """Calls the script does not parse (GET) are routed too: cluster_header needs a value."""
    seen: list[tuple[str, dict[str, Any]]] = []
    reply = routed.call("GET", "/v1/files", key=FREE, upstream=servers(seen))
    assert reply.status == 200, reply.describe()
    assert routed.clusters == ["maas_upstream"]


def refusal(reply: Any, status: int, code: str) -> None:
    assert reply.status == status, reply.describe()
    assert reply.header("content-type") == "application/json"
    error = reply.json()["error"]
    assert error["code"] == code and error["message"] and error["type"], reply.describe()


@pytest.mark.parametrize(
    ("key", "body", "status", "code"),
    [
        (FREE, {"model": "premium-model"}, 403, "model_not_allowed"),
        (PREMIUM, {"model": "no-such-model"}, 404, "model_not_found"),
        (FREE, {}, 400, "model_missing"),
        (FREE, {"model": None}, 400, "model_missing"),
        (FREE, {"model": 7}, 400, "invalid_model"),
    ],
    ids=["other-tier-403", "unknown-404", "missing-400", "null-400", "not-string-400"],
)
def test_refusals_come_before_any_budget_or_server(
    routed: Gateway, key: str, body: dict[str, Any], status: int, code: str
) -> None:
    tokens, requests = routed.budget(key), routed.budget(key, "requests")
    seen: list[tuple[str, dict[str, Any]]] = []
    refusal(chat(routed, key, servers(seen), **body), status, code)
    assert seen == [], "the model server was called"
    assert routed.charges == []
    assert (routed.budget(key), routed.budget(key, "requests")) == (tokens, requests)


def test_the_tiers_that_may_use_a_model_reach_it(routed: Gateway) -> None:
    for key in ("k-premium", "k-enterprise"):
        assert chat(routed, key, servers([]), model="premium-model").status == 200


def listed(gateway: Gateway, key: str, path: str = "/v1/models") -> Any:
    upstream = {"maas_upstream": lambda h, b: (200, [("content-type", "application/json")], '{"data": []}')}
    return gateway.call("GET", path, key=key, upstream=upstream)


def test_models_lists_only_the_callers_models_with_their_metadata(routed: Gateway) -> None:
    free = listed(routed, FREE)
    assert free.status == 200, free.describe()
    assert [m["id"] for m in free.json()["data"]] == ["open-model"]
    assert free.json()["data"][0] == {
        "id": "open-model",
        "object": "model",
        "created": 0,
        "owned_by": "maas",
        "displayName": "Open model",
        "capabilities": ["chat"],
        "contextLength": 4096,
    }
    assert int(free.header("content-length") or 0) == len(free.body.encode())
    premium = listed(routed, PREMIUM)
    assert [m["id"] for m in premium.json()["data"]] == ["open-model", "premium-model"]
    assert premium.json()["data"][1]["availability"] == "preview"


def test_models_listing_still_reports_the_budget(routed: Gateway) -> None:
    reply = listed(routed, FREE)
    assert reply.int_header("x-ratelimit-remaining-tokens") == 200, reply.describe()


def test_one_model_is_shown_only_to_its_tiers(routed: Gateway) -> None:
    own = listed(routed, PREMIUM, "/v1/models/premium-model")
    assert own.status == 200, own.describe()
    assert own.json()["id"] == "premium-model" and own.json()["displayName"] == "Premium model"
    refusal(listed(routed, FREE, "/v1/models/premium-model"), 404, "model_not_found")
    refusal(listed(routed, FREE, "/v1/models/nothing"), 404, "model_not_found")


def test_without_routing_the_model_is_not_looked_at(make_gateway: Callable[..., Gateway]) -> None:
    """routing.byModel off: any model (and none) goes to the one upstream, unchanged."""
    gateway = make_gateway()
    seen: list[tuple[str, dict[str, Any]]] = []
    upstream = named("default", seen)
    assert chat(gateway, FREE, upstream, model="premium-model").status == 200
    assert chat(gateway, FREE, upstream).status == 200
    assert [body.get("model") for _, body in seen] == ["premium-model", None]
