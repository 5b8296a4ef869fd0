"""MaaS discovery faults, against httpx's MockTransport (no sockets): 429 with Retry-After is
retried within a bounded time, refusals and bad bodies name the endpoint, the key never shows."""

from __future__ import annotations

import httpx
import pytest
from harness import maas
from harness.waiting import FakeClock

pytestmark = pytest.mark.unit

KEY = "sk-maas-secret-0123456789"
ENDPOINT = "https://maas.example"
LISTING = {"object": "list", "data": [{"id": "meta-llama/Llama-3.2-3B-Instruct"}, {"id": "ibm-granite/granite"}]}


def transport(*answers: httpx.Response) -> tuple[httpx.MockTransport, list[httpx.Request]]:
    seen: list[httpx.Request] = []
    queue = list(answers)

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return queue.pop(0) if len(queue) > 1 else queue[0]

    return httpx.MockTransport(handle), seen


def test_429_is_retried_after_the_servers_retry_after() -> None:
    mock, seen = transport(
        httpx.Response(429, headers={"Retry-After": "3"}, json={"error": {"type": "rate_limit_exceeded"}}),
        httpx.Response(429, headers={"Retry-After": "1"}, json={"error": {"type": "rate_limit_exceeded"}}),
        httpx.Response(200, json=LISTING),
    )
    clock = FakeClock()
    ids = maas.get_models(ENDPOINT, KEY, transport=mock, waiter=clock.waiter())
    assert ids == ["meta-llama/Llama-3.2-3B-Instruct", "ibm-granite/granite"]
    assert clock.sleeps == [3.0, 1.0], f"waits did not follow Retry-After: {clock.sleeps}"
    assert [r.headers["authorization"] for r in seen] == [f"Bearer {KEY}"] * 3
    assert str(seen[0].url) == "https://maas.example/v1/models"


def test_a_huge_retry_after_is_capped() -> None:
    mock, _ = transport(httpx.Response(429, headers={"Retry-After": "3600"}), httpx.Response(200, json=LISTING))
    clock = FakeClock()
    maas.get_models(ENDPOINT, KEY, transport=mock, waiter=clock.waiter())
    assert clock.sleeps == [maas.RETRY_AFTER_CAP_S]


def test_a_429_that_never_ends_fails_within_the_deadline() -> None:
    mock, seen = transport(httpx.Response(429, headers={"Retry-After": "7"}, text="slow down"))
    clock = FakeClock()
    with pytest.raises(maas.MaasError, match=r"MaaS endpoint https://maas.example/v1/models answered 429") as caught:
        maas.get_models(ENDPOINT, KEY, transport=mock, waiter=clock.waiter())
    # attempts at 0, 7, ... 63 s: the first one made at or past the 60 s deadline is the last
    assert len(seen) == 10 and clock.now == 63.0, (len(seen), clock.now)
    assert KEY not in str(caught.value)


@pytest.mark.parametrize("status", [401, 403])
def test_a_refused_key_names_the_endpoint_and_status_not_the_key(status: int) -> None:
    body = {"error": {"message": f"Invalid API key provided: {KEY}", "type": "invalid_api_key"}}
    mock, seen = transport(httpx.Response(status, json=body))
    with pytest.raises(maas.MaasError) as caught:
        maas.get_models(ENDPOINT, KEY, transport=mock)
    message = str(caught.value)
    assert f"https://maas.example/v1/models answered {status}" in message and "MAAS_API_KEY" in message
    assert KEY not in message, "the key leaked into the error"
    assert len(seen) == 1, "a refused key was retried"


def test_unreachable_names_the_endpoint_and_the_error() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    with pytest.raises(maas.MaasError, match=r"https://maas.example/v1/models unreachable: ConnectError: .*refused"):
        maas.get_models(ENDPOINT, KEY, transport=httpx.MockTransport(refuse))


def test_a_non_json_listing_is_reported() -> None:
    mock, _ = transport(httpx.Response(200, text="<html>login</html>"))
    with pytest.raises(maas.MaasError, match="not JSON"):
        maas.get_models(ENDPOINT, KEY, transport=mock)


def test_maas_model_picks_one_of_several() -> None:
    listed = ["meta-llama/Llama-3.2-3B-Instruct", "ibm-granite/granite"]
    assert maas.select_models(listed) == listed
    assert maas.select_models(listed, "ibm-granite/granite") == ["ibm-granite/granite"]
    with pytest.raises(maas.MaasError, match="MAAS_MODEL='nope' is not listed"):
        maas.select_models(listed, "nope")


def test_settings_from_env_read_tls_choices() -> None:
    assert maas.MaasSettings.from_env({"MAAS_CA_BUNDLE": "/ca.pem"}).tls_verify == "/ca.pem"
    assert maas.MaasSettings.from_env({"MAAS_TLS_VERIFY": "false"}).tls_verify is False
    assert maas.MaasSettings.from_env({}).tls_verify is True
    assert maas.MaasSettings.from_env({"MAAS_ENDPOINT": "standin"}).is_standin


def test_retry_after_parses_seconds_only() -> None:
    assert maas.retry_after_seconds("2") == 2.0
    assert maas.retry_after_seconds(None) is None
    assert maas.retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") is None
