"""llama-stack behind the gateway (maas-gateway `llamaStack`): the front door at the path prefix
checks the caller's key and budgets and charges llama-stack's reported usage; llama-stack gets an
onward credential in place of the key, and its model calls with it are checked for the caller's tier
and charged nothing. Forged, tampered and expired credentials open nothing."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, cast

import pytest

from .envoy_model import Gateway, Upstream, model_server

pytestmark = pytest.mark.unit

PREFIX = "/llama-stack"
FREE, PREMIUM = "k-free", "k-premium"
ONWARD_SECONDS = 120
MODELS: dict[str, dict[str, Any]] = {
    "open-model": {"cluster": "maas_upstream", "served": "open-model", "key": "maas", "meta": {}},
    "premium-model": {
        "cluster": "maas_model_premium",
        "served": "premium-model",
        "key": "premium",
        "tiers": ["premium"],
        "meta": {},
    },
}
# llama-stack's names for them (`<catalog key>/<public id>`), and one of its own models.
OPEN, CLOSED, OWN = "maas/open-model", "premium/premium-model", "embeddings/all-MiniLM-L6-v2"


@pytest.fixture
def gateway(make_gateway: Callable[..., Gateway]) -> Gateway:
    return make_gateway(models=MODELS, llama_stack_prefix=PREFIX, onward_seconds=ONWARD_SECONDS)


class LlamaStack:
    """llama-stack as the gateway sees it: records what it was sent, answers with a usage."""

    def __init__(self, answer: Upstream | None = None) -> None:
        self.seen: list[tuple[dict[str, str], str]] = []
        self.answer = answer or model_server(total_tokens=40, completion_tokens=10)

    def __call__(self, headers: dict[str, str], body: str) -> tuple[int, list[tuple[str, str]], str]:
        self.seen.append((headers, body))
        return self.answer(headers, body)

    def onward(self) -> str:
        """The credential llama-stack got for its own model calls (from its last request)."""
        headers = self.seen[-1][0]
        auth = headers["authorization"]
        assert auth.startswith("Bearer maas-onward:"), auth
        credential = auth.removeprefix("Bearer ")
        assert json.loads(headers["x-llamastack-provider-data"]) == {"vllm_api_token": credential}
        return credential


def upstreams(llama: LlamaStack) -> dict[str, Upstream]:
    return {"maas_llama_stack": llama, "maas_upstream": model_server(), "maas_model_premium": model_server()}


def front_door(gateway: Gateway, key: str, llama: LlamaStack, path: str = "/v1/chat/completions", **body: Any) -> Any:
    doc = {"model": "maas/open-model", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 8, **body}
    return gateway.call("POST", PREFIX + path, key=key, body=doc, upstream=upstreams(llama))


def onward_chat(gateway: Gateway, credential: str, model: str = "open-model", **headers: str) -> Any:
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 8}
    return gateway.call(
        "POST",
        "/v1/chat/completions",
        key=credential,
        body=body,
        headers=list(headers.items()),
        upstream=upstreams(LlamaStack()),
    )


def test_a_front_door_call_is_charged_its_usage_and_counted_once(gateway: Gateway) -> None:
    llama = LlamaStack()
    tokens, requests = gateway.budget(PREMIUM), gateway.budget(PREMIUM, "requests")
    reply = front_door(gateway, PREMIUM, llama)
    assert reply.status == 200, reply.describe()
    assert reply.int_header("x-ratelimit-consumed-tokens") == 40, reply.describe()
    assert gateway.budget(PREMIUM) == tokens - 40
    assert gateway.budget(PREMIUM, "requests") == requests - 1
    assert gateway.clusters[-1] == "maas_llama_stack"


def test_llama_stack_gets_an_onward_credential_never_the_key(gateway: Gateway) -> None:
    llama = LlamaStack()
    front_door(gateway, PREMIUM, llama, path="/v1/responses", input="hi")
    headers, _ = llama.seen[-1]
    assert PREMIUM not in json.dumps(headers), f"the caller's key reached llama-stack: {headers}"
    assert llama.onward().endswith(":carol"), "the credential does not name the caller"
    assert not any(name.startswith("x-maas-") for name in headers), headers


def test_the_front_door_forwards_the_path_under_the_prefix(gateway: Gateway) -> None:
    """Envoy's prefix_rewrite drops the prefix; the script keeps the rest of the path as it came."""
    llama = LlamaStack()
    reply = gateway.call("GET", PREFIX + "/v1/files?limit=2", key=PREMIUM, upstream=upstreams(llama))
    assert reply.status == 200, reply.describe()
    assert llama.seen, "llama-stack was not called"


