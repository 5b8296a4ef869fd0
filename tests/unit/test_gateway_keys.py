"""The key store's changes as `harness keys` makes them: durations, labels, revocation, migration."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from harness import gateway_keys
from harness.gateway_keys import BadKeyFile, BadKeyRequest, KeyRecord

NOW = datetime(2026, 12, 6, 3, 0, 0, tzinfo=UTC)
SECRET = "install-secret"


@pytest.mark.parametrize(
    ("text", "seconds"), [("5s", 5), ("90m", 5400), ("12h", 43200), ("30d", 2592000), ("2w", 1209600)]
)
def test_durations_read_like_kubectl(text: str, seconds: int) -> None:
    assert gateway_keys.parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "0s", "30", "d", "1y", "-5s", "5 s", "\u0661\u0660d"])
def test_a_bad_duration_names_the_option_and_the_forms(text: str) -> None:
    with pytest.raises(BadKeyRequest, match="--expires .*5s, 90m, 12h, 30d or 2w"):
        gateway_keys.parse_duration(text)


def test_labels_are_name_value_pairs() -> None:
    assert gateway_keys.parse_label("team=ml") == ("team", "ml")
    assert gateway_keys.parse_label("app.kubernetes.io/part-of=rag") == ("app.kubernetes.io/part-of", "rag")
    for bad in ("team", "=ml", "team=m l", "team=a=b"):
        with pytest.raises(BadKeyRequest, match="--label"):
            gateway_keys.parse_label(bad)


def store() -> list[KeyRecord]:
    return [
        KeyRecord("free", "alice", hash="a" * 64, labels={"gen": "1"}),
        KeyRecord("free", "alice", hash="b" * 64, labels={"gen": "2"}),
        KeyRecord("premium", "bob", key="k-bob", labels={"gen": "1"}),
        KeyRecord("free", "carol", hash="c" * 64, revoked=NOW - timedelta(days=1)),
    ]


def test_revoke_by_user_and_label_selects_only_those_keys() -> None:
    after, revoked = gateway_keys.revoke(store(), user="alice", labels={"gen": "1"}, at=NOW)
    assert [r.hash for r in revoked] == ["a" * 64]
    assert [r.state(NOW) for r in after] == ["revoked", "active", "active", "revoked"]


def test_revoke_keeps_an_earlier_revocation_time() -> None:
    after, revoked = gateway_keys.revoke(store(), user="carol", labels={}, at=NOW)
    assert revoked == [] and after[3].revoked == NOW - timedelta(days=1)


def test_revoke_refuses_to_select_every_key() -> None:
    with pytest.raises(BadKeyRequest, match="--user or --label"):
        gateway_keys.revoke(store(), user=None, labels={}, at=NOW)


def test_migrate_hashes_plaintext_lines_and_keeps_their_fields() -> None:
    after, converted = gateway_keys.migrate(store(), SECRET)
    assert converted == 1
    bob = after[2]
    assert bob.key is None and bob.hash == gateway_keys.hash_key(SECRET, "k-bob") and bob.labels == {"gen": "1"}
    assert "k-bob" not in gateway_keys.render(after)
    assert gateway_keys.migrate(after, SECRET)[1] == 0, "migrate is not idempotent"


def test_a_key_expires_at_its_time() -> None:
    record = KeyRecord("free", "alice", hash="a" * 64, expires=NOW)
    assert record.state(NOW - timedelta(seconds=1)) == "active" and record.state(NOW) == "expired"


def test_new_keys_are_long_and_distinct() -> None:
    keys = {gateway_keys.new_key() for _ in range(100)}
    assert len(keys) == 100 and all(k.startswith("sk-maas-") and len(k) >= 48 for k in keys)


@pytest.mark.parametrize(
    ("line", "says"),
    [
        ("free alice", "expected '<tier> <user> <credential>"),
        ("free alice hmac-sha256:abc", "the hash is not 64 hex digits"),
        ("free alice k expires=tomorrow", "expires='tomorrow' is not a UTC time"),
        ("free alice k loose", "field 'loose' is not <name>=<value>"),
    ],
)
def test_a_bad_key_line_names_the_line_and_the_fix(line: str, says: str) -> None:
    with pytest.raises(BadKeyFile, match="line 1") as err:
        gateway_keys.parse_records(line)
    assert says in str(err.value)


def rotation(
    records: list[KeyRecord], user: str = "alice", labels: dict[str, str] | None = None, tier: str | None = None
) -> tuple[list[KeyRecord], KeyRecord, list[KeyRecord]]:
    return gateway_keys.rotate(
        records, user=user, labels=labels or {}, tier=tier, at=NOW, grace=timedelta(hours=1), new_hash="d" * 64,
        expires=None,
    )  # fmt: skip


def test_rotate_adds_a_key_and_ends_the_old_ones_after_the_grace_period() -> None:
    after, new, old = rotation(store())
    assert [r.hash for r in old] == ["a" * 64, "b" * 64]
    assert all(r.expires == NOW + timedelta(hours=1) for r in old)
    assert after[-1] == new and new.user == "alice" and new.tier == "free" and new.created == NOW
    assert new.labels == {}, "the old keys disagree on gen: the new key carries no gen"
    later = NOW + timedelta(hours=1)
    assert [r.state(later) for r in after] == ["expired", "expired", "active", "revoked", "active"]
    assert [r.state(later - timedelta(seconds=1)) for r in after[:2]] == ["active", "active"]


def test_rotate_keeps_an_earlier_expiry_and_the_shared_labels() -> None:
    soon = NOW + timedelta(minutes=5)
    records = [
        KeyRecord("free", "alice", hash="a" * 64, expires=soon, labels={"team": "ml", "gen": "1"}),
        KeyRecord("free", "alice", hash="b" * 64, labels={"team": "ml", "gen": "2"}),
    ]
    after, new, old = rotation(records)
    assert old[0].expires == soon and old[1].expires == NOW + timedelta(hours=1)
    assert new.labels == {"team": "ml"}


def test_rotate_by_label_touches_only_those_keys() -> None:
    after, new, old = rotation(store(), labels={"gen": "1"})
    assert [r.hash for r in old] == ["a" * 64] and after[1].expires is None and new.labels == {"gen": "1"}


def test_rotate_refuses_a_user_without_active_keys_and_keys_across_tiers() -> None:
    with pytest.raises(BadKeyRequest, match="user carol has no active key to rotate"):
        rotation(store(), user="carol")
    mixed = [*store(), KeyRecord("premium", "alice", hash="e" * 64)]
    with pytest.raises(BadKeyRequest, match="tiers free, premium: choose one with --tier"):
        rotation(mixed)
    after, new, old = rotation(mixed, tier="premium")
    assert new.tier == "premium" and [r.hash for r in old] == ["e" * 64]


def test_a_duration_beyond_ten_years_is_refused_not_a_traceback() -> None:
    for text in ("3651d", "3000000d", "9999999999999w"):
        with pytest.raises(BadKeyRequest, match="at most 3650d|expected a positive duration"):
            gateway_keys.parse_duration(text, "--grace")


def test_rotate_names_the_tier_and_refuses_a_new_key_that_ends_before_the_grace() -> None:
    with pytest.raises(BadKeyRequest, match="user alice, tier premium has no active key"):
        rotation(store(), tier="premium")
    with pytest.raises(BadKeyRequest, match="would expire .* before the old keys' grace period ends"):
        gateway_keys.rotate(
            store(), user="alice", labels={}, tier=None, at=NOW, grace=timedelta(hours=1), new_hash="d" * 64,
            expires=NOW + timedelta(minutes=5),
        )  # fmt: skip
