"""The gateway's contracts (charts/maas-gateway README), checked on its Lua script in milliseconds.

The script runs in LuaJIT with an injected clock, between a model of Envoy's rate limit filters
and of envoyproxy/ratelimit (envoy_model.py). Each test is named after the contract it pins; the
e2e tests (tests/e2e/test_ratelimit.py, test_accounting.py) prove the real Envoy agrees.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .envoy_model import DOWN, Clock, Gateway, Tier, model_server, streaming_server

pytestmark = pytest.mark.unit

# A moment that starts a window of every tier in both tier sets (a multiple of all windows).
ALIGN = 120
FREE = "k-free"
FREE_2 = "k-free-2"
PREMIUM = "k-premium"
ENTERPRISE = "k-enterprise"


def spend_requests(gateway: Gateway, key: str, count: int) -> None:
    for i in range(count):
        reply = gateway.chat(key, upstream=model_server(total_tokens=1))
        assert reply.status == 200, f"request {i + 1} of {count}: {reply.describe()}"


def spent_tokens(gateway: Gateway, user: str) -> int:
    """Everything charged to a user's token counters (not capped at the limit, unlike headers)."""
    return sum(n for (kind, _, u, _, _), n in gateway.limiter.counters.items() if kind == "tokens" and u == user)


def spent_requests(gateway: Gateway, user: str) -> int:
    return sum(n for (kind, _, u, _, _), n in gateway.limiter.counters.items() if kind == "requests" and u == user)


def assert_own_429(reply, retry_after: int) -> None:
    assert reply.status == 429, reply.describe()
    assert reply.json()["error"]["type"] == "rate_limit_exceeded", reply.describe()
    assert reply.header("retry-after") == str(retry_after), f"Retry-After should be {retry_after}: {reply.describe()}"
    assert reply.header("x-should-retry") == "false", reply.describe()


# -- windows --------------------------------------------------------------------------------------


