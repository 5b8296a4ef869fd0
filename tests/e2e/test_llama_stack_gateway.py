"""llama-stack behind the gateway (maas-gateway `llamaStack`): callers reach llama-stack's API at the
gateway's path prefix with their own key, tier and limits, and every call is charged exactly once.

The front door charges llama-stack's answer its reported usage (chat's `usage`, the Responses API's
`usage.input_tokens`/`output_tokens`, in the JSON body or the final SSE event). llama-stack's own model
calls through the gateway carry an onward credential the front door minted, and are charged nothing:
so a charge equal to the usage proves both that the call was charged and that it was charged once.
Each test reads the key's budget through the gateway's /v1/models (which costs nothing) before and after.

A caller sends only `Authorization`: the plain OpenAI client, no provider data.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from harness.capabilities import Capability
from harness.chunking import published_chunking
from harness.declared import Declared
from harness.targets import Target
from openai import OpenAI

from .faults import assert_503_json, fault_target
from .support import Gateway, RateHeaders, Reply, auth_header, await_window, remaining_tokens, wait_for_charge, words
from .test_chunking import (
    Attached,
    assert_configured_chunks,
    cl100k,
    in_document_order,
    long_document,
    stored_chunks,
    wait_completed,
)
from .test_model_routing import restricted

pytestmark = [pytest.mark.e2e, pytest.mark.ratelimit]

# Time one test needs inside one rate-limit window (a few llama-stack calls on a busy machine).
TEST_SPAN_S = 30.0
# After the charge shows, how long a larger (wrong) charge would take to show too.
SETTLE_S = 0.5
# A chat with the simulator through llama-stack, on a busy machine (the bug took 5 s).
AFTER_REFUSAL_S = 4.0
DOCUMENT = b"The lighthouse keeper of Brinmoor paints the lamp room green every spring."


@pytest.fixture(scope="module")
def front_door(gateway_url: str, declared: Declared) -> str:
    """llama-stack's API base on the gateway (…/llama-stack/v1); skips when the values keep it off."""
    prefix = declared.llama_stack_gateway_prefix()
    if not prefix:
        pytest.skip(
            f"the values ({declared.describe()}) do not put llama-stack behind the gateway "
            "(maas-gateway.llamaStack.enabled)"
        )
    return f"{gateway_url}{prefix}/v1"


def caller(front_door: str, key: str) -> OpenAI:
    """The plain OpenAI client, as any caller of the gateway: the key in Authorization, nothing else;
    no retries, so a 429 reaches the test."""
    return OpenAI(base_url=front_door, api_key=key, timeout=120, max_retries=0)


class Budget:
    """A key's budget before a call, and the exact-charge check after it."""

    def __init__(self, gateway: Gateway, key: str) -> None:
        self.gateway, self.key = gateway, key
        await_window(gateway, key, TEST_SPAN_S)
        self.before = gateway.models(key).rate
        assert self.before.remaining_tokens is not None and self.before.remaining_requests is not None, (
            f"the gateway's /v1/models shows no budget: {self.before}"
        )

    def assert_charged(self, tokens: int, requests: int) -> None:
        """The key paid exactly `tokens` tokens and `requests` requests since the budget was read."""
        assert self.before.remaining_tokens is not None and self.before.remaining_requests is not None
        if tokens:
            wait_for_charge(self.gateway, self.key, self.before.remaining_tokens - tokens)
        time.sleep(SETTLE_S)
        after = self.gateway.models(self.key).rate
        assert after.remaining_tokens == self.before.remaining_tokens - tokens, (
            f"charged {self.before.remaining_tokens - (after.remaining_tokens or 0)} tokens for a usage of {tokens}"
        )
        assert after.remaining_requests == self.before.remaining_requests - requests, (
            f"counted {self.before.remaining_requests - (after.remaining_requests or 0)} requests, expected {requests}"
        )


def limit_headers(headers: Any) -> RateHeaders:
    rate = RateHeaders.of(headers)
    assert rate.limit_tokens is not None and rate.remaining_tokens is not None, f"no token limit headers: {headers}"
    assert rate.limit_requests is not None and rate.remaining_requests is not None, (
        f"no request limit headers: {headers}"
    )
    return rate


