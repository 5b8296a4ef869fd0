"""Models: the gateway lists its models to every valid key; llama-stack lists every model
declared in `global.models`, with its catalog metadata; registration adds and removes models
idempotently; a model registered under a public id with `upstreamModel` answers."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from harness import http
from harness import registration as reg
from harness.declared import Declared
from harness.endpoints import Endpoints

from .support import Gateway
from .test_rag import CORPUS, embedding_model, pgvector_provider, wait_ingested

pytestmark = [pytest.mark.e2e, pytest.mark.models]

EXTRA_KEY = "e2e-extra"  # the model the add/remove test registers and removes
EXTRA_ID = "e2e-extra-model"  # its public id
ALIAS_KEY = "e2e-alias"  # the model the upstreamModel test registers under a public id of its own
ALIAS_ID = "e2e-public-alias"
# global.models fields that llama-stack registers as the model's metadata
CATALOG_FIELDS = (
    "displayName", "description", "category", "contextLength", "capabilities", "supportsStreaming", "availability",
)  # fmt: skip


def llama_stack_ids(url: str) -> list[str]:
    return http.list_models(url)


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
        listed = http.model_ids(reply.body)
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
        expected = {reg.listed_id(key, entry) for key, entry in declared.items()}
    # Through llama-stack's own client, as an application would look.
    listed = {model.id for model in llama_client.models.list()}
    assert expected <= listed, f"declared {sorted(expected)}, llama-stack lists {sorted(listed)}"


def listed_metadata(llama_stack_url: str) -> dict[str, dict[str, Any]]:
    """llama-stack's GET /v1/models: model id -> custom_metadata."""
    status, payload = http.json_request("GET", llama_stack_url.rstrip("/") + "/v1/models")
    assert status == 200 and isinstance(payload, dict), f"GET /v1/models -> {status}: {str(payload)[:300]}"
    return {str(m["id"]): m.get("custom_metadata") or {} for m in payload.get("data") or []}


def test_llama_stack_shows_the_catalog_metadata(harness_state, llama_stack_url: str) -> None:
    declared = reg.base_models(harness_state.target_name, harness_state.options.values)
    catalog = {
        reg.listed_id(key, entry): {f: entry[f] for f in CATALOG_FIELDS if f in entry}
        for key, entry in declared.items()
        if any(f in entry for f in CATALOG_FIELDS)
    }
    if not catalog:
        pytest.skip(f"values/{harness_state.target_name}.yaml declares no global.models entry with catalog fields")
    listed = listed_metadata(llama_stack_url)
    for model, fields in catalog.items():
        assert model in listed, f"{model} is not listed by llama-stack: {sorted(listed)}"
        shown = {f: listed[model][f] for f in fields if f in listed[model]}
        assert shown == fields, f"{model}: declared catalog fields {fields}, llama-stack shows {listed[model]}"


@pytest.fixture
def extra_model(
    harness_state, maas, endpoints: Endpoints, key_pool, chat_model: str, declared: Declared
) -> Iterator[reg.ModelSpec]:
    """A second provider for a model that exists (the MaaS, or the stack's own gateway), under a
    public id of its own. A gateway that routes by model renames it (upstreamModel) itself; one that
    relays every call to its one server (the kind overlay) knows no public ids, so llama-stack calls
    it by the served name, as it calls a model outside the stack (`external`)."""
    verify: bool | str = True
    if maas.configured:
        url, token, verify = maas.endpoint, maas.api_key, maas.tls_verify
    elif harness_state.target_name == "local":
        url, token = endpoints.gateway_url, key_pool.shared("enterprise")
    elif endpoints.in_cluster_gateway_url:  # cluster targets: the gateway's Service, as llama-stack sees it
        url, token = endpoints.in_cluster_gateway_url, key_pool.shared("enterprise")
    else:
        pytest.skip(
            f"needs MAAS_ENDPOINT/MAAS_API_KEY: the {harness_state.target_name} target exposes no gateway URL "
            "that llama-stack can reach (Endpoints.in_cluster_gateway_url is empty)"
        )
    # A public id of its own (the chart refuses two entries with one id), served by the same model.
    served = chat_model.split("/", 1)[1]
    yield reg.ModelSpec(
        EXTRA_KEY,
        EXTRA_ID,
        reg.v1_url(url),
        api_token=token,
        tls_verify=verify,
        upstream_model=served,
        # The MaaS is outside the stack: its gateway does not serve the model.
        external=maas.configured or not declared.routed_models(),
    )


@dataclass
class UserData:
    """What a user created before a registration: it must all survive the restart/upgrade."""

    file_id: str
    store_id: str
    conversation_id: str
    response_id: str


@pytest.fixture
def user_data(openai_llama, llama_stack_url: str, chat_model: str) -> Iterator[UserData]:
    document = CORPUS / "zephyr-lighthouse.txt"
    extra = {"provider_id": pgvector_provider(llama_stack_url), "embedding_model": embedding_model(llama_stack_url)}
    uploaded = openai_llama.files.create(
        file=(document.name, document.read_bytes(), "text/plain"), purpose="assistants"
    )
    store = openai_llama.vector_stores.create(
        name=f"e2e-survives-registration-{uuid.uuid4().hex[:8]}",
        file_ids=[uploaded.id],
        extra_body=extra,
    )
    try:
        wait_ingested(openai_llama, store.id, 1)
        conversation = openai_llama.conversations.create(
            items=[{"type": "message", "role": "user", "content": "Remember the lighthouse."}]
        )
        response = openai_llama.responses.create(model=chat_model, input="Say OK.", store=True)
        yield UserData(uploaded.id, store.id, conversation.id, response.id)
    finally:
        # Delete what is still there: when the test found the data lost, that is its failure, not this one's.
        if store.id in {s.id for s in openai_llama.vector_stores.list(limit=100)}:
            openai_llama.vector_stores.delete(store.id)
        if uploaded.id in {f.id for f in openai_llama.files.list(limit=1000)}:
            openai_llama.files.delete(uploaded.id)