def test_request_window_holds_for_its_whole_length(gateway: Gateway, clock: Clock) -> None:
    tier = gateway.tiers["free"]
    clock.to_window_start(tier.requests_window, offset=1)
    spend_requests(gateway, FREE, tier.requests_limit)
    # Past the half-window mark (a budget divided by the wrong window would reset there) and up to
    # the last second, still refused.
    for at in (tier.requests_window // 2 + 1, tier.requests_window - 1):
        clock.to_window_start(tier.requests_window, offset=0)
        clock.advance(at - tier.requests_window)
        assert gateway.chat(FREE, upstream=model_server(total_tokens=1)).status == 429, f"passed at {at}s"
    clock.advance(1)  # the bound
    reply = gateway.chat(FREE, upstream=model_server(total_tokens=1))
    assert reply.status == 200, f"the new request window did not open at its bound: {reply.describe()}"
    assert reply.int_header("x-ratelimit-remaining-requests") == tier.requests_limit - 1, reply.describe()


def test_token_window_holds_for_its_whole_length(gateway: Gateway, clock: Clock) -> None:
    tier = gateway.tiers["free"]
    clock.to_window_start(ALIGN, offset=1)
    assert gateway.chat(FREE, upstream=model_server(total_tokens=tier.tokens_limit + 1)).status == 200
    clock.advance(tier.tokens_window - 2)  # the window's last second
    assert gateway.chat(FREE).status == 429
    clock.advance(1)
    reply = gateway.chat(FREE, upstream=model_server(total_tokens=10))
    assert reply.status == 200, f"the new token window did not open at its bound: {reply.describe()}"
    assert reply.int_header("x-ratelimit-remaining-tokens") == tier.tokens_limit - 10, reply.describe()


def test_windows_are_epoch_aligned(gateway: Gateway, clock: Clock) -> None:
    """Requests in the last second of a window and the first of the next use different budgets."""
    tier = gateway.tiers["free"]
    clock.to_window_start(tier.requests_window, offset=-1)
    spend_requests(gateway, FREE, tier.requests_limit)
    clock.advance(1)
    spend_requests(gateway, FREE, tier.requests_limit)
    assert gateway.chat(FREE).status == 429


@pytest.mark.parametrize("tier_name", ["free", "premium", "enterprise"])
def test_every_tier_enforces_its_own_request_limit(gateway: Gateway, clock: Clock, tier_name: str) -> None:
    key = {"free": FREE, "premium": PREMIUM, "enterprise": ENTERPRISE}[tier_name]
    tier = gateway.tiers[tier_name]
    clock.to_window_start(tier.requests_window, offset=3)
    spend_requests(gateway, key, tier.requests_limit)
    reply = gateway.chat(key)
    assert_own_429(reply, tier.requests_window - 3)
    assert reply.int_header("x-ratelimit-limit-requests") == tier.requests_limit, reply.describe()
    assert reply.int_header("x-ratelimit-limit-tokens") == tier.tokens_limit, reply.describe()


def test_budgets_are_per_user(gateway: Gateway, clock: Clock) -> None:
    tier = gateway.tiers["free"]
    clock.to_window_start(tier.requests_window, offset=1)
    spend_requests(gateway, FREE, tier.requests_limit)
    assert gateway.chat(FREE).status == 429
    assert gateway.chat(FREE_2).status == 200


# -- Retry-After ----------------------------------------------------------------------------------


@pytest.mark.parametrize("offset", [1, 10, 75, 119])
def test_retry_after_of_a_request_limit_429_is_the_request_window_reset(
    gateway: Gateway, clock: Clock, offset: int
) -> None:
    tier = gateway.tiers["free"]
    clock.to_window_start(tier.requests_window, offset=offset)
    spend_requests(gateway, FREE, tier.requests_limit)
    reply = gateway.chat(FREE)
    reset = tier.requests_window - offset % tier.requests_window
    assert_own_429(reply, reset)
    assert reply.int_header("x-ratelimit-reset-requests") == reset, reply.describe()
    assert reply.int_header("x-ratelimit-remaining-requests") == 0, reply.describe()


@pytest.mark.parametrize("offset", [1, 10, 75, 119])
def test_retry_after_of_a_token_limit_429_is_the_token_window_reset(
    gateway: Gateway, clock: Clock, offset: int
) -> None:
    tier = gateway.tiers["free"]
    clock.to_window_start(ALIGN, offset=offset)
    assert gateway.chat(FREE, upstream=model_server(total_tokens=tier.tokens_limit + 5)).status == 200
    reply = gateway.chat(FREE)
    reset = tier.tokens_window - offset % tier.tokens_window
    assert_own_429(reply, reset)
    assert reply.int_header("x-ratelimit-reset-tokens") == reset, reply.describe()
    assert reply.int_header("x-ratelimit-remaining-tokens") == 0, reply.describe()


def test_retry_after_when_both_limits_are_spent_is_the_later_reset(gateway: Gateway, clock: Clock) -> None:
    tier = gateway.tiers["free"]
    clock.to_window_start(ALIGN, offset=70)
    spend_requests(gateway, FREE, tier.requests_limit - 1)
    assert gateway.chat(FREE, upstream=model_server(total_tokens=tier.tokens_limit + 1)).status == 200
    # Refused by the token filter (it runs first): its window ends first, so the client could come
    # back then and still be refused for requests. The token 429 says when the token window ends.
    reply = gateway.chat(FREE)
    assert_own_429(reply, tier.tokens_window - 70 % tier.tokens_window)


def test_a_tier_with_a_zero_token_limit_refuses_with_the_token_reset(tmp_path: Path, clock: Clock) -> None:
    tiers = {"none": Tier(requests_limit=5, requests_window=120, tokens_limit=0, tokens_window=60)}
    gateway = Gateway(keys=[("none", "zed", "k-none")], tmp_path=tmp_path, clock=clock, tiers=tiers)
    clock.to_window_start(120, offset=15)
    reply = gateway.chat("k-none")
    assert_own_429(reply, 45)
    assert reply.header("x-ratelimit-limit-tokens") == "0", reply.describe()
    assert reply.header("x-ratelimit-remaining-tokens") == "0", reply.describe()
    assert reply.header("x-ratelimit-reset-tokens") == "45", reply.describe()
    assert spent_requests(gateway, "zed") == 0
    assert gateway.call("GET", "/v1/models", key="k-none").status == 200, "listing models needs no tokens"


def test_a_model_server_429_keeps_its_own_retry_after(gateway: Gateway) -> None:
    def busy(headers: dict[str, str], body: str) -> tuple[int, list[tuple[str, str]], str]:
        return 429, [("content-type", "application/json"), ("retry-after", "7")], '{"error": {"message": "busy"}}'

    reply = gateway.chat(FREE, upstream=busy)
    assert reply.status == 429
    assert reply.all("retry-after") == ["7"], reply.describe()
    assert reply.header("x-should-retry") is None, reply.describe()


# -- budget headers -------------------------------------------------------------------------------


def test_remaining_tokens_on_a_json_2xx_is_the_budget_before_minus_usage(gateway: Gateway, clock: Clock) -> None:
    clock.to_window_start(120, offset=1)
    for total in (13, 41, 7):
        before = gateway.budget(PREMIUM)
        reply = gateway.chat(PREMIUM, upstream=model_server(total_tokens=total))
        assert reply.status == 200, reply.describe()
        assert reply.int_header("x-ratelimit-remaining-tokens") == before - total, reply.describe()
        assert reply.int_header("x-ratelimit-consumed-tokens") == total, reply.describe()
        assert gateway.budget(PREMIUM) == before - total, "the header and the enforced budget differ"


def test_remaining_tokens_never_goes_below_zero(gateway: Gateway, clock: Clock) -> None:
    clock.to_window_start(120, offset=1)
    reply = gateway.chat(FREE, upstream=model_server(total_tokens=gateway.tiers["free"].tokens_limit + 50))
    assert reply.status == 200
    assert reply.int_header("x-ratelimit-remaining-tokens") == 0, reply.describe()


def test_remaining_tokens_on_a_stream_is_the_balance_before_the_request(gateway: Gateway, clock: Clock) -> None:
    clock.to_window_start(120, offset=1)
    before = gateway.budget(PREMIUM)
    reply = gateway.chat(PREMIUM, stream=True, upstream=streaming_server(total_tokens=25))
    assert reply.status == 200, reply.describe()
    assert reply.int_header("x-ratelimit-remaining-tokens") == before, reply.describe()
    assert reply.header("x-ratelimit-consumed-tokens") is None, "streams carry no consumed header"
    assert gateway.budget(PREMIUM) == before - 25


def test_remaining_requests_counts_this_request(gateway: Gateway, clock: Clock) -> None:
    tier = gateway.tiers["premium"]
    clock.to_window_start(ALIGN, offset=7)
    for n in range(1, 4):
        reply = gateway.chat(PREMIUM)
        assert reply.int_header("x-ratelimit-remaining-requests") == tier.requests_limit - n, reply.describe()
        assert reply.int_header("x-ratelimit-limit-requests") == tier.requests_limit, reply.describe()
        assert reply.int_header("x-ratelimit-reset-requests") == tier.requests_window - 7, reply.describe()
        assert reply.int_header("x-ratelimit-reset-tokens") == tier.tokens_window - 7, reply.describe()


def test_the_rate_limit_service_headers_are_replaced(gateway: Gateway) -> None:
    reply = gateway.chat(FREE)
    for raw in ("x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset"):
        assert reply.header(raw) is None, f"{raw} leaked: {reply.describe()}"
    for name in ("limit-requests", "remaining-requests", "reset-requests", "limit-tokens", "remaining-tokens"):
        assert len(reply.all(f"x-ratelimit-{name}")) == 1, reply.describe()


def test_listing_models_costs_neither_a_request_nor_tokens(gateway: Gateway, clock: Clock) -> None:
    clock.to_window_start(120, offset=1)
    gateway.chat(FREE, upstream=model_server(total_tokens=20))
    for _ in range(10):
        listing = gateway.call("GET", "/v1/models", key=FREE)
        assert listing.status == 200, listing.describe()
        assert listing.int_header("x-ratelimit-remaining-tokens") == gateway.tiers["free"].tokens_limit - 20
        assert listing.int_header("x-ratelimit-remaining-requests") == gateway.tiers["free"].requests_limit - 1
    assert spent_requests(gateway, "alice") == 1
    assert spent_tokens(gateway, "alice") == 20


# -- charging -------------------------------------------------------------------------------------


def test_a_successful_call_is_charged_its_usage(gateway: Gateway) -> None:
    gateway.chat(ENTERPRISE, upstream=model_server(total_tokens=321))
    assert spent_tokens(gateway, "dave") == 321
    assert spent_requests(gateway, "dave") == 1


def test_a_stream_is_charged_the_usage_of_its_final_chunk(gateway: Gateway) -> None:
    seen: list[dict[str, object]] = []

    def server(headers: dict[str, str], body: str) -> tuple[int, list[tuple[str, str]], str]:
        seen.append(json.loads(body))
        return streaming_server(total_tokens=77)(headers, body)

    reply = gateway.chat(ENTERPRISE, stream=True, upstream=server)
    assert reply.status == 200
    assert seen[0]["stream_options"] == {"include_usage": True}, "the gateway did not ask for usage"
    assert spent_tokens(gateway, "dave") == 77


def test_a_stream_without_usage_is_charged_the_estimate(gateway: Gateway) -> None:
    def no_usage(headers: dict[str, str], body: str) -> tuple[int, list[tuple[str, str]], str]:
        return 200, [("content-type", "text/event-stream")], 'data: {"choices": []}\n\ndata: [DONE]\n\n'

    body = {"model": "m", "messages": [], "stream": True, "max_tokens": 40, "n": 3}
    raw = json.dumps(body)
    gateway.call("POST", "/v1/chat/completions", key=ENTERPRISE, body=raw, upstream=no_usage)
    assert spent_tokens(gateway, "dave") == len(raw) + 40 * 3


@pytest.mark.parametrize(
    ("fields", "completion"),
    [
        ({"max_completion_tokens": 9, "max_tokens": 50}, 9),
        ({"max_tokens": 50}, 50),
        ({}, 4096),
        ({"max_tokens": -1}, 4096),
    ],
)
def test_the_estimate_takes_the_completion_the_call_allows(gateway: Gateway, fields: dict, completion: int) -> None:
    def no_usage(headers: dict[str, str], body: str) -> tuple[int, list[tuple[str, str]], str]:
        return 200, [("content-type", "text/event-stream")], "data: [DONE]\n\n"

    raw = json.dumps({"model": "m", "messages": [], "stream": True, **fields})
    gateway.call("POST", "/v1/completions", key=ENTERPRISE, body=raw, upstream=no_usage)
    assert spent_tokens(gateway, "dave") == len(raw) + completion


def failing_upstream(status: int):
    return model_server(status=status)


FAILED_CALLS = {
    "upstream 400": {"upstream": failing_upstream(400)},
    "upstream 404": {"upstream": failing_upstream(404)},
    "upstream 500": {"upstream": failing_upstream(500)},
    "upstream 503": {"upstream": failing_upstream(503)},
    "model server down": {"upstream": DOWN},
    "gateway 400 (bad body)": {"body": "{not json"},
    "gateway 413 (body too large)": {"body": json.dumps({"messages": [], "pad": "x" * 2048})},
    "gateway 415 (compressed)": {"headers": [("content-encoding", "gzip")]},
}


@pytest.mark.parametrize("case", list(FAILED_CALLS))
def test_a_failed_call_costs_no_tokens(make_gateway, clock: Clock, case: str) -> None:
    gateway = make_gateway(buffer_limit=1024)
    clock.to_window_start(120, offset=1)
    before = gateway.budget(ENTERPRISE)
    spec = FAILED_CALLS[case]
    body = spec.get("body", json.dumps({"model": "m", "messages": [], "max_tokens": 5}))
    reply = gateway.call(
        "POST",
        "/v1/chat/completions",
        key=ENTERPRISE,
        body=body,
        headers=spec.get("headers"),
        upstream=spec.get("upstream"),
    )
    assert not 200 <= reply.status < 300, reply.describe()
    assert gateway.budget(ENTERPRISE) == before, f"{case} was charged"
    assert spent_tokens(gateway, "dave") == 0, f"{case} was charged"


def test_a_refused_token_429_costs_no_tokens_and_no_request(gateway: Gateway, clock: Clock) -> None:
    clock.to_window_start(120, offset=1)
    gateway.chat(FREE, upstream=model_server(total_tokens=250))
    for _ in range(3):
        assert gateway.chat(FREE).status == 429
    assert spent_tokens(gateway, "alice") == 250, "a 429 was charged tokens"
    assert spent_requests(gateway, "alice") == 1, "a request refused for tokens used up a request"


def test_a_refused_request_429_costs_no_tokens(gateway: Gateway, clock: Clock) -> None:
    tier = gateway.tiers["free"]
    clock.to_window_start(tier.requests_window, offset=1)
    spend_requests(gateway, FREE, tier.requests_limit)
    for _ in range(3):
        assert gateway.chat(FREE, upstream=model_server(total_tokens=10)).status == 429
    assert spent_tokens(gateway, "alice") == tier.requests_limit, "a 429 was charged tokens"


@pytest.mark.parametrize(
    ("auth", "problem"),
    [
        (None, "Missing API key"),
        ("  ", "Missing API key"),
        ("Bearer ", "Missing API key"),
        ("apikey", "Missing API key"),
        ("Bearer nope", "Invalid API key"),
        ("Basic k-free", "not of a form this gateway reads"),
        ("k-free", "not of a form this gateway reads"),
    ],
)
def test_a_401_costs_nothing_and_names_the_problem(gateway: Gateway, auth: str | None, problem: str) -> None:
    headers = [("authorization", auth)] if auth else []
    reply = gateway.call("POST", "/v1/chat/completions", headers=headers, body={"messages": []})
    assert reply.status == 401, reply.describe()
    error = reply.json()["error"]
    assert error["type"] == "invalid_api_key"
    assert problem in error["message"], error
    assert "k-free" not in reply.body, "the 401 quotes the key"
    assert gateway.limiter.counters == {}, "a 401 reached the rate limit service"


def test_a_403_from_key_validation_costs_nothing(gateway: Gateway) -> None:
    body = {"api_key": FREE, "request": {"path": "/v1/chat/completions", "headers": {}, "params": {}}}
    reply = gateway.call("POST", "/auth/validate", body=body)
    assert reply.status == 403, reply.describe()
    assert gateway.limiter.counters == {}, "key validation reached the rate limit service"


# -- key validation -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("provider_data", "status"),
    [
        ({"vllm_api_token": FREE}, 200),
        ({"vllm_api_token": FREE, "openai_api_key": FREE}, 200),
        ({"vllm_api_token": PREMIUM}, 403),
        ({"vllm_api_token": FREE, "openai_api_key": PREMIUM}, 403),
        ({"openai_api_key": FREE}, 403),
        ("not json", 400),
    ],
)
def test_key_validation_requires_the_callers_own_key(gateway: Gateway, provider_data: object, status: int) -> None:
    sent = provider_data if isinstance(provider_data, str) else json.dumps(provider_data)
    body = {"api_key": FREE, "request": {"path": "/v1/x", "headers": {"x-llamastack-provider-data": sent}}}
    reply = gateway.call("POST", "/auth/validate", body=body)
    assert reply.status == status, reply.describe()
    if status == 200:
        assert reply.json() == {"principal": "alice"}