@pytest.mark.parametrize(
    ("method", "path"), [("GET", "/v1/models"), ("GET", "/v1/files"), ("POST", "/v1/vector_stores")]
)
def test_other_calls_need_a_key_and_cost_nothing(gateway: Gateway, method: str, path: str) -> None:
    llama = LlamaStack()
    tokens, requests = gateway.budget(PREMIUM), gateway.budget(PREMIUM, "requests")
    reply = gateway.call(method, PREFIX + path, key=PREMIUM, body={"name": "s"}, upstream=upstreams(llama))
    assert reply.status == 200, reply.describe()
    assert reply.int_header("x-ratelimit-remaining-tokens") == tokens, reply.describe()
    assert (gateway.budget(PREMIUM), gateway.budget(PREMIUM, "requests")) == (tokens, requests)
    refused = gateway.call(method, PREFIX + path, key="not-a-key", upstream=upstreams(llama))
    assert refused.status == 401, refused.describe()
    assert len(llama.seen) == 1, "a call without a valid key reached llama-stack"


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/completions", "/v1/responses", "/v1/embeddings"])
def test_every_model_path_is_charged(gateway: Gateway, path: str) -> None:
    tokens = gateway.budget(PREMIUM)
    reply = front_door(gateway, PREMIUM, LlamaStack(), path=path)
    assert reply.status == 200, reply.describe()
    assert gateway.budget(PREMIUM) == tokens - 40


def test_the_responses_estimate_counts_max_output_tokens(gateway: Gateway) -> None:
    """Without usage in the answer (an aborted stream), the estimate stands: prompt bytes plus the
    completion the call allows, here the Responses API's max_output_tokens."""
    no_usage = LlamaStack(lambda h, b: (200, [("content-type", "text/event-stream")], "data: {}\n\n"))
    tokens = gateway.budget(PREMIUM)
    body = {"model": "m", "input": "hi", "max_output_tokens": 77, "stream": True}
    gateway.call("POST", PREFIX + "/v1/responses", key=PREMIUM, body=body, upstream=upstreams(no_usage))
    assert gateway.budget(PREMIUM) == tokens - len(json.dumps(body)) - 77


def test_a_spent_budget_is_refused_before_llama_stack(gateway: Gateway) -> None:
    llama = LlamaStack(model_server(total_tokens=500))
    assert front_door(gateway, FREE, llama).status == 200
    calls = len(llama.seen)
    refused = front_door(gateway, FREE, llama, path="/v1/responses", input="hi")
    assert refused.status == 429, refused.describe()
    assert refused.header("retry-after"), refused.describe()
    assert refused.json()["error"]["type"] == "rate_limit_exceeded"
    assert len(llama.seen) == calls, "the refused call reached llama-stack"


def test_onward_calls_are_not_charged_or_counted(gateway: Gateway) -> None:
    llama = LlamaStack()
    front_door(gateway, PREMIUM, llama)
    tokens, requests = gateway.budget(PREMIUM), gateway.budget(PREMIUM, "requests")
    for _ in range(3):
        reply = onward_chat(gateway, llama.onward())
        assert reply.status == 200, reply.describe()
    assert (gateway.budget(PREMIUM), gateway.budget(PREMIUM, "requests")) == (tokens, requests)


def test_onward_calls_keep_the_callers_model_access(gateway: Gateway) -> None:
    free, premium = LlamaStack(), LlamaStack()
    front_door(gateway, FREE, free)
    front_door(gateway, PREMIUM, premium)
    assert onward_chat(gateway, free.onward(), "premium-model").status == 403
    assert onward_chat(gateway, premium.onward(), "premium-model").status == 200