def assert_user_data_intact(client: Any, data: UserData, when: str) -> None:
    stores = {s.id for s in client.vector_stores.list(limit=100)}
    assert data.store_id in stores, f"{when}: vector store {data.store_id} no longer listed ({sorted(stores)})"
    hits = client.vector_stores.search(data.store_id, query="What colours is the lighthouse painted?").data
    assert [h.file_id for h in hits][:1] == [data.file_id], f"{when}: search no longer finds the file: {hits}"
    assert client.files.retrieve(data.file_id).id == data.file_id, f"{when}: file {data.file_id} lost"
    assert client.conversations.retrieve(data.conversation_id).id == data.conversation_id, f"{when}: conversation lost"
    assert client.responses.retrieve(data.response_id).id == data.response_id, f"{when}: stored response lost"


def test_registration_adds_and_removes_a_model(
    target, llama_stack_url: str, extra_model: reg.ModelSpec, openai_llama, user_data: UserData
) -> None:
    """Additive and durable: adding and removing one model leaves every earlier model listed and
    every file, vector store, conversation and response created before it retrievable."""
    before = set(llama_stack_ids(llama_stack_url))
    desired = {extra_model.key: extra_model}
    added = reg.register(target, llama_stack_url, desired, timeout=60)
    try:
        assert added.ok, added.render()
        assert added.registered == [extra_model.llama_stack_id], added.render()
        listed = set(llama_stack_ids(llama_stack_url))
        assert before | {extra_model.llama_stack_id} <= listed, f"adding {extra_model.key} dropped {before - listed}"
        assert_user_data_intact(openai_llama, user_data, f"after registering {extra_model.key}")
        again = reg.register(target, llama_stack_url, desired, timeout=60)
        assert (again.applied, again.already) == (False, [extra_model.llama_stack_id]), (
            f"not idempotent: {again.render()}"
        )
    finally:
        removed = reg.register(target, llama_stack_url, {}, remove=[extra_model.key], timeout=60)
    assert removed.ok and removed.removed == [extra_model.llama_stack_id], removed.render()
    listed = set(llama_stack_ids(llama_stack_url))
    assert extra_model.llama_stack_id not in listed, f"still listed after removal: {sorted(listed)}"
    assert before <= listed, f"removing {extra_model.key} also removed {sorted(before - listed)}"
    assert_user_data_intact(openai_llama, user_data, f"after removing {extra_model.key}")


@pytest.mark.maas
def test_maas_models_are_registered_and_answer(maas, registration, openai_llama) -> None:
    if not maas.configured:
        pytest.skip("MAAS_ENDPOINT and MAAS_API_KEY are not set (nor MAAS_ENDPOINT=standin): no MaaS to check")
    assert registration.ok, registration.render()
    for model in registration.registered + registration.already:
        reply = openai_llama.chat.completions.create(
            model=model, messages=[{"role": "user", "content": "Say OK."}], max_tokens=8
        )
        assert (reply.choices[0].message.content or "").strip(), f"{model} answered with empty content"


def test_a_model_under_its_own_public_id_answers_from_its_upstream_model(
    target, llama_stack_url: str, extra_model: reg.ModelSpec, openai_llama, maas
) -> None:
    """`upstreamModel` is the name sent to the server: a public id the server does not serve still
    answers. Behind the gateway llama-stack sends the public id and the gateway renames it; an
    external entry llama-stack calls with upstreamModel itself, keeping the public id in the
    model's metadata."""
    # An external MaaS takes its own key, not the caller's: llama-stack calls it through remote::openai.
    provider = reg.EXTERNAL_PROVIDER if maas.configured else extra_model.provider
    alias = dataclasses.replace(extra_model, key=ALIAS_KEY, id=ALIAS_ID, provider=provider)
    added = reg.register(target, llama_stack_url, {alias.key: alias}, timeout=60)
    try:
        assert added.ok and added.registered == [alias.llama_stack_id], added.render()
        metadata = listed_metadata(llama_stack_url)[alias.llama_stack_id]
        shown = (metadata.get("publicId"), metadata.get("provider_resource_id"))
        expected = (ALIAS_ID, alias.upstream_model) if alias.external else (None, ALIAS_ID)
        assert shown == expected, metadata
        reply = openai_llama.chat.completions.create(
            model=alias.llama_stack_id, messages=[{"role": "user", "content": "Say OK."}], max_tokens=8
        )
        assert (reply.choices[0].message.content or "").strip(), f"{alias.llama_stack_id} answered with empty content"
    finally:
        removed = reg.register(target, llama_stack_url, {}, remove=[alias.key], timeout=60)
    assert removed.ok and removed.removed == [alias.llama_stack_id], removed.render()