def test_key_validation_refuses_unknown_keys_and_other_methods(gateway: Gateway) -> None:
    assert gateway.call("POST", "/auth/validate", body={"api_key": "nope"}).status == 401
    assert gateway.call("POST", "/auth/validate", body={"key": FREE}).status == 400
    assert gateway.call("GET", "/auth/validate").status == 405


# -- identity and keys ----------------------------------------------------------------------------


def test_identity_headers_and_the_key_never_reach_the_model_server(gateway: Gateway) -> None:
    seen: list[dict[str, str]] = []

    def server(headers: dict[str, str], body: str) -> tuple[int, list[tuple[str, str]], str]:
        seen.append(headers)
        return model_server()(headers, body)

    spoof = [("X-Maas-User", "mallory"), ("x-tier", "enterprise"), ("X-Forwarded-User", "m"), ("x-user-id", "m")]
    reply = gateway.call(
        "POST", "/v1/chat/completions", key=FREE, headers=spoof, body={"messages": []}, upstream=server
    )
    assert reply.status == 200
    forwarded = {k.lower() for k in seen[0]}
    assert not forwarded & {"x-maas-user", "x-tier", "x-forwarded-user", "x-user-id", "authorization"}, seen[0]
    assert seen[0]["content-type"] == "application/json"