def test_an_onward_call_works_with_a_spent_budget(gateway: Gateway) -> None:
    """The call that made it was admitted at the front door; its model calls finish it."""
    llama = LlamaStack(model_server(total_tokens=500))
    front_door(gateway, FREE, llama)
    assert front_door(gateway, FREE, llama).status == 429
    assert onward_chat(gateway, llama.onward()).status == 200


def tampered(credential: str, field: int, value: str) -> str:
    parts = credential.split(":", 4)
    parts[field] = value
    return ":".join(parts)


@pytest.mark.parametrize(
    ("field", "value"),
    [(1, "9999999999"), (2, "enterprise"), (3, "0" * 64), (4, "dave")],
    ids=["expiry", "tier", "mac", "user"],
)
def test_a_tampered_onward_credential_is_refused(gateway: Gateway, field: int, value: str) -> None:
    llama = LlamaStack()
    front_door(gateway, FREE, llama)
    reply = onward_chat(gateway, tampered(llama.onward(), field, value))
    assert reply.status == 401, reply.describe()


def test_an_onward_credential_expires(gateway: Gateway) -> None:
    llama = LlamaStack()
    front_door(gateway, PREMIUM, llama)
    credential = llama.onward()
    gateway.clock.advance(ONWARD_SECONDS - 1)
    assert onward_chat(gateway, credential).status == 200
    gateway.clock.advance(2)
    reply = onward_chat(gateway, credential)
    assert reply.status == 401, reply.describe()
    assert "expired" in reply.json()["error"]["message"]


def test_an_onward_credential_opens_no_front_door(gateway: Gateway) -> None:
    llama = LlamaStack()
    front_door(gateway, PREMIUM, llama)
    calls = len(llama.seen)
    reply = front_door(gateway, llama.onward(), llama)
    assert reply.status == 401, reply.describe()
    assert len(llama.seen) == calls


@pytest.mark.parametrize("by_model", [True, False], ids=["routing by model", "one upstream"])
def test_a_client_cannot_pick_the_onward_route(make_gateway: Callable[..., Gateway], by_model: bool) -> None:
    """Envoy picked the route on the client's headers; the script strips them and has it picked again."""
    gateway = make_gateway(models=MODELS if by_model else None, llama_stack_prefix=PREFIX)
    tokens = gateway.budget(PREMIUM)
    reply = onward_chat(gateway, PREMIUM, **{"x-maas-onward": "1", "x-maas-llama-stack": "other"})
    assert reply.status == 200, reply.describe()
    assert gateway.budget(PREMIUM) < tokens, "a client's x-maas-onward header made its call free"


def test_without_the_key_hashing_secret_the_front_door_is_closed(gateway: Gateway) -> None:
    gateway.hmac_file.write_text("")
    gateway.clock.advance(60)  # past the key file's reload
    llama = LlamaStack()
    reply = front_door(gateway, PREMIUM, llama)
    assert reply.status == 503, reply.describe()
    assert not llama.seen


def test_a_path_outside_v1_is_404(gateway: Gateway) -> None:
    llama = LlamaStack()
    reply = gateway.call("GET", PREFIX + "/admin", key=PREMIUM, upstream=upstreams(llama))
    assert reply.status == 404, reply.describe()
    assert not llama.seen


def test_without_llama_stack_the_prefix_is_a_model_path(make_gateway: Callable[..., Gateway]) -> None:
    """llamaStack off: nothing under the prefix reaches a llama-stack, and the key is never swapped."""
    plain = make_gateway(models=MODELS)
    llama = LlamaStack()
    reply = plain.call("GET", PREFIX + "/v1/files", key=PREMIUM, upstream=upstreams(llama))
    assert not llama.seen, reply.describe()


# -- chunking: the configured strategy where a call names none ---------------------------------------

