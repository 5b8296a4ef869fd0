"""The model-aware gateway (maas-gateway `routing.byModel`): each catalog model is reached by its id
and answered by its own server; a tier the catalog does not allow gets 403, an unknown model 404,
a call without a model 400 (all JSON, nothing charged); `/v1/models` lists only the caller's models.

Driven by the declared catalog: values/local.yaml and values/kind.yaml put `simulated-model` on the
first model server and `simulated-model-2` (premium and enterprise only) on a second one."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from harness import http
from harness.declared import RoutedModel

from .support import Gateway, Reply, auth_header, remaining_tokens

pytestmark = [pytest.mark.e2e, pytest.mark.chat]


def chat(gateway: Gateway, key: str, body: dict[str, Any]) -> Reply:
    response = gateway.http.post("/v1/chat/completions", json=body, headers=auth_header(key))
    try:
        parsed = response.json()
    except ValueError:
        parsed = response.text
    return Reply(response.status_code, response.headers, parsed)


def ask(model: str | None, marker: str = "") -> dict[str, Any]:
    body: dict[str, Any] = {"messages": [{"role": "user", "content": f"hello {marker}"}], "max_tokens": 4}
    if model is not None:
        body["model"] = model
    return body


def restricted(routed: dict[str, RoutedModel]) -> tuple[str, str, str]:
    """(model, a tier that may not use it, a tier that may), or skip."""
    for model, entry in routed.items():
        if entry.tiers is not None:
            outside = [t for t in ("free", "premium", "enterprise") if not entry.allows(t)]
            inside = [t for t in ("enterprise", "premium", "free") if entry.allows(t)]
            if outside and inside:
                return model, outside[0], inside[0]
    pytest.skip(f"no catalog model is closed to one of free/premium/enterprise and open to another: {routed}")


def test_each_model_answers_under_its_served_name(gateway: Gateway, key_pool, routed) -> None:
    """Every model the enterprise tier may use answers under its served name. A model server
    answers only the names it serves (the real simulator answers any other with 404), so a
    model routed to another model's server fails here, on every target."""
    key = key_pool.shared("enterprise")
    for model, entry in routed.items():
        if not entry.allows("enterprise"):
            continue
        reply = chat(gateway, key, ask(model))
        assert reply.status == 200, f"{model}: {reply.describe()}"
        assert reply.body["model"] == entry.served, (
            f"{model}: answered as {reply.body['model']!r}, not {entry.served!r}"
        )


def test_models_on_different_servers_reach_different_servers(
    gateway: Gateway, key_pool, routed, model_calls
) -> None:
    """Each call reaches exactly one model server, and models on different servers reach
    different ones (seen by the local target's recording taps)."""
    key = key_pool.shared("enterprise")
    reached: dict[str, set[str]] = {}
    for model, entry in routed.items():
        if not entry.allows("enterprise"):
            continue
        marker = uuid.uuid4().hex
        before = len(model_calls.records())
        reply = chat(gateway, key, ask(model, marker))
        assert reply.status == 200, f"{model}: {reply.describe()}"
        reached[model] = {str(path) for path in model_calls.files if marker in path.read_text(encoding="utf-8")}
        assert len(reached[model]) == 1, f"{model}: the call reached {sorted(reached[model])} (after {before} calls)"
    own = [m for m in reached if routed[m].own_upstream]
    shared = [m for m in reached if not routed[m].own_upstream]
    if not own or not shared:
        pytest.skip(f"the catalog puts no two enterprise models on different servers: {routed}")
    assert reached[own[0]] != reached[shared[0]], f"{own[0]} and {shared[0]} reached the same server: {reached}"


def refusal(reply: Reply, status: int, code: str) -> None:
    assert reply.status == status, reply.describe()
    assert reply.headers.get("content-type") == "application/json", reply.describe()
    error = reply.body["error"]
    assert error["code"] == code and error["message"] and error["type"], reply.describe()


def test_a_tier_outside_the_catalog_entry_gets_403_and_pays_nothing(gateway: Gateway, key_pool, routed) -> None:
    model, outside, inside = restricted(routed)
    key = key_pool.one(outside)
    before = remaining_tokens(gateway, key)
    refusal(chat(gateway, key, ask(model)), 403, "model_not_allowed")
    assert remaining_tokens(gateway, key) == before, "a refused call was charged"
    assert chat(gateway, key_pool.shared(inside), ask(model)).status == 200


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [(ask("no-such-model"), 404, "model_not_found"), (ask(None), 400, "model_missing")],
    ids=["unknown-model-404", "no-model-400"],
)
def test_unknown_or_missing_model_is_refused_before_the_budget(
    gateway: Gateway, key_pool, routed, body: dict[str, Any], status: int, code: str
) -> None:
    key = key_pool.one("free")
    before = remaining_tokens(gateway, key)
    refusal(chat(gateway, key, body), status, code)
    assert remaining_tokens(gateway, key) == before, "a refused call was charged"


def test_models_lists_only_the_callers_models(gateway: Gateway, key_pool, routed) -> None:
    model, outside, inside = restricted(routed)
    for tier, shown in ((outside, False), (inside, True)):
        reply = gateway.models(key_pool.shared(tier))
        assert reply.status == 200, reply.describe()
        listed = http.model_ids(reply.body)
        assert (model in listed) is shown, f"{tier} key: /v1/models lists {listed}"
        allowed = {m for m, entry in routed.items() if entry.allows(tier)}
        assert set(listed) == allowed, f"{tier} key: /v1/models lists {listed}, the catalog allows {sorted(allowed)}"
