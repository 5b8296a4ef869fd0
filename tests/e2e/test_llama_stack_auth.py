"""llama-stack authenticates its callers with the gateway's keys and spends the caller's budget.

The chart turns on llama-stack's `custom` auth provider, which asks the gateway's key-validation
route about every call's `Authorization: Bearer <key>`; model calls carry the caller's key to the
gateway in `X-LlamaStack-Provider-Data` (harness.llama_stack_auth). llama-stack holds no model key
of its own in the shipped overlays, so a call that does not forward a key reaches no model.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import openai
import pytest
from harness import llama_stack_auth
from harness.capabilities import Capability
from harness.chunking import published_chunking
from harness.targets import Target

from .support import TIER_TOKENS, Gateway, await_window, remaining_tokens, wait_for_charge, words

pytestmark = [pytest.mark.e2e, pytest.mark.auth]

HTTP_TIMEOUT_S = 60.0
# ~121 tokens with max_tokens=1: the free budget (200 per minute) is spent after two calls.
BIG_PROMPT = words(120)
# Time one test needs inside one rate-limit window (a few llama-stack calls on a busy machine).
TEST_SPAN_S = 25.0
# (method, path, JSON body) of calls that must be refused without a valid key: chat, files,
# vector stores, Responses, and listing models.
PROTECTED = [
    ("POST", "/v1/chat/completions", {"model": "m", "messages": [{"role": "user", "content": "hi"}]}),
    ("GET", "/v1/files", None),
    ("GET", "/v1/vector_stores", None),
    ("POST", "/v1/responses", {"model": "m", "input": "hi"}),
    ("GET", "/v1/models", None),
]


@pytest.fixture(scope="module")
def raw(llama_stack_url: str) -> Iterator[httpx.Client]:
    """A plain HTTP client on llama-stack that sends only the headers each test gives it."""
    with httpx.Client(base_url=llama_stack_url, timeout=HTTP_TIMEOUT_S) as client:
        yield client


def assert_json_error(response: httpx.Response, status: int) -> None:
    assert response.status_code == status, f"want {status}, got HTTP {response.status_code}: {response.text[:300]}"
    body = response.json()
    assert isinstance(body, dict) and isinstance(body.get("error"), dict) and body["error"].get("message"), (
        f"HTTP {status} without a JSON error: {response.text[:300]}"
    )


@pytest.mark.parametrize(("method", "path", "body"), PROTECTED, ids=[f"{m} {p}" for m, p, _ in PROTECTED])
def test_missing_or_bad_key_gets_json_401(raw: httpx.Client, method: str, path: str, body: Any) -> None:
    assert_json_error(raw.request(method, path, json=body), 401)
    bad = {"Authorization": "Bearer not-a-key-0000"}
    assert_json_error(raw.request(method, path, json=body, headers=bad), 401)


@pytest.mark.parametrize("path", ["/v1/health", "/v1/version"])
def test_probes_need_no_key(raw: httpx.Client, path: str) -> None:
    response = raw.get(path)
    assert response.status_code == 200, f"GET {path} without a key: HTTP {response.status_code} {response.text[:200]}"


def test_valid_key_is_accepted(raw: httpx.Client, key_pool) -> None:
    key = key_pool.shared("premium")
    response = raw.get("/v1/models", headers=llama_stack_auth.caller_headers(key))
    assert response.status_code == 200, f"a valid premium key was refused: HTTP {response.status_code}"
    assert response.json().get("data"), "llama-stack listed no model to a valid key"


def test_provider_data_must_carry_the_callers_own_key(raw: httpx.Client, key_pool) -> None:
    """Authenticating with one key while forwarding another would spend someone else's budget."""
    caller, other = key_pool.shared("free"), key_pool.shared("enterprise")
    headers = llama_stack_auth.caller_headers(caller)
    headers[llama_stack_auth.PROVIDER_DATA_HEADER] = json.dumps({"vllm_api_token": other})
    assert_json_error(raw.get("/v1/models", headers=headers), 401)


def test_a_call_without_a_forwarded_key_reaches_no_model(raw: httpx.Client, gateway_chat_model: str, key_pool) -> None:
    """A caller must forward their key (the gateway's key check requires it), so no call can run
    on a key configured in llama-stack; the shipped overlays configure none anyway."""
    key = key_pool.shared("enterprise")
    body = {"model": gateway_chat_model, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}
    response = raw.post("/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {key}"})
    assert response.status_code in (401, 403), (
        f"a chat without a forwarded key was answered HTTP {response.status_code}: {response.text[:300]}"
    )


def spend_through_llama_stack(client: Any, gateway: Gateway, key: str, model: str) -> openai.RateLimitError:
    """Chat through llama-stack as `key` until the gateway's budget refuses it; each charge is
    awaited at the gateway before the next call. Returns the 429 llama-stack answered."""
    for _ in range(4):  # 2 calls spend a free budget; the free request limit (5) is never reached
        # (each call is awaited at the gateway, so `client` never sees a refusal before the last call)
        before = remaining_tokens(gateway, key)
        try:
            reply = client.chat.completions.create(
                model=model, messages=[{"role": "user", "content": BIG_PROMPT}], max_tokens=1
            )
        except openai.RateLimitError as refused:
            return refused
        assert reply.usage and reply.usage.total_tokens > 0, f"no usage in {reply}"
        wait_for_charge(gateway, key, before - reply.usage.total_tokens)
    raise AssertionError("llama-stack never answered 429 for a free key whose budget was spent")


