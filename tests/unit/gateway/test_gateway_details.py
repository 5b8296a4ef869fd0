"""The gateway's Lua in detail: the key file, the identity headers, what is forwarded, the
estimate's corner cases, key validation's refusals, the fail-closed wrapper and the log lines
operators rely on. Found by the mutation pass (benchmarks/gateway_mutation.py): each test
kills mutants the contract tests let through."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from .envoy_model import Clock, Gateway, Tier, model_server, streaming_server

pytestmark = pytest.mark.unit

FREE = "k-free"
ENTERPRISE = "k-enterprise"
# charts/maas-gateway README: the identity headers a client could send, removed before routing.
IDENTITY_HEADERS = (
    "x-maas-user",
    "x-maas-anything",
    "x-user",
    "x-user-id",
    "x-tier",
    "x-user-tier",
    "x-api-tier",
    "x-api-key-user",
    "x-auth-request-user",
    "x-auth-request-email",
    "x-forwarded-user",
    "x-remote-user",
    "x-authenticated-userid",
    "x-consumer-username",
)

Seen = list[tuple[dict[str, str], str]]


def recording(seen: Seen, answer=None):
    """An upstream that records what it received and answers like `answer` (a model server)."""
    inner = answer or model_server()

    def upstream(headers: dict[str, str], body: str):
        seen.append((headers, body))
        return inner(headers, body)

    return upstream


# -- identity -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", IDENTITY_HEADERS)
def test_every_identity_header_is_removed(gateway: Gateway, name: str) -> None:
    seen: Seen = []
    headers = [(name.upper(), "mallory"), ("x-request-id", "kept")]
    reply = gateway.call("POST", "/v1/chat/completions", key=FREE, headers=headers, body={}, upstream=recording(seen))
    assert reply.status == 200, reply.describe()
    assert name not in seen[0][0], f"{name} reached the model server"
    assert seen[0][0].get("x-request-id") == "kept", "a header that names nobody was removed"


# -- the key file ---------------------------------------------------------------------------------


def test_an_unset_key_file_variable_refuses_every_key(make_gateway: Callable[..., Gateway]) -> None:
    gateway = make_gateway(keys_env_set=False)
    reply = gateway.chat(FREE)
    assert reply.status == 401, reply.describe()
    assert any("MAAS_API_KEYS_FILE is not set" in line for line in reply.logs), reply.logs


def test_an_unreadable_key_file_refuses_every_key(make_gateway: Callable[..., Gateway]) -> None:
    gateway = make_gateway()
    gateway.keys_file.unlink()
    reply = gateway.chat(FREE)
    assert reply.status == 401, reply.describe()
    assert any("cannot read the API key file" in line for line in reply.logs), reply.logs


def test_the_key_file_is_counted_and_unknown_tiers_are_ignored(make_gateway: Callable[..., Gateway]) -> None:
    gateway = make_gateway()
    gateway.write_keys([("free", "alice", FREE), ("gold", "eve", "k-gold"), ("premium", "carol", "k-p")])
    gateway.keys_file.write_text("# comment\n" + gateway.keys_file.read_text() + "\nnot a key line\n")
    reply = gateway.chat(FREE)
    assert reply.status == 200
    assert "info: maas: loaded 2 API keys (0 hashed)" in reply.logs, reply.logs
    assert any("user eve: unknown tier gold" in line for line in reply.logs), reply.logs
    assert gateway.chat("k-gold").status == 401


def test_a_briefly_unreadable_key_file_keeps_the_loaded_keys(gateway: Gateway, clock: Clock) -> None:
    assert gateway.chat(FREE).status == 200
    gateway.keys_file.unlink()
    clock.advance(31)
    assert gateway.chat(FREE).status == 200, "the keys were dropped while the Secret was being updated"


def test_reload_seconds_zero_reads_the_key_file_once(make_gateway: Callable[..., Gateway], clock: Clock) -> None:
    gateway = make_gateway(reload_seconds=0)
    assert gateway.chat(FREE).status == 200
    gateway.write_keys([("free", "alice", "k-new")])
    clock.advance(3600)
    assert gateway.chat(FREE).status == 200
    assert gateway.chat("k-new").status == 401


def test_reload_seconds_one_rereads_every_second(make_gateway: Callable[..., Gateway], clock: Clock) -> None:
    gateway = make_gateway(reload_seconds=1)
    assert gateway.chat(FREE).status == 200
    gateway.write_keys([("free", "alice", "k-new")])
    clock.advance(1)
    assert gateway.chat("k-new").status == 200


# -- what the model server receives --------------------------------------------------------------


def test_a_call_that_needs_no_change_is_forwarded_byte_for_byte(gateway: Gateway) -> None:
    for body in (
        '{"model": "m",   "messages": [], "max_tokens": 1.50}',
        '{"stream": true, "stream_options": {"include_usage": true}, "x": 1e2}',
    ):
        seen: Seen = []
        reply = gateway.call(
            "POST", "/v1/chat/completions", key=FREE, body=body, upstream=recording(seen, streaming_server())
        )
        assert reply.status == 200, reply.describe()
        assert seen[0][1] == body, f"rewritten: {seen[0][1]!r}"
        assert "stream_options" in body or "stream_options" not in seen[0][1]


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/completions"])
@pytest.mark.parametrize(
    "options",
    [None, {}, {"include_usage": False}, {"include_usage": None}, {"continuous_usage_stats": False}],
    ids=["none", "empty", "false", "null", "other option"],
)
def test_a_stream_is_made_to_report_usage_keeping_its_options(gateway: Gateway, path: str, options) -> None:
    body: dict[str, object] = {"model": "m", "prompt": "p", "stream": True}
    if options is not None:
        body["stream_options"] = options
    seen: Seen = []
    reply = gateway.call("POST", path, key=FREE, body=body, upstream=recording(seen, streaming_server(total_tokens=9)))
    assert reply.status == 200, reply.describe()
    headers, sent = seen[0]
    forwarded = json.loads(sent)
    expected = {**{k: v for k, v in (options or {}).items() if k != "include_usage"}, "include_usage": True}
    assert forwarded["stream_options"] == expected
    assert headers["content-length"] == str(len(sent.encode())), "content-length does not match the new body"
    assert headers["content-type"] == "application/json"


def test_other_streams_are_forwarded_unchanged(gateway: Gateway) -> None:
    body = '{"model": "m", "input": "x", "stream": true}'
    seen: Seen = []
    gateway.call("POST", "/v1/responses", key=FREE, body=body, upstream=recording(seen, streaming_server()))
    assert seen[0][1] == body


@pytest.mark.parametrize(("method", "path"), [("GET", "/v1/files"), ("DELETE", "/v1/files/x"), ("POST", "/v1/models")])
def test_calls_without_a_model_body_are_forwarded_without_parsing(gateway: Gateway, method: str, path: str) -> None:
    seen: Seen = []
    reply = gateway.call(method, path, key=FREE, upstream=recording(seen))
    assert reply.status == 200, reply.describe()
    assert len(seen) == 1


@pytest.mark.parametrize(
    ("raw", "phrase"),
    [(None, "is empty"), ("", "is empty"), ("x", "not valid JSON"), ("[]", "must be a JSON object")],
)
def test_an_unreadable_model_call_body_is_refused_saying_why(gateway: Gateway, raw: str | None, phrase: str) -> None:
    reply = gateway.call("POST", "/v1/chat/completions", key=FREE, body=raw)
    assert reply.status == 400, reply.describe()
    assert phrase in reply.json()["error"]["message"], reply.describe()


# -- the estimate ---------------------------------------------------------------------------------


def no_usage(headers: dict[str, str], body: str):
    return 200, [("content-type", "text/event-stream")], "data: [DONE]\n\n"


@pytest.mark.parametrize(
    ("fields", "completion", "choices"),
    [
        ({"max_tokens": 0}, 0, 1),
        ({"max_tokens": 2.5}, 2, 1),
        ({"max_tokens": 3, "n": 0}, 3, 1),
        ({"max_tokens": 3, "n": 2}, 3, 2),
    ],
)
def test_the_estimate_in_corner_cases(gateway: Gateway, fields: dict, completion: int, choices: int) -> None:
    raw = json.dumps({"model": "m", "messages": [], "stream": True, **fields})
    gateway.call("POST", "/v1/chat/completions", key=ENTERPRISE, body=raw, upstream=no_usage)
    assert gateway.charges == [len(raw) + completion * choices]


@pytest.mark.parametrize(("status", "charged"), [(200, 30), (201, 30), (299, 30), (300, 0), (199, 0), (302, 0)])
def test_only_a_2xx_is_charged(gateway: Gateway, status: int, charged: int) -> None:
    def answer(headers: dict[str, str], body: str):
        doc = {"usage": {"total_tokens": 30}}
        return status, [("content-type", "application/json")], json.dumps(doc)

    gateway.chat(ENTERPRISE, upstream=answer)
    assert gateway.charges == [charged]


def test_a_2xx_without_usage_and_without_a_body_to_estimate_is_not_an_error(gateway: Gateway) -> None:
    def listing(headers: dict[str, str], body: str):
        return 200, [("content-type", "application/json")], '{"data": []}'

    reply = gateway.call("GET", "/v1/files", key=FREE, upstream=listing)
    assert reply.status == 200
    assert reply.header("x-ratelimit-limit-requests") is not None, reply.describe()


# -- key validation -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (None, 400),
        ("", 400),
        ('"just a string"', 400),
        ("[]", 400),
        ({"api_key": FREE}, 403),
        ({"api_key": FREE, "request": "x"}, 403),
        ({"api_key": FREE, "request": {"path": "/v1/x"}}, 403),
        ({"api_key": FREE, "request": {"headers": {"x-llamastack-provider-data": "[1]"}}}, 400),
        ({"api_key": FREE, "request": {"headers": {"x-llamastack-provider-data": '"s"'}}}, 400),
    ],
)
def test_key_validation_refuses_what_it_cannot_check(gateway: Gateway, body, status: int) -> None:
    reply = gateway.call("POST", "/auth/validate", body=body)
    assert reply.status == status, reply.describe()
    assert reply.json()["error"]["message"]


@pytest.mark.parametrize("user", ['quote"user', "back\\slash", "ctrl\x01char"])
def test_the_principal_is_valid_json_whatever_the_user_name(make_gateway: Callable[..., Gateway], user: str) -> None:
    gateway = make_gateway()
    gateway.write_keys([("free", user, FREE)])
    headers = {"x-llamastack-provider-data": json.dumps({"vllm_api_token": FREE})}
    reply = gateway.call("POST", "/auth/validate", body={"api_key": FREE, "request": {"headers": headers}})
    assert reply.status == 200, reply.describe()
    assert reply.json() == {"principal": user}


# -- /v1/models paths -----------------------------------------------------------------------------


def test_a_tier_with_no_tokens_may_still_list_and_read_models(make_gateway: Callable[..., Gateway]) -> None:
    tiers = {"none": Tier(requests_limit=5, requests_window=120, tokens_limit=0, tokens_window=60)}
    gateway = make_gateway(tiers=tiers)
    gateway.write_keys([("none", "zed", "k-none")])
    for path in ("/v1/models", "/v1/models/m", "/v1/models?x=1"):
        assert gateway.call("GET", path, key="k-none").status == 200, path
    assert gateway.call("GET", "/v1/modelsx", key="k-none").status == 429


# -- fail closed, and the log of unchecked calls --------------------------------------------------


def test_an_error_in_the_request_step_answers_500_instead_of_passing(gateway: Gateway) -> None:
    seen: Seen = []
    reply = gateway.call(
        "POST", "/v1/chat/completions", key=FREE, body={}, upstream=recording(seen), broken_metadata=True
    )
    assert reply.status == 500, reply.describe()
    assert reply.json()["error"]["code"] == "gateway_error"
    assert not seen, "the request reached the model server"
    assert any("request step failed" in line for line in reply.logs), reply.logs


UNCHECKED = "passed unchecked (failureMode open)"


def test_checked_calls_are_not_logged_as_unchecked(gateway: Gateway) -> None:
    for status in (200, 404):
        reply = gateway.chat(FREE, upstream=model_server(status=status))
        assert not any(UNCHECKED in line for line in reply.logs), reply.logs


@pytest.mark.parametrize(("status", "logged"), [(200, True), (399, True), (400, False), (503, False)])
def test_failure_mode_open_logs_each_call_that_went_through_unchecked(
    make_gateway: Callable[..., Gateway], status: int, logged: bool
) -> None:
    gateway = make_gateway(failure_mode="open")
    gateway.limiter.down = True

    def answer(headers: dict[str, str], body: str):
        return status, [("content-type", "text/plain")], "x"

    reply = gateway.chat(FREE, upstream=answer)
    assert any(UNCHECKED in line for line in reply.logs) == logged, reply.logs


def test_retry_after_in_the_last_second_of_a_window_is_one(gateway: Gateway, clock: Clock) -> None:
    tier = gateway.tiers["free"]
    clock.to_window_start(tier.requests_window, offset=tier.requests_window - 1)
    for _ in range(tier.requests_limit):
        assert gateway.chat(FREE, upstream=model_server(total_tokens=1)).status == 200
    reply = gateway.chat(FREE)
    assert reply.status == 429
    assert reply.header("retry-after") == "1", reply.describe()


def test_retry_after_when_both_budgets_are_exhausted_is_the_later_reset(gateway: Gateway, clock: Clock) -> None:
    """Refused for requests with the token budget spent to exactly 0 (not over it, so the token
    check still admits): both windows are exhausted and Retry-After is the later of their ends."""
    tier = gateway.tiers["free"]
    clock.to_window_start(120, offset=1)
    share = tier.tokens_limit // (tier.requests_limit - 1)
    assert share * (tier.requests_limit - 1) == tier.tokens_limit, "the test needs the budget split evenly"
    for _ in range(tier.requests_limit - 1):
        assert gateway.chat(FREE, upstream=model_server(total_tokens=share)).status == 200
    assert gateway.chat(FREE, upstream=model_server(total_tokens=0)).status == 200
    reply = gateway.chat(FREE)
    assert reply.status == 429, reply.describe()
    assert reply.int_header("x-ratelimit-remaining-tokens") == 0, reply.describe()
    assert reply.int_header("x-ratelimit-remaining-requests") == 0, reply.describe()
    later = max(tier.requests_window - 1, tier.tokens_window - 1)
    assert reply.header("retry-after") == str(later), reply.describe()