@pytest.fixture(scope="module")
def premium_key(key_pool) -> str:
    """One premium key for this module's light calls (a few dozen tokens each): each test reads its
    budget before and after, so they need not each take a fresh key."""
    return key_pool.one("premium")


@pytest.fixture(scope="module")
def enterprise_store(front_door: str, key_pool, llama_stack_url: str) -> Iterator[tuple[str, str]]:
    """An enterprise key and a vector store it made through the gateway, holding DOCUMENT."""
    key = key_pool.one("enterprise")
    client = caller(front_door, key)
    upload = client.files.create(file=("brinmoor.txt", DOCUMENT, "text/plain"), purpose="assistants")
    store = client.vector_stores.create(name=f"e2e-front-door-{uuid.uuid4().hex[:8]}")
    try:
        chunking: Any = published_chunking(llama_stack_url).strategy()  # the SDK's TypedDict, as a dict
        attached = client.vector_stores.files.create(
            vector_store_id=store.id, file_id=upload.id, chunking_strategy=chunking
        )
        assert attached.status == "completed", f"the file was not ingested through the gateway: {attached}"
        yield key, store.id
    finally:
        client.vector_stores.delete(store.id)
        client.files.delete(upload.id)


def test_a_file_attached_without_a_strategy_gets_the_configured_chunks(
    front_door: str, premium_key: str, llama_stack_url: str
) -> None:
    """llama-stack 0.7.3 alone cuts such a file at 800 tokens: through the gateway it gets the chunking
    llama-stack publishes (the chart's vectorStore.chunkSizeTokens/chunkOverlapTokens)."""
    chunking = published_chunking(llama_stack_url)
    client = caller(front_door, premium_key)
    text = long_document()
    upload = client.files.create(file=("long-document.txt", text.encode(), "text/plain"), purpose="assistants")
    store = client.vector_stores.create(name=f"e2e-front-door-chunks-{uuid.uuid4().hex[:8]}")
    try:
        client.vector_stores.files.create(vector_store_id=store.id, file_id=upload.id)
        wait_completed(client, store.id, upload.id)
        chunks = stored_chunks(front_door, store.id, upload.id, key=premium_key)
        assert_configured_chunks(
            Attached(chunking, len(cl100k().encode(text)), in_document_order(text, chunking, chunks))
        )
    finally:
        client.vector_stores.delete(store.id)
        client.files.delete(upload.id)


def test_a_strategy_whose_overlap_is_not_smaller_than_its_size_is_400(front_door: str, premium_key: str) -> None:
    """llama-stack alone answers 200 and then fails the file; the gateway says why, naming the fields."""
    client = caller(front_door, premium_key)
    upload = client.files.create(file=("brinmoor.txt", DOCUMENT, "text/plain"), purpose="assistants")
    store = client.vector_stores.create(name=f"e2e-front-door-overlap-{uuid.uuid4().hex[:8]}")
    try:
        with pytest.raises(openai.BadRequestError) as refused:
            client.vector_stores.files.create(
                vector_store_id=store.id,
                file_id=upload.id,
                chunking_strategy={
                    "type": "static",
                    "static": {"max_chunk_size_tokens": 200, "chunk_overlap_tokens": 200},
                },
            )
        error = refused.value.response.json()["error"]
        assert error["param"] == "chunking_strategy.static.chunk_overlap_tokens", error
        assert "max_chunk_size_tokens" in error["message"], error
        assert not client.vector_stores.files.list(vector_store_id=store.id).data, "the file was attached anyway"
    finally:
        client.vector_stores.delete(store.id)
        client.files.delete(upload.id)