CONFIGURED = {"type": "static", "static": {"max_chunk_size_tokens": 400, "chunk_overlap_tokens": 100}}
CHUNKING_PATHS = ["/v1/vector_stores", "/v1/vector_stores/vs_1/files", "/v1/vector_stores/vs_1/file_batches"]


def chunking_call(gateway: Gateway, path: str, body: Any) -> tuple[Any, LlamaStack]:
    llama = LlamaStack()
    reply = gateway.call("POST", PREFIX + path, key=PREMIUM, body=body, upstream=upstreams(llama))
    return reply, llama


def sent(llama: LlamaStack) -> Any:
    assert llama.seen, "llama-stack was not called"
    return json.loads(llama.seen[-1][1])


@pytest.mark.parametrize("path", CHUNKING_PATHS)
@pytest.mark.parametrize("strategy", [None, {"type": "auto"}], ids=["none", "auto"])
def test_a_call_without_a_strategy_gets_the_configured_one(gateway: Gateway, path: str, strategy: Any) -> None:
    body: dict[str, Any] = {"file_id": "file-1", "file_ids": ["file-1"], "attributes": {"k": "v"}}
    if strategy is not None:
        body["chunking_strategy"] = strategy
    reply, llama = chunking_call(gateway, path, body)
    assert reply.status == 200, reply.describe()
    forwarded = sent(llama)
    assert forwarded["chunking_strategy"] == CONFIGURED, forwarded
    assert {k: v for k, v in forwarded.items() if k != "chunking_strategy"} == {
        k: v for k, v in body.items() if k != "chunking_strategy"
    }, "the rest of the body changed"
    assert llama.seen[-1][0]["content-length"] == str(len(llama.seen[-1][1]))


def test_the_configured_strategy_comes_from_the_values(make_gateway: Callable[..., Gateway]) -> None:
    gateway = make_gateway(models=MODELS, llama_stack_prefix=PREFIX, chunking=(250, 25))
    reply, llama = chunking_call(gateway, "/v1/vector_stores/vs_1/files", {"file_id": "file-1"})
    assert reply.status == 200, reply.describe()
    assert sent(llama)["chunking_strategy"]["static"] == {"max_chunk_size_tokens": 250, "chunk_overlap_tokens": 25}


def test_a_callers_own_strategy_is_kept_and_completed(gateway: Gateway) -> None:
    own = {"type": "static", "static": {"max_chunk_size_tokens": 200, "chunk_overlap_tokens": 20}}
    reply, llama = chunking_call(gateway, "/v1/vector_stores/vs_1/files", {"file_id": "f", "chunking_strategy": own})
    assert reply.status == 200, reply.describe()
    assert sent(llama)["chunking_strategy"] == own
    partial = {"type": "static", "static": {"max_chunk_size_tokens": 300}}
    reply, llama = chunking_call(
        gateway, "/v1/vector_stores/vs_1/files", {"file_id": "f", "chunking_strategy": partial}
    )
    assert reply.status == 200, reply.describe()
    assert sent(llama)["chunking_strategy"]["static"] == {"max_chunk_size_tokens": 300, "chunk_overlap_tokens": 100}
    # The configured overlap (100) is not less than half this size: half the size, OpenAI's bound, instead.
    small = {"type": "static", "static": {"max_chunk_size_tokens": 100}}
    reply, llama = chunking_call(gateway, "/v1/vector_stores/vs_1/files", {"file_id": "f", "chunking_strategy": small})
    assert reply.status == 200, reply.describe()
    assert sent(llama)["chunking_strategy"]["static"] == {"max_chunk_size_tokens": 100, "chunk_overlap_tokens": 50}


def test_a_size_too_large_for_a_number_is_400(gateway: Gateway) -> None:
    raw = '{"file_id": "f", "chunking_strategy": {"type": "static", "static": {"max_chunk_size_tokens": 1e999}}}'
    reply, llama = chunking_call(gateway, "/v1/vector_stores/vs_1/files", raw)
    assert reply.status == 400, reply.describe()
    assert reply.json()["error"]["param"] == "chunking_strategy.static.max_chunk_size_tokens", reply.describe()
    assert not llama.seen


