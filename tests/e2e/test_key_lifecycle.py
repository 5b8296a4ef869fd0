"""API keys with a lifecycle, through `python -m harness keys` and the real Envoy of the stack, on
every target with a key store (the local stack's key file; a cluster's key Secret, changed through
the Kubernetes API): a created key works once the gateway has read the change and is stored only as
its hash; an expired or revoked key gets 401 saying so while the user's other keys keep working; a
rotated user's old key works until its grace period ends; a plaintext store is migrated to hashes
with every key still working. The gateway log names users, never keys.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from harness import gateway_keys
from harness.capabilities import Capability
from harness.cluster.key_secret import ClusterKeySecret
from harness.declared import Declared
from harness.gateway_keys import KeyStore
from harness.kube.config import KUBELET_SYNC_S
from harness.targets import Target

from .support import Gateway, Reply, harness_cli

pytestmark = [pytest.mark.e2e, pytest.mark.auth]

SLACK_S = 10.0  # on top of the reload period: a busy 2-core machine
CLUSTER_SLACK_S = 20.0  # and on a cluster, probe and request latency on top of the kubelet's sync
KUBELET_DEFAULT_SYNC_S = 60  # a kubelet's default syncFrequency (kind); the kube lane sets its own
POLL_S = 0.5


@pytest.fixture
def keyed(target: Target) -> Target:
    if Capability.KEY_STORE not in target.capabilities:
        pytest.skip(f"target {target.name!r} declares no key store (Capability.KEY_STORE) for `harness keys`")
    return target


@pytest.fixture
def store(keyed: Target, secrets: set[str]) -> Iterator[KeyStore]:
    """The running gateway's key store, put back as it was after the test. Its hashing secret joins
    the values the harness masks in failure reports."""
    store = keyed.key_store()
    secrets.add(store.secret())
    before = store.read()
    yield store
    again = keyed.key_store()
    again.read()
    again.write(before)
    if isinstance(again, ClusterKeySecret):
        again.unmark()  # later upgrades render the values' keys again, as before the test


Cli = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def cli(keyed: Target, secrets: set[str]) -> Cli:
    """`keys_cli` on the test's target; every key it prints joins the values the harness masks in
    failure reports (an assertion about a key must never print it)."""

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        result = harness_cli(keyed, "keys", *args)
        secrets.update(w for w in result.stdout.split() if w.startswith(gateway_keys.KEY_PREFIX))
        return result

    return run


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, f"exit {result.returncode}: {result.stderr}"
    return result.stdout


def reload_budget(declared: Declared, target: Target) -> float:
    """How long a change to the store may take to reach every gateway worker on this target."""
    if target.name == "local":
        return declared.key_reload_seconds() + SLACK_S
    sync_s = KUBELET_SYNC_S if target.name == "kube" else KUBELET_DEFAULT_SYNC_S
    return declared.key_reload_seconds() + 2 * sync_s + CLUSTER_SLACK_S


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


def stored_text(store: KeyStore) -> str:
    return gateway_keys.render(store.read())


def test_a_created_key_works_within_the_reload_period_and_only_its_hash_is_stored(
    keyed: Target, store: KeyStore, cli: Cli, gateway: Gateway, declared: Declared, tmp_path: Path
) -> None:
    dry = ok(cli("create", "--user", "kc-user", "--tier", "free", "--dry-run"))
    assert "dry run" in dry and stored_text(store).count("kc-user") == 0, dry
    created = cli("create", "--user", "kc-user", "--tier", "free", "--label", "team=ml")
    key = ok(created).strip()
    assert key.startswith(gateway_keys.KEY_PREFIX) and "\n" not in key, created.stdout
    assert key not in created.stderr
    reply = wait_for(gateway, key, 200, reload_budget(declared, keyed))
    assert reply.status == 200, reply.describe()
    stored = stored_text(store)
    assert key not in stored, "the key store holds the plaintext key"
    assert f"hmac-sha256:{gateway_keys.hash_key(store.secret(), key)}" in stored
    listing = ok(cli("list", "--user", "kc-user"))
    assert "kc-user" in listing and "team=ml" in listing and key not in listing, listing
    assert key not in keyed.component_log("gateway"), "the gateway log holds the key"
    bundle = keyed.diagnose(tmp_path / "diagnostics")
    for path in bundle.rglob("*"):
        if path.is_file():
            text = path.read_text(errors="replace")
            assert key not in text and store.secret() not in text, f"{path.name} holds the key or its secret"


def test_a_key_created_to_expire_in_5s_is_refused_saying_expired(
    keyed: Target, store: KeyStore, cli: Cli, gateway: Gateway, declared: Declared
) -> None:
    started = time.monotonic()
    key = ok(cli("create", "--user", "kc-expiring", "--tier", "free", "--expires", "5s")).strip()
    reply = wait_for(gateway, key, 401, 5 + reload_budget(declared, keyed), says="expired")
    assert reply.status == 401 and "expired" in message(reply), reply.describe()
    # Times are whole seconds: the key was created at most 1 s before `started`.
    assert time.monotonic() - started >= 4.0, "refused as expired before its 5 s were up"
    log = keyed.component_log("gateway")
    assert "refused an expired API key of user kc-expiring" in log
    assert key not in log


def test_revoking_by_label_refuses_that_key_while_the_users_other_key_works(
    keyed: Target, store: KeyStore, cli: Cli, gateway: Gateway, declared: Declared
) -> None:
    budget = reload_budget(declared, keyed)
    old = ok(cli("create", "--user", "kc-rev", "--tier", "free", "--label", "gen=1")).strip()
    new = ok(cli("create", "--user", "kc-rev", "--tier", "free", "--label", "gen=2")).strip()
    assert wait_for(gateway, old, 200, budget).status == 200 and wait_for(gateway, new, 200, budget).status == 200
    before = stored_text(store)
    dry = ok(cli("revoke", "--label", "gen=1", "--dry-run"))
    assert "would revoke 1 keys" in dry and stored_text(store) == before, dry
    ok(cli("revoke", "--label", "gen=1"))
    reply = wait_for(gateway, old, 401, budget, says="revoked")
    assert reply.status == 401 and "revoked" in message(reply), reply.describe()
    assert gateway.models(new).status == 200, "revoking one key refused the user's other key"
    ok(cli("revoke", "--user", "kc-rev"))
    assert wait_for(gateway, new, 401, budget).status == 401
    assert "refused a revoked API key of user kc-rev" in keyed.component_log("gateway")


def test_rotate_gives_a_new_key_and_the_old_one_works_until_the_grace_period_ends(
    keyed: Target, store: KeyStore, cli: Cli, gateway: Gateway, declared: Declared
) -> None:
    budget = reload_budget(declared, keyed)
    old = ok(cli("create", "--user", "kc-rot", "--tier", "free", "--label", "team=ml")).strip()
    assert wait_for(gateway, old, 200, budget).status == 200
    grace = int(budget) + 5  # longer than the new key can take to reach the gateway
    before = stored_text(store)
    dry = ok(cli("rotate", "--user", "kc-rot", "--grace", f"{grace}s", "--dry-run"))
    assert "dry run" in dry and stored_text(store) == before, dry
    started = time.monotonic()
    rotated = cli("rotate", "--user", "kc-rot", "--grace", f"{grace}s")
    new = ok(rotated).strip()
    assert new.startswith(gateway_keys.KEY_PREFIX) and new != old and new not in rotated.stderr
    assert wait_for(gateway, new, 200, budget).status == 200, "the rotated user's new key does not work"
    assert time.monotonic() - started < grace - 1, "the new key took longer than the grace period to work"
    reply = gateway.models(old)
    assert reply.status == 200, f"the old key stopped working inside its grace period: {reply.describe()}"
    records = [r for r in store.read() if r.user == "kc-rot"]
    assert [r.labels for r in records] == [{"team": "ml"}] * 2, "the new key lost the old key's labels"
    assert new not in stored_text(store)
    reply = wait_for(gateway, old, 401, grace + budget, says="expired")
    assert reply.status == 401 and "expired" in message(reply), reply.describe()
    assert time.monotonic() - started >= grace - 1, "the old key was refused before its grace period ended"
    assert gateway.models(new).status == 200, "the new key stopped working when the old one expired"


def test_migrate_stores_the_plaintext_dev_keys_as_hashes_and_they_keep_working(
    keyed: Target, store: KeyStore, cli: Cli, gateway: Gateway, key_pool, declared: Declared
) -> None:
    dev_key = key_pool.shared("enterprise")
    assert dev_key in stored_text(store), "precondition: the dev overlay's keys are plaintext"
    before = stored_text(store)
    assert "dry run" in ok(cli("migrate", "--dry-run")) and stored_text(store) == before
    ok(cli("migrate"))
    stored = stored_text(store)
    assert dev_key not in stored and all(r.hashed for r in gateway_keys.parse_records(stored)), "plaintext left"
    # A key made after the migration works only once the gateway has read a file at least that new.
    canary = ok(cli("create", "--user", "kc-canary", "--tier", "free")).strip()
    assert wait_for(gateway, canary, 200, reload_budget(declared, keyed)).status == 200
    reply = gateway.models(dev_key)
    assert reply.status == 200, reply.describe()
    listing = ok(cli("list", "-o", "json"))
    assert dev_key not in listing and "plaintext" not in listing


def test_keys_cli_refuses_bad_input_with_one_line(store: KeyStore, cli: Cli) -> None:
    for args, says in (
        (("create", "--user", "x", "--tier", "gold"), "--tier 'gold' is not a tier"),
        (("create", "--user", "x", "--tier", "free", "--expires", "soon"), "--expires 'soon'"),
        (("create", "--user", "x", "--tier", "free", "--label", "novalue"), "--label 'novalue'"),
        (("revoke",), "revoke needs --user or --label"),
        (("rotate", "--user", "nobody-here", "--grace", "10s"), "user nobody-here has no active key to rotate"),
        (("rotate", "--user", "x", "--grace", "later"), "--grace 'later'"),
    ):
        result = cli(*args)
        assert result.returncode == 1 and says in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.stderr


def test_created_keys_outlive_a_gateway_restart_or_a_helm_upgrade(
    keyed: Target, store: KeyStore, cli: Cli, gateway: Gateway, declared: Declared
) -> None:
    """The key store `harness keys` changed is kept when the gateway is rendered again: a restarted
    local gateway gets it back; on a cluster the chart keeps the Secret it annotates on upgrade."""
    budget = reload_budget(declared, keyed)
    key = ok(cli("create", "--user", "kc-kept", "--tier", "free")).strip()
    assert wait_for(gateway, key, 200, budget).status == 200
    # The gateway rendered again from the same values and restarted (on a cluster: helm upgrade).
    keyed.override_values(None, restart="gateway")
    users = [r.user for r in keyed.key_store().read()]
    assert "kc-kept" in users, "rendering the gateway again dropped the created key"
    reply = wait_for(gateway, key, 200, budget)
    assert reply.status == 200, f"the created key stopped working after the gateway was re-rendered: {reply.describe()}"