def test_free_key_spent_through_llama_stack_gets_429_there_and_at_the_gateway(
    llama_stack_as: Callable[[str], Any], gateway: Gateway, key_pool, gateway_chat_model: str
) -> None:
    key = key_pool.one("free")
    await_window(gateway, key, TEST_SPAN_S)
    refused = spend_through_llama_stack(llama_stack_as(key), gateway, key, gateway_chat_model)
    assert refused.status_code == 429, refused
    assert "Rate limit exceeded" in str(refused), f"the 429 is not the gateway's rate-limit error: {refused}"
    direct = gateway.chat(key, "one more", max_tokens=1)
    assert direct.status == 429, f"the gateway did not refuse the spent key itself: {direct.describe()}"


@pytest.fixture
def own_store(llama_stack_as: Callable[[str], Any], llama_stack_url: str, key_pool) -> Iterator[tuple[str, str]]:
    """(free key, id of a vector store that key owns): llama-stack's default access policy lets
    only a resource's owner use it. Ingestion embeddings go to the embeddings server, not the
    gateway, so building it spends none of the key's token budget."""
    key = key_pool.one("free")
    client = llama_stack_as(key)
    text = b"The lighthouse keeper of Brinmoor paints the lamp room green every spring."
    upload = client.files.create(file=("brinmoor.txt", text, "text/plain"), purpose="assistants")
    store = client.vector_stores.create(name=f"e2e-auth-{uuid.uuid4().hex[:8]}")
    try:
        chunking = published_chunking(llama_stack_url).strategy()
        client.vector_stores.files.create(vector_store_id=store.id, file_id=upload.id, chunking_strategy=chunking)
        yield key, store.id
    finally:
        client.vector_stores.delete(store.id)
        client.files.delete(upload.id)


def test_free_key_spent_is_refused_by_responses_file_search(
    llama_stack_as: Callable[[str], Any], gateway: Gateway, own_store: tuple[str, str], gateway_chat_model: str
) -> None:
    """llama-stack 0.7.3 reports a provider error inside a Responses call as the stream's
    `response.failed` event (error.code from the provider's JSON) and, without streaming, as
    HTTP 500 carrying the provider's message (providers/inline/responses/builtin/responses/
    openai_responses.py: InternalServerError(error_message)); it never answers 429 there. The
    test checks both forms carry the gateway's rate-limit refusal."""
    key, store_id = own_store
    await_window(gateway, key, TEST_SPAN_S)
    spend_through_llama_stack(llama_stack_as(key), gateway, key, gateway_chat_model)
    tools = [{"type": "file_search", "vector_store_ids": [store_id]}]
    # Fresh clients: llama-stack 0.7.3 leaves the connection of a refused chat unusable
    # ("Exception in ASGI application" after the 429 was sent), so it is not reused.
    stream = llama_stack_as(key).responses.create(
        model=gateway_chat_model, input="Who paints the lamp room?", tools=tools, stream=True
    )
    events = list(stream)
    failed = [e for e in events if e.type == "response.failed"]
    assert failed, f"a spent free key got a Responses stream without response.failed: {[e.type for e in events]}"
    error = failed[-1].response.error
    assert error is not None and error.code == "rate_limit_exceeded", f"response.failed carries {error}"
    with pytest.raises(openai.APIStatusError) as refused:
        llama_stack_as(key).responses.create(model=gateway_chat_model, input="Who paints the lamp room?", tools=tools)
    text = refused.value.response.text
    assert "Rate limit exceeded" in text, f"not the gateway's refusal: HTTP {refused.value.status_code} {text[:300]}"


def test_enterprise_key_through_llama_stack_is_charged_on_enterprise_counters(
    llama_stack_as: Callable[[str], Any], gateway: Gateway, key_pool, gateway_chat_model: str, llama_stack_key: str
) -> None:
    key = key_pool.one("enterprise")
    await_window(gateway, key, TEST_SPAN_S)
    before = gateway.models(key).rate
    assert before.limit_tokens == TIER_TOKENS["enterprise"], f"not an enterprise budget: {before}"
    harness_before = remaining_tokens(gateway, llama_stack_key)
    reply = llama_stack_as(key).chat.completions.create(
        model=gateway_chat_model, messages=[{"role": "user", "content": words(40)}], max_tokens=5
    )
    assert reply.usage and reply.usage.total_tokens > 0, f"no usage in {reply}"
    assert before.remaining_tokens is not None
    after = wait_for_charge(gateway, key, before.remaining_tokens - reply.usage.total_tokens)
    assert before.remaining_tokens - after == reply.usage.total_tokens, (
        f"enterprise counters moved by {before.remaining_tokens - after}, the call used {reply.usage.total_tokens}"
    )
    assert remaining_tokens(gateway, llama_stack_key) == harness_before, "the call was charged to another key too"


def test_forwarded_keys_never_reach_the_logs(
    target: Target, endpoints: Any, llama_stack_as: Callable[[str], Any], key_pool, gateway_chat_model: str
) -> None:
    """Keys travel in headers and in the key check's body; no component may log them."""
    if Capability.FAULTS not in target.capabilities:
        pytest.skip(f"target {target.name!r} gives the tests no component logs")
    key = key_pool.shared("premium")
    llama_stack_as(key).chat.completions.create(
        model=gateway_chat_model, messages=[{"role": "user", "content": "log check"}], max_tokens=2
    )
    for component in ("llama-stack", "gateway"):
        log = target.component_log(component)
        assert log, f"no {component} log to check"
        leaked = sorted({tier for tier, keys in endpoints.keys.items() for k in keys if k in log})
        assert not leaked, f"the {component} log holds API keys of tiers {leaked}"