def test_other_strategies_pass_unchanged(gateway: Gateway) -> None:
    contextual = {"type": "contextual", "contextual": {"max_chunk_size_tokens": 700}}
    reply, llama = chunking_call(gateway, "/v1/vector_stores", {"name": "s", "chunking_strategy": contextual})
    assert reply.status == 200, reply.describe()
    assert sent(llama)["chunking_strategy"] == contextual


@pytest.mark.parametrize(
    ("static", "param"),
    [
        ({"max_chunk_size_tokens": 400, "chunk_overlap_tokens": 400}, "chunking_strategy.static.chunk_overlap_tokens"),
        ({"max_chunk_size_tokens": 400, "chunk_overlap_tokens": 800}, "chunking_strategy.static.chunk_overlap_tokens"),
        ({"max_chunk_size_tokens": 400, "chunk_overlap_tokens": -1}, "chunking_strategy.static.chunk_overlap_tokens"),
        ({"max_chunk_size_tokens": "400"}, "chunking_strategy.static.max_chunk_size_tokens"),
        ({"max_chunk_size_tokens": 400.5}, "chunking_strategy.static.max_chunk_size_tokens"),
    ],
    ids=["equal", "larger", "negative", "string", "fraction"],
)
@pytest.mark.parametrize("path", CHUNKING_PATHS)
def test_a_strategy_that_cannot_work_is_400_naming_the_field(
    gateway: Gateway, path: str, static: dict[str, Any], param: str
) -> None:
    strategy = {"type": "static", "static": static}
    reply, llama = chunking_call(gateway, path, {"file_id": "f", "file_ids": ["f"], "chunking_strategy": strategy})
    assert reply.status == 400, reply.describe()
    error = reply.json()["error"]
    assert error["param"] == param and error["code"] == "invalid_chunking_strategy", error
    assert param.rsplit(".", 1)[-1] in error["message"], error
    assert not llama.seen, "llama-stack got a strategy that cannot work"


@pytest.mark.parametrize(
    ("body", "code"),
    [("not json", "invalid_request_body"), ('{"chunking_strategy": "auto"}', "invalid_chunking_strategy")],
)
def test_a_chunking_call_with_a_bad_body_is_400(gateway: Gateway, body: str, code: str) -> None:
    reply, llama = chunking_call(gateway, "/v1/vector_stores/vs_1/files", body)
    assert reply.status == 400, reply.describe()
    assert reply.json()["error"]["code"] == code, reply.describe()
    assert not llama.seen


@pytest.mark.parametrize("path", ["/v1/vector_stores/vs_1/search", "/v1/vector_stores/vs_1", "/v1/files"])
def test_other_vector_store_calls_are_not_touched(gateway: Gateway, path: str) -> None:
    body = {"query": "q", "name": "n"}
    reply, llama = chunking_call(gateway, path, body)
    assert reply.status == 200, reply.describe()
    assert sent(llama) == body


def test_another_tiers_model_is_refused_before_llama_stack(gateway: Gateway) -> None:
    """The 403 the onward call would get, given at the front door: llama-stack 0.7.3 mishandles an
    onward 403 (the next call on its connection waited 5 s and failed). Nothing is charged."""
    llama = LlamaStack()
    tokens, requests = gateway.budget(FREE), gateway.budget(FREE, "requests")
    refused = front_door(gateway, FREE, llama, model=CLOSED)
    assert refused.status == 403, refused.describe()
    assert refused.json()["error"]["code"] == "model_not_allowed", refused.describe()
    assert CLOSED in refused.json()["error"]["message"], refused.describe()
    assert not llama.seen, "a call for another tier's model reached llama-stack"
    assert (gateway.budget(FREE), gateway.budget(FREE, "requests")) == (tokens, requests)
    assert front_door(gateway, PREMIUM, llama, model=CLOSED).status == 200


