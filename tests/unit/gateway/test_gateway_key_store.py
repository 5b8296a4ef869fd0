"""The gateway's key store: SHA-256 and HMAC-SHA-256 in the chart's Lua (run in LuaJIT, the Lua
Envoy embeds), hashed key lines, expiry and revocation, and plaintext lines still read."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import lupa.luajit21 as lupa
import pytest
from harness import gateway_keys
from harness.gateway_keys import KeyRecord

from .envoy_model import CHART, HMAC_SECRET, Clock, Gateway

# FIPS 180-4 examples (NIST CSRC "SHA256.pdf", "SHA-256 example" set) and the long-message vector.
SHA256_VECTORS = [
    (b"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
    (
        b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1",
    ),
    (b"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
    (b"a" * 1_000_000, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"),
]
# RFC 4231 test cases 1, 2 and 6 (a key longer than the block is hashed first).
HMAC_VECTORS = [
    (b"\x0b" * 20, b"Hi There", "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
    (b"Jefe", b"what do ya want for nothing?", "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"),
    (
        b"\xaa" * 131,
        b"Test Using Larger Than Block-Size Key - Hash Key First",
        "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
    ),
]


@pytest.fixture(scope="module")
def sha256() -> object:
    lua = lupa.LuaRuntime(encoding=None)
    return lua.execute((CHART / "files" / "sha256.lua").read_text() + "\nreturn sha256")


@pytest.mark.parametrize(("message", "digest"), SHA256_VECTORS, ids=["abc", "two-blocks", "empty", "million-a"])
def test_the_lua_sha256_matches_the_fips_180_4_vectors(sha256: object, message: bytes, digest: str) -> None:
    assert sha256.hex(message) == digest.encode()  # type: ignore[attr-defined]


@pytest.mark.parametrize(("key", "message", "mac"), HMAC_VECTORS, ids=["case1", "case2", "case6-long-key"])
def test_the_lua_hmac_sha256_matches_the_rfc_4231_vectors(sha256: object, key: bytes, message: bytes, mac: str) -> None:
    assert sha256.hmac_hex(key, message) == mac.encode()  # type: ignore[attr-defined]


def test_the_harness_hashes_keys_as_the_gateway_does(sha256: object) -> None:
    key = gateway_keys.new_key()
    lua_mac = sha256.hmac_hex(HMAC_SECRET.encode(), key.encode()).decode()  # type: ignore[attr-defined]
    assert gateway_keys.hash_key(HMAC_SECRET, key) == lua_mac


# -- the key store at the gateway -----------------------------------------------------------------


def at(clock: Clock, seconds: float = 0) -> datetime:
    return datetime.fromtimestamp(clock.now + seconds, UTC)


def hashed(key: str, user: str = "erin", tier: str = "free", **fields: object) -> KeyRecord:
    return KeyRecord(tier, user, hash=gateway_keys.hash_key(HMAC_SECRET, key), **fields)  # type: ignore[arg-type]


def store(gateway: Gateway, *records: KeyRecord) -> None:
    gateway.keys_file.write_text(gateway_keys.render(list(records)))


def error_message(reply: object) -> str:
    return str(json.loads(reply.body)["error"]["message"])  # type: ignore[attr-defined]


def test_a_hashed_key_is_accepted_and_the_file_never_holds_it(make_gateway: Callable[..., Gateway]) -> None:
    gateway = make_gateway()
    key = gateway_keys.new_key()
    store(gateway, hashed(key))
    assert key not in gateway.keys_file.read_text()
    reply = gateway.chat(key)
    assert reply.status == 200, reply.describe()
    assert "info: maas: loaded 1 API keys (1 hashed)" in reply.logs, reply.logs


def test_a_wrong_key_against_hashed_lines_gets_the_invalid_key_message(make_gateway: Callable[..., Gateway]) -> None:
    gateway = make_gateway()
    key = gateway_keys.new_key()
    store(gateway, hashed(key))
    reply = gateway.chat(key + "x")
    assert reply.status == 401, reply.describe()
    assert error_message(reply) == "Invalid API key provided."


def test_a_hashed_line_under_another_secret_matches_nothing(make_gateway: Callable[..., Gateway]) -> None:
    gateway = make_gateway()
    key = gateway_keys.new_key()
    store(gateway, KeyRecord("free", "erin", hash=gateway_keys.hash_key("another-secret", key)))
    assert gateway.chat(key).status == 401


def test_hashed_lines_without_the_hashing_secret_are_skipped_and_logged(make_gateway: Callable[..., Gateway]) -> None:
    gateway = make_gateway()
    gateway.hmac_file.unlink()
    key = gateway_keys.new_key()
    store(gateway, hashed(key), KeyRecord("free", "alice", key="k-free"))
    reply = gateway.chat(key)
    assert reply.status == 401
    assert any("ignoring a key of user erin: hashed keys need" in line for line in reply.logs), reply.logs
    assert gateway.chat("k-free").status == 200, "the plaintext line stopped working"


def test_a_key_past_its_expiry_gets_401_saying_expired(make_gateway: Callable[..., Gateway], clock: Clock) -> None:
    gateway = make_gateway(reload_seconds=0)
    key = gateway_keys.new_key()
    store(gateway, hashed(key, created=at(clock, -60), expires=at(clock, 5)))
    assert gateway.chat(key).status == 200
    clock.advance(5)
    reply = gateway.chat(key)
    assert reply.status == 401, reply.describe()
    body = json.loads(reply.body)["error"]
    assert "expired" in body["message"] and body["type"] == "invalid_api_key", body
    assert "info: maas: refused an expired API key of user erin" in reply.logs, reply.logs
    assert all(key not in line for line in reply.logs), "the log names the key"


def test_a_revoked_key_gets_401_saying_revoked_and_the_users_other_key_works(
    make_gateway: Callable[..., Gateway], clock: Clock
) -> None:
    gateway = make_gateway(reload_seconds=30)
    old, other = gateway_keys.new_key(), gateway_keys.new_key()
    store(gateway, hashed(old), hashed(other))
    assert gateway.chat(old).status == 200
    store(gateway, hashed(old, revoked=at(clock)), hashed(other))
    clock.advance(30)
    reply = gateway.chat(old)
    assert reply.status == 401, reply.describe()
    assert "revoked" in error_message(reply)
    assert "info: maas: refused a revoked API key of user erin" in reply.logs, reply.logs
    assert gateway.chat(other).status == 200


def test_a_revocation_in_the_future_is_a_grace_period(make_gateway: Callable[..., Gateway], clock: Clock) -> None:
    gateway = make_gateway(reload_seconds=0)
    key = gateway_keys.new_key()
    store(gateway, hashed(key, revoked=at(clock, 60)))
    assert gateway.chat(key).status == 200
    clock.advance(60)
    assert "revoked" in error_message(gateway.chat(key))


def test_plaintext_lines_keep_expiry_and_revocation(make_gateway: Callable[..., Gateway], clock: Clock) -> None:
    gateway = make_gateway(reload_seconds=0)
    store(
        gateway,
        KeyRecord("free", "alice", key="k-free", expires=at(clock, -1)),
        KeyRecord("premium", "carol", key="k-premium", revoked=at(clock, -1)),
        KeyRecord("free", "bob", key="k-free-2", labels={"team": "a"}),
    )
    assert "expired" in error_message(gateway.chat("k-free"))
    assert "revoked" in error_message(gateway.chat("k-premium"))
    assert gateway.chat("k-free-2").status == 200


def test_a_line_with_an_unreadable_time_is_skipped_naming_the_user(make_gateway: Callable[..., Gateway]) -> None:
    gateway = make_gateway()
    gateway.keys_file.write_text("free alice k-free expires=tomorrow\n")
    reply = gateway.chat("k-free")
    assert reply.status == 401, "a key whose expiry cannot be read must not work"
    assert any("user alice: expires is not a UTC time" in line for line in reply.logs), reply.logs


def test_the_key_validation_route_refuses_expired_keys(make_gateway: Callable[..., Gateway], clock: Clock) -> None:
    gateway = make_gateway(reload_seconds=0)
    key = gateway_keys.new_key()
    store(gateway, hashed(key, expires=at(clock, -1)))
    provider = json.dumps({"vllm_api_token": key})
    body = {"api_key": key, "request": {"path": "/v1/models", "headers": {"x-llamastack-provider-data": provider}}}
    reply = gateway.call("POST", "/auth/validate", body=body)
    assert reply.status == 401, reply.describe()
    assert "expired" in error_message(reply)


def test_the_harness_reads_every_field_back() -> None:
    now = datetime(2026, 12, 6, 3, 0, 0, tzinfo=UTC)
    record = hashed("k", created=now, expires=now + timedelta(days=30), revoked=now, labels={"team": "ml"})
    (back,) = gateway_keys.parse_records(gateway_keys.render([record]))
    assert back == record
    assert gateway_keys.parse(gateway_keys.render([record])) == [], "a hashed key has no plaintext to give"
    assert gateway_keys.parse("free alice k-free\n") == [gateway_keys.ApiKey("free", "alice", "k-free")]
