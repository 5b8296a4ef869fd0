"""No unaccounted model call: whatever shape a call's body has, the gateway either charges it
exactly its usage or refuses it with a 4xx OpenAI-style error, and an aborted stream costs more
than 0.

Each test reads the key's budget through /v1/models (which costs nothing) before and after, so
the charge is measured on the counter the gateway enforces, not taken from a header.
"""

from __future__ import annotations

import json
import time

import pytest

from .support import (
    TIER_REQUESTS,
    Gateway,
    Reply,
    aborted_stream,
    await_window,
    remaining_tokens,
    wait_for_charge,
    words,
)

pytestmark = [pytest.mark.e2e, pytest.mark.ratelimit]

TEST_SPAN_S = 15.0
# After the charge shows, how long a larger (wrong) charge would take to show too.
SETTLE_S = 0.5
MIN_BUDGET = 500
# What the gateway may answer for a body it cannot account for (never 429: that is a budget).
REFUSALS = (400, 413, 415)


def chat_body(gateway: Gateway, prompt: str, **extra: object) -> dict[str, object]:
    return {"model": gateway.model, "messages": [{"role": "user", "content": prompt}], "max_tokens": 8, **extra}


def assert_charged_exactly(gateway: Gateway, key: str, before: int, reply: Reply) -> None:
    """A 200 must carry usage and cost exactly that; a 4xx must be an OpenAI-style error and cost 0."""
    if reply.status in REFUSALS:
        error = reply.body.get("error") if isinstance(reply.body, dict) else None
        assert isinstance(error, dict) and error.get("message"), f"refused without a JSON error: {reply.describe()}"
        assert remaining_tokens(gateway, key) == before, "a refused call was charged"
        return
    assert reply.status == 200, reply.describe()
    total = reply.usage.get("total_tokens")
    assert total, f"a model call passed without usage for the gateway to charge: {reply.chunks[-2:] or reply.body}"
    wait_for_charge(gateway, key, before - total)
    time.sleep(SETTLE_S)
    after = remaining_tokens(gateway, key)
    assert after == before - total, f"charged {before - after} tokens for a usage of {total}"


def budgeted(gateway: Gateway, key_pool) -> tuple[str, int]:
    """The shared enterprise key (these calls cost a few dozen tokens) with a whole test's time
    left in its window, and its budget before the test."""
    key = key_pool.shared("enterprise")
    await_window(gateway, key, TEST_SPAN_S)
    before = remaining_tokens(gateway, key)
    assert before >= MIN_BUDGET, f"the shared enterprise key has only {before} tokens left in this window"
    return key, before


STREAM_SHAPES = {
    "no stream_options": lambda body: {**body, "stream": True},
    "include_usage false": lambda body: {**body, "stream": True, "stream_options": {"include_usage": False}},
    "stream_options null": lambda body: {**body, "stream": True, "stream_options": None},
    "stream first, other options": lambda body: {
        "stream": True,
        "stream_options": {"continuous_usage_stats": False},
        **body,
    },
}


@pytest.mark.parametrize("shape", list(STREAM_SHAPES))
def test_streams_are_charged_whatever_the_client_asks(gateway: Gateway, key_pool, shape: str) -> None:
    key, before = budgeted(gateway, key_pool)
    body = STREAM_SHAPES[shape](chat_body(gateway, words(12)))
    reply = gateway.post_raw(key, json.dumps(body).encode())
    assert reply.status != 200 or reply.chunks, f"{shape}: a 200 without a stream: {reply.describe()}"
    assert_charged_exactly(gateway, key, before, reply)


def escaped_stream_body(gateway: Gateway) -> bytes:
    """Valid JSON whose keys are written with escapes and odd whitespace: the parsed document is a
    plain streaming chat."""
    body = json.dumps(chat_body(gateway, words(9)), indent=3)
    text = body.replace('"max_tokens"', '"\\u006dax_tokens"', 1)[:-1].rstrip() + ',\n\t"\\u0073tream" :\r\n true }'
    return text.encode()


def test_escaped_key_stream_is_charged(gateway: Gateway, key_pool) -> None:
    key, before = budgeted(gateway, key_pool)
    raw = escaped_stream_body(gateway)
    assert json.loads(raw)["stream"] is True  # the test's own premise
    reply = gateway.post_raw(key, raw)
    assert reply.status != 200 or reply.chunks, f"the escaped 'stream' key was not understood: {reply.describe()}"
    assert_charged_exactly(gateway, key, before, reply)


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
def test_non_json_content_type_is_charged_or_refused(gateway: Gateway, key_pool, content_type: str | None) -> None:
    key, before = budgeted(gateway, key_pool)
    raw = json.dumps(chat_body(gateway, words(7), stream=True)).encode()
    reply = gateway.post_raw(key, raw, content_type=content_type)
    assert_charged_exactly(gateway, key, before, reply)


INVALID_BODIES = {
    "not json": b"stream=true&model=x",
    "duplicate stream key": b'{"stream": false, "stream": true, "messages": []}',
    "stream as a string": b'{"stream": "true", "messages": [{"role": "user", "content": "x"}]}',
    "trailing data": b'{"messages": []} {"stream": true}',
    "empty": b"",
    "byte-order mark": b'\xef\xbb\xbf{"stream": true, "messages": []}',
    "NaN": b'{"stream": true, "temperature": NaN, "messages": []}',
    "lone surrogate": b'{"stream": true, "messages": [{"role": "user", "content": "\\ud800"}]}',
    "include_usage as a number": b'{"stream": true, "stream_options": {"include_usage": 0}, "messages": []}',
    "nested too deep": b'{"messages": ' + b"[" * 300 + b"]" * 300 + b"}",
}