@pytest.mark.parametrize("model", [OWN, "premium-model", "other/premium-model", "premium/premium-model/x"])
def test_names_the_catalog_does_not_give_are_llama_stacks_to_judge(gateway: Gateway, model: str) -> None:
    llama = LlamaStack()
    reply = front_door(gateway, FREE, llama, model=model)
    assert reply.status == 200, reply.describe()
    assert len(llama.seen) == 1, "the call did not reach llama-stack"


def listing_of(*ids: str) -> Upstream:
    data = [{"id": i, "object": "model", "created": 1, "owned_by": "llama_stack", "custom_metadata": {"n": 1.50}}
            for i in ids]  # fmt: skip
    text = json.dumps({"object": "list", "data": data})
    return lambda h, b: (200, [("content-type", "application/json")], text)


def test_the_listing_hides_other_tiers_models(gateway: Gateway) -> None:
    llama = LlamaStack(listing_of(OPEN, CLOSED, OWN))
    free = gateway.call("GET", PREFIX + "/v1/models", key=FREE, upstream=upstreams(llama))
    assert free.status == 200, free.describe()
    assert [m["id"] for m in free.json()["data"]] == [OPEN, OWN]
    assert free.json()["data"][0]["custom_metadata"] == {"n": 1.50}
    assert int(free.header("content-length") or -1) == len(free.body.encode()), free.describe()
    premium = gateway.call("GET", PREFIX + "/v1/models", key=PREMIUM, upstream=upstreams(llama))
    assert premium.body == llama.answer({}, "")[2], "a listing with nothing to hide was changed"


def test_another_tiers_model_is_not_found(gateway: Gateway) -> None:
    llama = LlamaStack()
    hidden = gateway.call("GET", PREFIX + "/v1/models/" + CLOSED, key=FREE, upstream=upstreams(llama))
    assert hidden.status == 404, hidden.describe()
    assert hidden.json()["error"]["code"] == "model_not_found"
    assert not llama.seen, "the lookup reached llama-stack"
    for key, model in ((PREMIUM, CLOSED), (FREE, OPEN)):
        shown = gateway.call("GET", PREFIX + "/v1/models/" + model, key=key, upstream=upstreams(llama))
        assert shown.status == 200, shown.describe()


def answering(status: int, body: str | bytes, ctype: str = "application/json") -> LlamaStack:
    length = len(body if isinstance(body, bytes) else body.encode())
    # Bytes reach the script as they are (lupa): a body that is not UTF-8.
    text = cast(str, body)
    return LlamaStack(lambda h, b: (status, [("content-type", ctype), ("content-length", str(length))], text))


LLAMA_STACK_ERRORS = [
    # llama-stack 0.7.3's own: a message, no type or code
    (
        404,
        '{"error":{"message":"Model \'x\' not found."}}',
        "Model 'x' not found.",
        "invalid_request_error",
        "not_found",
    ),
    (400, '{"error":{"message":"Invalid value"}}', "Invalid value", "invalid_request_error", "invalid_request"),
    # its router's
    (405, '{"detail":"Method Not Allowed"}', "Method Not Allowed", "invalid_request_error", "method_not_allowed"),
    # FastAPI's validation errors
    (
        422,
        '{"detail":[{"loc":["body","messages",0],"msg":"Field required","type":"missing"}]}',
        "body.messages.0: Field required",
        "invalid_request_error",
        "invalid_request",
    ),
    # a crash in plain text
    (500, "Internal Server Error\n", "llama-stack: Internal Server Error", "server_error", "llama_stack_error"),
    # a crash page that is not UTF-8 (Latin-1): the JSON error stays valid
    (502, b"Bad gateway \xe9t\xe9", "llama-stack: Bad gateway ?t?", "server_error", "llama_stack_error"),
]


ERROR_IDS = ["message-404", "message-400", "router-405", "validation-422", "text-500", "latin1-502"]


