"""The key store tests fail when the gateway's key checks break: each case runs the key store's
Lua unit tests (tests/unit/gateway/test_gateway_key_store.py) against a copy of files/gateway.lua
with the hash comparison, the expiry check or the revocation check broken."""

from __future__ import annotations

from pathlib import Path

import pytest

from meta.test_gateway_routing_detected import Breakage, run_breakage

pytestmark = pytest.mark.meta

MODULE = "tests/unit/gateway/test_gateway_key_store.py"

BREAKAGES = {
    # The presented key is hashed without the install's secret: no hashed line ever matches.
    "hash without the secret": Breakage(
        "entry = store.hashed[sha256.hmac_hex(store.secret, key)]",
        "entry = store.hashed[sha256.hex(key)]",
        frozenset({"test_a_hashed_key_is_accepted_and_the_file_never_holds_it"}),
        "401",
        frozenset({"test_plaintext_lines_keep_expiry_and_revocation"}),
    ),
    # Any key matches the first hashed line: the comparison is skipped.
    "hash not compared": Breakage(
        "entry = store.hashed[sha256.hmac_hex(store.secret, key)]",
        "local _, first = next(store.hashed)\n    entry = first",
        frozenset({"test_a_wrong_key_against_hashed_lines_gets_the_invalid_key_message"}),
        "200",
        frozenset({"test_a_hashed_key_is_accepted_and_the_file_never_holds_it"}),
    ),
    # Expiry is never checked.
    "expiry ignored": Breakage(
        "if entry.expires ~= nil and now >= entry.expires then",
        "if false then",
        frozenset(
            {
                "test_a_key_past_its_expiry_gets_401_saying_expired",
                "test_plaintext_lines_keep_expiry_and_revocation",
                "test_the_key_validation_route_refuses_expired_keys",
            }
        ),
        "200",
        frozenset({"test_a_revoked_key_gets_401_saying_revoked_and_the_users_other_key_works"}),
    ),
    # Revocation is never checked.
    "revocation ignored": Breakage(
        "if entry.revoked ~= nil and now >= entry.revoked then",
        "if false then",
        frozenset(
            {
                "test_a_revoked_key_gets_401_saying_revoked_and_the_users_other_key_works",
                "test_a_revocation_in_the_future_is_a_grace_period",
            }
        ),
        "200",
        frozenset({"test_a_key_past_its_expiry_gets_401_saying_expired"}),
    ),
}


@pytest.mark.parametrize("name", BREAKAGES)
def test_key_store_tests_fail_when_key_checks_break(name: str, tmp_path: Path) -> None:
    run_breakage(name, BREAKAGES[name], MODULE, tmp_path)