def test_both_authorization_schemes_are_accepted(gateway: Gateway) -> None:
    for auth in (f"APIKEY {FREE}", f"apikey {FREE}", f"Bearer {FREE}", f"  bearer   {FREE} "):
        reply = gateway.call("POST", "/v1/chat/completions", headers=[("authorization", auth)], body={"messages": []})
        assert reply.status == 200, f"{auth!r}: {reply.describe()}"


def test_a_rotated_key_file_is_read_after_the_reload_period(gateway: Gateway, clock: Clock) -> None:
    assert gateway.chat(FREE).status == 200
    gateway.write_keys([("free", "alice", "k-new")])
    clock.advance(29)
    assert gateway.chat("k-new").status == 401, "re-read before the reload period"
    clock.advance(1)
    assert gateway.chat("k-new").status == 200
    assert gateway.chat(FREE).status == 401


# -- limiter down ---------------------------------------------------------------------------------


def test_failure_mode_closed_refuses_when_the_limiter_is_down(gateway: Gateway) -> None:
    gateway.limiter.down = True
    reply = gateway.chat(FREE)
    assert reply.status == 503, reply.describe()
    assert reply.json()["error"]["code"] == "rate_limit_service_unavailable"


def test_failure_mode_open_passes_and_logs_the_unchecked_call(make_gateway) -> None:
    gateway = make_gateway(failure_mode="open")
    gateway.limiter.down = True
    reply = gateway.chat(FREE)
    assert reply.status == 200, reply.describe()
    assert any("passed unchecked (failureMode open)" in line for line in reply.logs), reply.logs


def test_requests_with_a_body_the_gateway_cannot_read_are_refused(gateway: Gateway) -> None:
    for raw in (
        "",
        "[]",
        '{"stream": "true"}',
        '{"stream": true, "stream_options": []}',
        '{"stream_options": {"include_usage": 1}}',
    ):
        reply = gateway.call("POST", "/v1/chat/completions", key=FREE, body=raw)
        assert reply.status == 400, f"{raw!r}: {reply.describe()}"
        assert reply.json()["error"]["code"] == "invalid_request_body"