@pytest.mark.parametrize(("status", "body", "message", "etype", "code"), LLAMA_STACK_ERRORS, ids=ERROR_IDS)
def test_llama_stacks_errors_reach_the_caller_in_the_openai_form(
    gateway: Gateway, status: int, body: str | bytes, message: str, etype: str, code: str
) -> None:
    ctype = (
        "application/json"
        if (body if isinstance(body, str) else body.decode("latin-1")).startswith("{")
        else "text/plain"
    )
    reply = gateway.call("GET", PREFIX + "/v1/files", key=PREMIUM, upstream=upstreams(answering(status, body, ctype)))
    assert reply.status == status, reply.describe()
    error = openai_error_of(reply.body)
    assert (error.get("message"), error.get("type"), error.get("code")) == (message, etype, code), reply.describe()
    assert reply.header("content-type") == "application/json", reply.describe()
    assert int(reply.header("content-length") or -1) == len(reply.body.encode()), reply.describe()


def openai_error_of(body: str) -> dict[str, Any]:
    """The `error` object of a JSON body; empty when the body is not JSON or has none."""
    try:
        doc = json.loads(body)
    except ValueError:
        return {}
    error = doc.get("error") if isinstance(doc, dict) else None
    return error if isinstance(error, dict) else {}


def test_a_complete_openai_error_and_a_success_pass_byte_for_byte(gateway: Gateway) -> None:
    complete = '{"error": {"message": "m", "type": "invalid_request_error", "code": "x", "extra": 1}}'
    for status, body in ((400, complete), (200, '{"detail": "not an error"}')):
        reply = gateway.call("GET", PREFIX + "/v1/files", key=PREMIUM, upstream=upstreams(answering(status, body)))
        assert (reply.status, reply.body) == (status, body), reply.describe()


def test_a_long_text_error_is_cut_on_a_character_boundary(gateway: Gateway) -> None:
    text = "a" + "é" * 400  # 801 bytes: the cut at byte 500 falls inside a character
    reply = gateway.call(
        "GET", PREFIX + "/v1/files", key=PREMIUM, upstream=upstreams(answering(500, text, "text/html"))
    )
    message = reply.json()["error"]["message"]
    assert message.startswith("llama-stack: aéé") and message.endswith("..."), message
    assert "\ufffd" not in message, f"a character was cut in two: {message!r}"
    assert len(message.encode()) <= len("llama-stack: ") + 500 + 3, message


def test_model_servers_errors_are_left_as_they_are(gateway: Gateway) -> None:
    """Only llama-stack's answers are rewritten: a model server's own error body passes."""
    body = {"model": "open-model", "messages": [{"role": "user", "content": "hi"}]}
    reply = gateway.call(
        "POST", "/v1/chat/completions", key=PREMIUM, body=body,
        upstream={"maas_upstream": lambda h, b: (418, [("content-type", "text/plain")], "teapot")},
    )  # fmt: skip
    assert (reply.status, reply.body) == (418, "teapot"), reply.describe()


def test_an_error_without_a_body_passes_as_it_is(gateway: Gateway) -> None:
    """Envoy hands the step no body to rewrite: the status reaches the caller unchanged."""
    reply = gateway.call("GET", PREFIX + "/v1/files", key=PREMIUM, upstream=upstreams(answering(502, "")))
    assert (reply.status, reply.body) == (502, ""), reply.describe()


def test_the_gateways_own_413_is_not_called_llama_stacks(make_gateway: Callable[..., Gateway]) -> None:
    """A body over the gateway's buffer gets Envoy's 413 before llama-stack sees the call: it is not
    rewritten as an error of llama-stack's."""
    gateway = make_gateway(models=MODELS, llama_stack_prefix=PREFIX, onward_seconds=ONWARD_SECONDS, buffer_limit=64)
    llama = LlamaStack()
    reply = front_door(gateway, PREMIUM, llama, messages=[{"role": "user", "content": "x" * 200}])
    assert reply.status == 413, reply.describe()
    assert "llama-stack" not in reply.body, reply.describe()
    assert not llama.seen


def test_an_empty_listing_passes(gateway: Gateway) -> None:
    llama = answering(200, "")
    reply = gateway.call("GET", PREFIX + "/v1/models", key=FREE, upstream=upstreams(llama))
    assert (reply.status, reply.body) == (200, ""), reply.describe()