@pytest.mark.parametrize("files", ["file%73", "/files", "%66ile%73"], ids=["escaped", "double-slash", "all-escaped"])
def test_an_attach_spelled_another_way_is_checked_alike(front_door: str, premium_key: str, files: str) -> None:
    """Envoy normalizes the path (percent-escapes of plain characters, doubled slashes) before the
    front door reads it: no spelling of the attach route gets past the chunking check. The check
    answers before llama-stack, so no store is needed; a spelling that got past would reach
    llama-stack and get its 404 for the unknown store instead."""
    strategy = {"type": "static", "static": {"max_chunk_size_tokens": 200, "chunk_overlap_tokens": 200}}
    reply = Reply.of(
        httpx.post(
            f"{front_door}/vector_stores/vs_e2e_unknown/{files}",
            json={"file_id": "file-e2e-unknown", "chunking_strategy": strategy},
            headers=auth_header(premium_key),
            timeout=30,
        )
    )
    assert reply.status == 400, reply.describe()
    assert reply.body["error"]["param"] == "chunking_strategy.static.chunk_overlap_tokens", reply.describe()


def test_another_tiers_model_is_hidden_and_refused_at_the_front_door(
    front_door: str, key_pool, routed, gateway_chat_model: str
) -> None:
    """llama-stack names a gateway model `<catalog key>/<public id>`. A tier that may not use it does
    not see it in llama-stack's listing through the gateway, and a call naming it gets the gateway's
    own 403 before llama-stack; the next call answers at once. (llama-stack 0.7.3 mishandles the
    onward 403 it would otherwise meet: it logs "Exception in ASGI application ... response already
    started", and the next call on that connection waited about 5 s and ended in a bare 503.) Two
    rounds: a refused call costs no request, and the free tier's request budget allows five."""
    model, outside, inside = restricted(routed)
    shown = [m.id for m in caller(front_door, key_pool.shared(inside)).models.list().data]
    name = next((m for m in shown if m.endswith("/" + model)), None)
    assert name, f"llama-stack lists no model served as {model!r} to tier {inside}: {shown}"
    client = caller(front_door, key_pool.one(outside))
    hidden = [m.id for m in client.models.list().data]
    assert name not in hidden, f"tier {outside} is shown {name}, which it may not use: {hidden}"
    assert gateway_chat_model in hidden, f"tier {outside} is not shown {gateway_chat_model}: {hidden}"
    for _ in range(2):
        with pytest.raises(openai.PermissionDeniedError) as refused:
            client.chat.completions.create(model=name, messages=[{"role": "user", "content": "hi"}], max_tokens=2)
        assert refused.value.code == "model_not_allowed", f"not the gateway's refusal: {refused.value.body}"
        started = time.monotonic()
        reply = client.chat.completions.create(
            model=gateway_chat_model, messages=[{"role": "user", "content": "hi"}], max_tokens=2
        )
        assert reply.choices, f"no answer after the refusal: {reply}"
        assert time.monotonic() - started < AFTER_REFUSAL_S, "the call after a refusal waited"


# How long a plain listing may take right after a failed call (a stall was about 4 s).
AFTER_FAILURE_S = 1.5


def test_a_failed_call_does_not_stall_llama_stack(front_door: str, premium_key: str) -> None:
    """A call llama-stack 0.7.3 fails by raising (deleting a file id of the wrong form: 400) is logged
    with its traceback. In llama-stack's default console log format that rendering stalled it about
    4 s, and the next call on the connection got a 503: the chart's JSON log format does not. Three
    rounds, each next call answering at once."""
    client = caller(front_door, premium_key)
    for _ in range(3):
        with pytest.raises(openai.BadRequestError):
            client.files.delete("file-not-hex")
        started = time.monotonic()
        client.files.list()
        elapsed = time.monotonic() - started
        assert elapsed < AFTER_FAILURE_S, f"the call after a failed one took {elapsed:.1f}s"


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "code"),
    [
        ("GET", "/no-such-path", None, 404, "not_found"),
        ("PUT", "/models", None, 405, "method_not_allowed"),
        ("GET", "/models/no-such-model", None, 404, "not_found"),
        ("POST", "/chat/completions", {"model": "no-such-model"}, 400, "invalid_request"),
    ],
    ids=["unknown-path", "wrong-method", "unknown-model", "missing-field"],
)
def test_llama_stacks_errors_are_openai_errors(
    front_door: str, gateway: Gateway, premium_key: str, method: str, path: str, body: Any, status: int, code: str
) -> None:
    """Through the gateway llama-stack's own refusals have the OpenAI form (message, type, code),
    like the gateway's: llama-stack 0.7.3 alone gives no type or code, or `{"detail": ...}`."""
    reply = Reply.of(gateway.http.request(method, front_door + path, json=body, headers=auth_header(premium_key)))
    assert reply.status == status, reply.describe()
    error = reply.body.get("error") if isinstance(reply.body, dict) else None
    assert error and error.get("message") and error.get("type") and error.get("code") == code, reply.describe()


