"""API keys with a lifecycle, through `python -m harness keys` and the real Envoy of the local stack:
a created key works within the reload period and is stored only as its hash; an expired or
revoked key gets 401 saying so while the user's other keys keep working; a plaintext store is
migrated to hashes with every key still working. The gateway log names users, never keys.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import gateway_keys
from harness.declared import Declared
from harness.local.key_files import LocalKeyFiles
from harness.targets import Target
from harness.targets.local import LocalTarget

from .support import Gateway, Reply

pytestmark = [pytest.mark.e2e, pytest.mark.auth]

SLACK_S = 10.0  # on top of the reload period: a busy 2-core machine
POLL_S = 0.5


@pytest.fixture
def local(target: Target) -> LocalTarget:
    if not isinstance(target, LocalTarget):
        pytest.skip(f"`harness keys` manages the local target's key store only; target {target.name!r} has none here")
    return target


@pytest.fixture
def key_files(local: LocalTarget) -> Iterator[LocalKeyFiles]:
    """The running gateway's key store, put back as it was after the test."""
    files = LocalKeyFiles.of(local.run)
    before = files.keys_file.read_text()
    yield files
    files.keys_file.write_text(before)


def keys_cli(local: LocalTarget, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "RAG_TARGET"}
    return subprocess.run(
        [sys.executable, "-m", "harness", "keys", *args, "--target", "local", "--run-name", local.run.name],
        capture_output=True, text=True, timeout=60, env=env, check=False,
    )  # fmt: skip


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, f"exit {result.returncode}: {result.stderr}"
    return result.stdout


def reload_budget(declared: Declared) -> float:
    return declared.key_reload_seconds() + SLACK_S


def wait_for(gateway: Gateway, key: str, status: int, budget: float, says: str = "") -> Reply:
    """Poll GET /v1/models with `key` until it answers `status` (with `says` in its error message)."""
    deadline = time.monotonic() + budget
    while True:
        reply = gateway.models(key)
        if reply.status == status and (not says or says in message(reply)):
            return reply
        if time.monotonic() > deadline:
            return reply
        time.sleep(POLL_S)


def message(reply: Reply) -> str:
    assert isinstance(reply.body, dict) and isinstance(reply.body.get("error"), dict), reply.describe()
    return str(reply.body["error"].get("message"))


def gateway_log(local: LocalTarget) -> str:
    return local.component_log("gateway")


def test_a_created_key_works_within_the_reload_period_and_only_its_hash_is_stored(
    local: LocalTarget, key_files: LocalKeyFiles, gateway: Gateway, declared: Declared, tmp_path: Path
) -> None:
    dry = ok(keys_cli(local, "create", "--user", "kc-user", "--tier", "free", "--dry-run"))
    assert "dry run" in dry and key_files.keys_file.read_text().count("kc-user") == 0, dry
    created = keys_cli(local, "create", "--user", "kc-user", "--tier", "free", "--label", "team=ml")
    key = ok(created).strip()
    assert key.startswith(gateway_keys.KEY_PREFIX) and "\n" not in key, created.stdout
    assert key not in created.stderr
    reply = wait_for(gateway, key, 200, reload_budget(declared))
    assert reply.status == 200, reply.describe()
    stored = key_files.keys_file.read_text()
    assert key not in stored, "the key file holds the plaintext key"
    assert f"hmac-sha256:{gateway_keys.hash_key(key_files.secret(), key)}" in stored
    listing = ok(keys_cli(local, "list", "--user", "kc-user"))
    assert "kc-user" in listing and "team=ml" in listing and key not in listing, listing
    assert key not in gateway_log(local), "the gateway log holds the key"
    bundle = local.diagnose(tmp_path / "diagnostics")
    for path in bundle.rglob("*"):
        if path.is_file():
            text = path.read_text(errors="replace")
            assert key not in text and key_files.secret() not in text, f"{path.name} holds the key or its secret"


