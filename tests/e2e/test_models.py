"""Models: the gateway lists its models to every valid key; llama-stack lists every model
declared in `global.models`; registration adds and removes models idempotently."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from harness import registration as reg
from harness.declared import Declared
from harness.endpoints import Endpoints

from .support import Gateway

pytestmark = [pytest.mark.e2e, pytest.mark.models]

EXTRA_KEY = "e2e-extra"  # the model the add/remove test registers and removes


def llama_stack_ids(url: str) -> list[str]:
    return reg.listed_models(url)


def test_gateway_lists_the_declared_models_to_every_tier(
    gateway: Gateway, endpoints: Endpoints, key_pool, declared: Declared
) -> None:
    served = declared.served_models
    if not served:
        pytest.skip(f"the values ({declared.describe()}) declare no model server whose models the gateway lists")
    assert endpoints.keys, "the target reports no gateway keys"
    for tier in endpoints.keys:
        reply = gateway.models(key_pool.shared(tier))
        assert reply.status == 200, f"{tier} key: {reply.describe()}"
        listed = reg.model_ids(reply.body)
        assert set(served) <= set(listed), (
            f"{tier} key: the gateway lists {listed}; the values ({declared.describe()}) serve {served}"
        )


def test_llama_stack_lists_every_declared_model(harness_state, registration, llama_client) -> None:
    if registration is not None:
        expected = set(registration.registered + registration.already)
        assert registration.ok, registration.render()
    else:
        declared = reg.base_models(harness_state.target_name, harness_state.options.values)
        if not declared:
            pytest.skip(f"values/{harness_state.target_name}.yaml declares no global.models and no MaaS is configured")
        expected = {f"{key}/{entry['id']}" for key, entry in declared.items()}
    # Through llama-stack's own client, as an application would look.
    listed = {model.id for model in llama_client.models.list()}
    assert expected <= listed, f"declared {sorted(expected)}, llama-stack lists {sorted(listed)}"


@pytest.fixture
def extra_model(harness_state, maas, endpoints: Endpoints, key_pool, chat_model: str) -> Iterator[reg.ModelSpec]:
    """A second provider for a model that exists: the real MaaS, or the stack's own gateway."""
    if maas.configured:
        url, token = maas.endpoint, maas.api_key
    elif harness_state.target_name == "local":
        url, token = endpoints.gateway_url, key_pool.shared("enterprise")
    else:
        pytest.skip("needs MAAS_ENDPOINT/MAAS_API_KEY: the gateway URL llama-stack sees in-cluster is not exposed")
    spec = reg.ModelSpec(EXTRA_KEY, chat_model.split("/", 1)[1], reg.v1_url(url), api_token=token)
    yield spec


def test_registration_adds_and_removes_a_model(
    harness_state, target, llama_stack_url: str, extra_model: reg.ModelSpec, chat_model: str
) -> None:
    keep = reg.base_models(harness_state.target_name, harness_state.options.values)
    desired = {extra_model.key: extra_model}
    added = reg.register(target, llama_stack_url, desired, keep=keep, timeout=30)
    try:
        assert added.ok, added.render()
        assert added.registered == [extra_model.llama_stack_id], added.render()
        assert extra_model.llama_stack_id in llama_stack_ids(llama_stack_url)
        again = reg.register(target, llama_stack_url, desired, keep=keep, timeout=30)
        assert (again.applied, again.already) == (False, [extra_model.llama_stack_id]), (
            f"not idempotent: {again.render()}"
        )
    finally:
        removed = reg.register(
            target, llama_stack_url, {}, remove={extra_model.key: extra_model}, keep=keep, timeout=30
        )
    assert removed.ok and removed.removed == [extra_model.llama_stack_id], removed.render()
    listed = llama_stack_ids(llama_stack_url)
    assert extra_model.llama_stack_id not in listed, f"still listed after removal: {listed}"
    assert chat_model in listed, f"removing {extra_model.key} also removed {chat_model}: {listed}"


@pytest.mark.maas
def test_maas_models_are_registered_and_answer(maas, registration, openai_llama) -> None:
    if not maas.configured:
        pytest.skip("MAAS_ENDPOINT and MAAS_API_KEY are not set: no real MaaS to check")
    assert registration.ok, registration.render()
    for model in registration.registered + registration.already:
        reply = openai_llama.chat.completions.create(
            model=model, messages=[{"role": "user", "content": "Say OK."}], max_tokens=8
        )
        assert (reply.choices[0].message.content or "").strip(), f"{model} answered with empty content"