def test_no_key_no_door(front_door: str) -> None:
    """Without a valid key the gateway answers 401 itself: llama-stack is never reached."""
    for key in ("", "not-a-key"):
        with pytest.raises(openai.AuthenticationError) as refused:
            caller(front_door, key or "none").models.list()
        body = refused.value.response.json()
        assert body["error"]["type"] == "invalid_api_key", refused.value.response.text


def test_models_listed_through_the_gateway_cost_nothing(
    front_door: str, gateway: Gateway, premium_key: str, endpoints: Any
) -> None:
    key = premium_key
    budget = Budget(gateway, key)
    raw = caller(front_door, key).models.with_raw_response.list()
    limit_headers(raw.headers)
    listed = {m.id for m in raw.parse().data}
    missing = set(endpoints.llama_stack_models) - listed
    assert not missing, f"llama-stack's models missing from its listing through the gateway: {sorted(missing)}"
    budget.assert_charged(tokens=0, requests=0)


def test_chat_is_charged_once(front_door: str, gateway: Gateway, premium_key: str, gateway_chat_model: str) -> None:
    key = premium_key
    budget = Budget(gateway, key)
    raw = caller(front_door, key).chat.completions.with_raw_response.create(
        model=gateway_chat_model, messages=[{"role": "user", "content": words(30)}], max_tokens=8
    )
    rate = limit_headers(raw.headers)
    reply = raw.parse()
    assert reply.usage and reply.usage.total_tokens > 0, f"no usage in {reply}"
    assert rate.consumed_tokens == reply.usage.total_tokens, f"consumed header {rate.consumed_tokens} for {reply.usage}"
    budget.assert_charged(tokens=reply.usage.total_tokens, requests=1)


def test_streamed_chat_is_charged_once(
    front_door: str, gateway: Gateway, premium_key: str, gateway_chat_model: str
) -> None:
    """The caller does not ask for usage: the gateway does, and charges it."""
    key = premium_key
    budget = Budget(gateway, key)
    raw = caller(front_door, key).chat.completions.with_raw_response.create(
        model=gateway_chat_model, messages=[{"role": "user", "content": words(30)}], max_tokens=8, stream=True
    )
    limit_headers(raw.headers)
    chunks = list(raw.parse())
    usage = [c.usage for c in chunks if c.usage]
    assert usage, "the stream through the gateway carried no usage"
    budget.assert_charged(tokens=usage[-1].total_tokens, requests=1)


def file_search(client: OpenAI, model: str, store_id: str, **extra: Any) -> Any:
    return client.responses.with_raw_response.create(
        model=model,
        input="Who paints the lamp room?",
        tools=[{"type": "file_search", "vector_store_ids": [store_id], "max_num_results": 3}],
        include=["file_search_call.results"],
        # The simulator calls a tool on a coin flip with "auto": "required" makes the first turn a
        # search, max_tool_calls=1 makes the next turn the answer (two model calls for one charge).
        tool_choice="required",
        max_tool_calls=1,
        **extra,
    )


def searched(output: Any) -> None:
    calls = [item for item in output if item.type == "file_search_call"]
    assert calls, f"no file_search call; output types {[i.type for i in output]}"
    texts = [r.text or "" for call in calls for r in (call.results or [])]
    assert any("Brinmoor" in t for t in texts), f"the search through the gateway found {texts}"