def test_a_key_created_to_expire_in_5s_is_refused_saying_expired(
    local: LocalTarget, key_files: LocalKeyFiles, gateway: Gateway, declared: Declared
) -> None:
    started = time.monotonic()
    key = ok(keys_cli(local, "create", "--user", "kc-expiring", "--tier", "free", "--expires", "5s")).strip()
    reply = wait_for(gateway, key, 401, 5 + reload_budget(declared), says="expired")
    assert reply.status == 401 and "expired" in message(reply), reply.describe()
    # Times are whole seconds: the key was created at most 1 s before `started`.
    assert time.monotonic() - started >= 4.0, "refused as expired before its 5 s were up"
    log = gateway_log(local)
    assert "refused an expired API key of user kc-expiring" in log
    assert key not in log


def test_revoking_by_label_refuses_that_key_while_the_users_other_key_works(
    local: LocalTarget, key_files: LocalKeyFiles, gateway: Gateway, declared: Declared
) -> None:
    budget = reload_budget(declared)
    old = ok(keys_cli(local, "create", "--user", "kc-rev", "--tier", "free", "--label", "gen=1")).strip()
    new = ok(keys_cli(local, "create", "--user", "kc-rev", "--tier", "free", "--label", "gen=2")).strip()
    assert wait_for(gateway, old, 200, budget).status == 200 and wait_for(gateway, new, 200, budget).status == 200
    before = key_files.keys_file.read_bytes()
    dry = ok(keys_cli(local, "revoke", "--label", "gen=1", "--dry-run"))
    assert "would revoke 1 keys" in dry and key_files.keys_file.read_bytes() == before, dry
    ok(keys_cli(local, "revoke", "--label", "gen=1"))
    reply = wait_for(gateway, old, 401, budget, says="revoked")
    assert reply.status == 401 and "revoked" in message(reply), reply.describe()
    assert gateway.models(new).status == 200, "revoking one key refused the user's other key"
    ok(keys_cli(local, "revoke", "--user", "kc-rev"))
    assert wait_for(gateway, new, 401, budget).status == 401
    assert "refused a revoked API key of user kc-rev" in gateway_log(local)


def test_migrate_stores_the_plaintext_dev_keys_as_hashes_and_they_keep_working(
    local: LocalTarget, key_files: LocalKeyFiles, gateway: Gateway, key_pool, declared: Declared
) -> None:
    dev_key = key_pool.shared("enterprise")
    assert dev_key in key_files.keys_file.read_text(), "precondition: the dev overlay's keys are plaintext"
    before = key_files.keys_file.read_bytes()
    assert "dry run" in ok(keys_cli(local, "migrate", "--dry-run")) and key_files.keys_file.read_bytes() == before
    ok(keys_cli(local, "migrate"))
    stored = key_files.keys_file.read_text()
    assert dev_key not in stored and all(r.hashed for r in gateway_keys.parse_records(stored)), "plaintext left"
    time.sleep(declared.key_reload_seconds() + 1)  # the gateway has read the migrated file
    reply = gateway.models(dev_key)
    assert reply.status == 200, reply.describe()
    listing = ok(keys_cli(local, "list", "-o", "json"))
    assert dev_key not in listing and "plaintext" not in listing


def test_keys_cli_refuses_bad_input_with_one_line(local: LocalTarget, key_files: LocalKeyFiles) -> None:
    for args, says in (
        (("create", "--user", "x", "--tier", "gold"), "--tier 'gold' is not a tier"),
        (("create", "--user", "x", "--tier", "free", "--expires", "soon"), "--expires 'soon'"),
        (("create", "--user", "x", "--tier", "free", "--label", "novalue"), "--label 'novalue'"),
        (("revoke",), "revoke needs --user or --label"),
    ):
        result = keys_cli(local, *args)
        assert result.returncode == 1 and says in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.stderr
