"""Gateway authentication: keys required, both header forms, client identity headers ignored."""

from __future__ import annotations

import pytest

from .support import TIER_TOKENS, Gateway, Reply

pytestmark = [pytest.mark.e2e, pytest.mark.auth]

# Headers a naive gateway might trust for identity or tier; the contract says they are
# stripped before routing and never trusted.
SPOOFED = {
    "x-tier": "enterprise",
    "x-maas-tier": "enterprise",
    "x-user-tier": "enterprise",
    "x-user": "enterprise-user-01",
    "x-user-id": "enterprise-user-01",
    "x-maas-user": "enterprise-user-01",
    "x-api-key-user": "enterprise-user-01",
    "x-auth-request-user": "enterprise-user-01",
}


def assert_401_json(reply: Reply) -> None:
    assert reply.status == 401, reply.describe()
    assert isinstance(reply.body, dict) and isinstance(reply.body.get("error"), dict), (
        f"401 without a JSON error: {reply.describe()}"
    )
    assert reply.body["error"].get("message"), f"401 error has no message: {reply.describe()}"


@pytest.mark.parametrize("path", ["models", "chat"])
def test_no_key_is_rejected_with_json_401(gateway: Gateway, path: str) -> None:
    reply = gateway.models(None) if path == "models" else gateway.chat(None, "hello")
    assert_401_json(reply)


@pytest.mark.parametrize("scheme", ["Bearer", "APIKEY"])
def test_bad_key_is_rejected_with_json_401(gateway: Gateway, scheme: str) -> None:
    assert_401_json(gateway.chat("not-a-key-0000", "hello", scheme=scheme))
    assert_401_json(gateway.models("not-a-key-0000", scheme=scheme))


@pytest.mark.parametrize("scheme", ["Bearer", "APIKEY"])
def test_both_header_forms_are_accepted(gateway: Gateway, key_pool, scheme: str) -> None:
    key = key_pool.shared("enterprise")
    listing = gateway.models(key, scheme=scheme)
    assert listing.status == 200, listing.describe()
    reply = gateway.chat(key, "header form check", max_tokens=8, scheme=scheme)
    assert reply.status == 200, reply.describe()
    assert reply.content, f"empty content: {reply.describe()}"


def test_identity_headers_from_client_change_nothing(gateway: Gateway, key_pool) -> None:
    key = key_pool.one("free")
    reply = gateway.chat(key, "spoof check", max_tokens=4, headers=SPOOFED)
    assert reply.status == 200, reply.describe()
    assert reply.rate.limit_tokens == TIER_TOKENS["free"], (
        f"a free key was not held to the free budget: {reply.describe()}"
    )
    # Identity headers alone are no credential either.
    assert_401_json(gateway.chat(None, "spoof check", headers=SPOOFED))


# What the model server must never receive: the gateway key and every identity header a client
# could send (the gateway's strip list, charts/maas-gateway).
NEVER_FORWARDED = {"authorization", *SPOOFED}


def test_model_server_never_receives_the_key_or_client_identity(gateway: Gateway, key_pool) -> None:
    key = key_pool.shared("premium")  # three requests: the chat and two reads of the record
    before = gateway.received_headers(key)
    if before is None:
        pytest.skip(
            "the model server does not report received header names (only the local target's recording tap does)"
        )
    reply = gateway.chat(key, "strip check", max_tokens=2, headers=SPOOFED)
    assert reply.status == 200, reply.describe()
    after = gateway.received_headers(key)
    assert after is not None and after["count"] > before["count"], f"the chat never reached the model server: {after}"
    chat = [r for r in after["requests"] if r["seq"] > before["count"] and r["path"] == "/v1/chat/completions"]
    assert chat, f"no chat among the requests the model server received: {after['requests'][-5:]}"
    received = {(r["method"], r["path"], name) for r in after["requests"] for name in r["names"]}
    leaked = {entry for entry in received if entry[2] in NEVER_FORWARDED}
    assert not leaked, f"the model server received {sorted(leaked)}"