def test_responses_file_search_is_charged_once(
    front_door: str, gateway: Gateway, enterprise_store: tuple[str, str], gateway_chat_model: str
) -> None:
    """Two model calls inside llama-stack (the search turn and the answer), one charge: the response's usage."""
    key, store_id = enterprise_store
    budget = Budget(gateway, key)
    raw = file_search(caller(front_door, key), gateway_chat_model, store_id)
    rate = limit_headers(raw.headers)
    response = raw.parse()
    searched(response.output)
    assert response.usage and response.usage.total_tokens > 0, f"no usage in {response}"
    assert rate.consumed_tokens == response.usage.total_tokens, f"consumed {rate.consumed_tokens} for {response.usage}"
    budget.assert_charged(tokens=response.usage.total_tokens, requests=1)


def test_streamed_responses_file_search_is_charged_once(
    front_door: str, gateway: Gateway, enterprise_store: tuple[str, str], gateway_chat_model: str
) -> None:
    """The charge is the usage of the stream's response.completed event."""
    key, store_id = enterprise_store
    budget = Budget(gateway, key)
    raw = file_search(caller(front_door, key), gateway_chat_model, store_id, stream=True)
    limit_headers(raw.headers)
    events = list(raw.parse())
    done = [e for e in events if e.type == "response.completed"]
    assert done, f"the stream did not complete: {[e.type for e in events][-5:]}"
    searched(done[-1].response.output)
    usage = done[-1].response.usage
    assert usage and usage.total_tokens > 0, f"response.completed carries no usage: {done[-1]}"
    budget.assert_charged(tokens=usage.total_tokens, requests=1)


def test_free_key_gets_429_from_the_gateway_on_responses(
    front_door: str, gateway: Gateway, key_pool, gateway_chat_model: str, declared: Declared
) -> None:
    """Calls pass while the budget has tokens left; the first call after it is spent gets the gateway's
    429 with Retry-After, streamed or not (llama-stack itself would answer 500 on non-streamed
    Responses: the front door is the only place with an honest 429)."""
    key = key_pool.one("free")
    budget_tokens = declared.tier_token_limits()["free"]
    Budget(gateway, key)
    client = caller(front_door, key)
    spent: list[int] = []
    refused: openai.APIStatusError | None = None
    for _ in range(4):
        try:
            response = client.responses.create(model=gateway_chat_model, input=words(60), max_output_tokens=16)
        except openai.APIStatusError as error:
            refused = error
            break
        assert response.usage, f"no usage in {response}"
        spent.append(response.usage.total_tokens)
        wait_for_charge(gateway, key, max(budget_tokens - sum(spent), 0))
    assert refused is not None, f"calls worth {spent} tokens passed a {budget_tokens}-token budget"
    assert spent, f"the first call of a fresh free key was refused: {refused.response.text}"
    assert sum(spent[:-1]) < budget_tokens, f"calls passed after the budget was spent: {spent}; budget {budget_tokens}"
    assert sum(spent) >= budget_tokens, f"refused early, after {spent} of {budget_tokens} tokens"
    for answer in (refused.response, stream_refusal(client, gateway_chat_model)):
        assert answer.status_code == 429, f"HTTP {answer.status_code} {answer.text[:300]}"
        assert int(answer.headers["retry-after"]) > 0, answer.headers
        assert answer.headers.get("x-maas-ratelimit-exceeded") == "tokens", answer.headers
        assert answer.json()["error"]["type"] == "rate_limit_exceeded", answer.text
    assert remaining_tokens(gateway, key) == 0


def stream_refusal(client: OpenAI, model: str) -> Any:
    with pytest.raises(openai.APIStatusError) as refused:
        client.responses.create(model=model, input=words(10), stream=True)
    return refused.value.response


def test_an_onward_credential_cannot_be_forged(gateway: Gateway) -> None:
    """Only the gateway mints onward credentials: a made-up one opens nothing."""
    forged = "maas-onward:9999999999:enterprise:" + "0" * 64 + ":enterprise-user-01"
    reply = gateway.chat(forged, words(5), max_tokens=2)
    assert reply.status == 401, reply.describe()