@pytest.mark.parametrize("case", list(INVALID_BODIES))
def test_bodies_the_gateway_cannot_account_for_are_refused(gateway: Gateway, key_pool, case: str) -> None:
    key = key_pool.shared("enterprise")
    before = remaining_tokens(gateway, key)
    reply = gateway.post_raw(key, INVALID_BODIES[case])
    assert reply.status == 400, f"{case}: {reply.describe()}"
    error = reply.body.get("error") if isinstance(reply.body, dict) else None
    assert isinstance(error, dict) and error.get("type") == "invalid_request_error" and error.get("message"), (
        reply.describe()
    )
    assert remaining_tokens(gateway, key) == before, f"{case}: a refused call was charged"


def test_aborted_stream_is_charged(gateway: Gateway, key_pool) -> None:
    """Policy (charts/maas-gateway README): usage if the model server's final chunk reached the
    gateway, else the request's bytes plus max_tokens for each choice; never 0."""
    key = key_pool.one("enterprise")  # the estimate can be large: a key of its own
    await_window(gateway, key, TEST_SPAN_S)
    before = remaining_tokens(gateway, key)
    max_tokens = 1000
    body = json.dumps(chat_body(gateway, words(300), stream=True, max_tokens=max_tokens)).encode()
    received = aborted_stream(str(gateway.http.base_url), key, body)
    assert received.startswith(b"HTTP/1.1 200"), f"the stream did not start: {received[:200]!r}"
    estimate = len(body) + max_tokens
    wait_for_charge(gateway, key, before - 1)  # fails loudly if the abort cost nothing
    time.sleep(SETTLE_S)
    charged = before - remaining_tokens(gateway, key)
    assert 0 < charged <= estimate, f"charged {charged} for an aborted stream; the documented estimate is {estimate}"


# Failed calls cost 0 tokens (charts/maas-gateway README, "Token accounting"): each sends one call
# that fails, with the key's budget read through /v1/models before and after.
OVER_BUFFER_BYTES = 17 * 1024 * 1024  # above the chart's envoy.bufferLimitBytes (16 MiB)


def failed_call(gateway: Gateway, key: str, case: str) -> Reply:
    body = chat_body(gateway, words(20))
    http = gateway.http
    if case == "upstream 404 (unknown model)":
        response = http.post("/v1/chat/completions", json={**body, "model": "no-such-model"}, headers=bearer(key))
    elif case == "upstream 404 (unknown route)":
        response = http.post("/v1/no-such-route", json=body, headers=bearer(key))
    elif case == "upstream 400 (messages not a list)":
        response = http.post("/v1/chat/completions", json={**body, "messages": "hello"}, headers=bearer(key))
    elif case == "gateway 401 (another key)":
        response = http.post("/v1/chat/completions", json=body, headers=bearer(key + "x"))
    elif case == "gateway 413 (body over the buffer limit)":
        big = json.dumps({**body, "padding": "x" * OVER_BUFFER_BYTES}).encode()
        response = http.post(
            "/v1/chat/completions", content=big, headers={**bearer(key), "Content-Type": "application/json"}
        )
    elif case == "gateway 415 (compressed body)":
        headers = {**bearer(key), "Content-Type": "application/json", "Content-Encoding": "gzip"}
        response = http.post("/v1/chat/completions", content=json.dumps(body).encode(), headers=headers)
    else:
        raise AssertionError(f"unknown case {case!r}")
    try:
        parsed = response.json()
    except ValueError:
        parsed = response.text
    return Reply(response.status_code, response.headers, parsed)


FAILED_CALLS = (
    "upstream 404 (unknown model)",
    "upstream 404 (unknown route)",
    "upstream 400 (messages not a list)",
    "gateway 401 (another key)",
    "gateway 413 (body over the buffer limit)",
    "gateway 415 (compressed body)",
)


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.mark.parametrize("case", FAILED_CALLS)
def test_a_failed_call_costs_no_tokens(gateway: Gateway, key_pool, case: str) -> None:
    key, before = budgeted(gateway, key_pool)
    reply = failed_call(gateway, key, case)
    assert reply.status >= 400, f"{case}: the call did not fail: {reply.describe()}"
    expected = int(case.split()[1])
    assert reply.status == expected, f"{case}: expected {expected}, got {reply.describe()}"
    time.sleep(SETTLE_S)  # a charge lands at stream end, just after the reply
    after = remaining_tokens(gateway, key)
    assert after == before, f"{case} cost {before - after} tokens; a failed call costs 0"


def test_a_429_costs_no_tokens(gateway: Gateway, key_pool) -> None:
    """Refused for requests (the token budget is far from spent): the refusals cost nothing."""
    key = key_pool.one("free")
    await_window(gateway, key, TEST_SPAN_S)
    for i in range(TIER_REQUESTS["free"]):
        reply = gateway.chat(key, "tiny", max_tokens=1)
        assert reply.status == 200, f"request {i + 1}: {reply.describe()}"
        assert reply.rate.remaining_tokens is not None, f"request {i + 1}: no remaining-tokens: {reply.describe()}"
        wait_for_charge(gateway, key, reply.rate.remaining_tokens)
    before = remaining_tokens(gateway, key)
    assert before > 0, "the free key's tokens are spent: the 429s below would be for tokens"
    for _ in range(3):
        refused = gateway.chat(key, words(30), max_tokens=8)
        assert refused.status == 429, refused.describe()
    time.sleep(SETTLE_S)
    after = remaining_tokens(gateway, key)
    assert after == before, f"three 429s cost {before - after} tokens; a refused call costs 0"