def test_a_client_cannot_claim_an_onward_call(gateway: Gateway, premium_key: str) -> None:
    """The onward route's header from a client is stripped: its call is charged as any other."""
    key = premium_key
    budget = Budget(gateway, key)
    reply = gateway.chat(key, words(20), max_tokens=4, headers={"x-maas-onward": "1"})
    assert reply.status == 200, reply.describe()
    budget.assert_charged(tokens=reply.usage["total_tokens"], requests=1)


def test_onward_credentials_never_reach_the_logs(
    target: Target, front_door: str, key_pool, gateway_chat_model: str
) -> None:
    if Capability.FAULTS not in target.capabilities:
        pytest.skip(f"target {target.name!r} gives the tests no component logs")
    caller(front_door, key_pool.shared("premium")).chat.completions.create(
        model=gateway_chat_model, messages=[{"role": "user", "content": "log check"}], max_tokens=2
    )
    for component in ("llama-stack", "gateway"):
        log = target.component_log(component)
        assert log, f"no {component} log to check"
        assert "maas-onward:" not in log, f"the {component} log holds an onward credential"


# Over the health check period: a check in flight (its 2 s timeout) and a loaded machine.
HEALTH_SLACK_S = 5.0


def listing(gateway: Gateway, prefix: str, key: str) -> Reply:
    return Reply.of(gateway.http.get(f"{prefix}/v1/models", headers=auth_header(key)))


def first_within(call: Any, ok: Any, seconds: float) -> tuple[Any, float]:
    """The first reply `ok` accepts within `seconds`, and when it came; fails with the last one."""
    started = time.monotonic()
    reply = call()
    while not ok(reply):
        seen = reply.describe() if isinstance(reply, Reply) else repr(reply)
        assert time.monotonic() - started < seconds, f"not within {seconds:.0f}s: {seen}"
        time.sleep(0.2)
        reply = call()
    return reply, time.monotonic() - started


def test_llama_stack_down_is_503_json_until_it_returns(
    target: Target, gateway: Gateway, declared: Declared, premium_key: str, front_door: str
) -> None:
    """Stopped, llama-stack's route answers 503 JSON of its own (llama_stack_unavailable) within the
    health check period (at once: the call is refused); back, the route serves again as soon as it
    answers (bounded by the same period)."""
    faulty = fault_target(target)
    prefix = declared.llama_stack_gateway_prefix()
    period = float(((declared.values.get("maas-gateway") or {}).get("llamaStack") or {}).get("healthCheckSeconds", 5))
    ready = f"http://127.0.0.1:{target.internal_port('gateway_health')}"
    assert listing(gateway, prefix, premium_key).status == 200, "llama-stack is not served before the fault"
    assert readiness(ready) == (200, 200), "the gateway does not report llama-stack ready before the fault"
    faulty.stop_component("llama-stack")
    try:
        down, _ = first_within(
            lambda: listing(gateway, prefix, premium_key), lambda r: r.status != 200, period + HEALTH_SLACK_S
        )
        assert_503_json(down, "llama_stack_unavailable")
        # Its own readiness goes 503 within the check period; the gateway's stays 200 (model calls go on).
        first_within(lambda: readiness(ready), lambda r: r == (200, 503), period + HEALTH_SLACK_S)
    finally:
        faulty.start_component("llama-stack")
    back, _ = first_within(
        lambda: listing(gateway, prefix, premium_key), lambda r: r.status == 200, period + HEALTH_SLACK_S
    )
    assert back.body.get("data"), f"llama-stack's listing after its return: {back.describe()}"
    first_within(lambda: readiness(ready), lambda r: r == (200, 200), period + HEALTH_SLACK_S)


def readiness(base: str) -> tuple[int, int]:
    """The gateway's readiness listener: its own `/ready` and llama-stack's `/ready/llama-stack`."""
    own = httpx.get(f"{base}/ready", timeout=5).status_code
    return own, httpx.get(f"{base}/ready/llama-stack", timeout=5).status_code
