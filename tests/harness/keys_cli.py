"""`python -m harness keys create|list|revoke|rotate|migrate`: the gateway's API keys, kept as hashes.

The store is the target's (`Target.key_store()`): on the local target the running gateway's key
file (harness.local.key_files), on a cluster the release's key Secret, through the Kubernetes API
(harness.cluster.key_secret). Each change is written in one step; the gateway reads it within
`apiKeys.reloadSeconds` (on a cluster, once the kubelet has synced the Secret), nothing restarts.
`create` and `rotate` print the new key once on stdout and write only its HMAC-SHA-256; `list`
shows no secret material; every change takes `--dry-run`.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from typing import Any

from harness import gateway_keys
from harness.capabilities import Capability, Unsupported
from harness.cli_common import add_stack_location
from harness.gateway_keys import BadKeyRequest, KeyRecord, KeyStore
from harness.targets import TargetOptions, get_target

FORMATS = ("table", "json")
DEFAULT_GRACE = "1h"


def _store(args: argparse.Namespace) -> KeyStore:
    options = TargetOptions(release=args.release, namespace=args.namespace, run_name=args.run_name)
    target = get_target(args.target, options)
    try:
        if Capability.KEY_STORE not in target.capabilities:
            raise Unsupported(target.name, Capability.KEY_STORE)
        return target.key_store()
    finally:
        target.close()


def _labels(items: list[str]) -> dict[str, str]:
    return dict(gateway_keys.parse_label(item) for item in items)


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _say(text: str) -> None:
    print(text, file=sys.stderr)


def _check_tier(store: KeyStore, tier: str) -> str:
    if tier not in store.tiers:
        raise BadKeyRequest(f"--tier {tier!r} is not a tier of the gateway; choose one of {', '.join(store.tiers)}")
    return tier


def _until(expires: datetime | None) -> str:
    return f", expires {gateway_keys.format_time(expires)}" if expires else ", no expiry"


def _hand_over(key: str) -> None:
    _say("The key is printed once, below; only its hash is stored.")
    print(key)


def cmd_create(args: argparse.Namespace) -> int:
    user = gateway_keys.check_user(args.user)
    labels = _labels(args.label)
    now = _now()
    expires = now + gateway_keys.parse_duration(args.expires) if args.expires else None
    store = _store(args)
    _check_tier(store, args.tier)
    key = gateway_keys.new_key()
    record = KeyRecord(
        args.tier, user, hash=gateway_keys.hash_key(store.secret(), key), created=now, expires=expires, labels=labels
    )
    if args.dry_run:
        print(f"dry run: would create a key for user {user} (tier {args.tier}{_until(expires)}); nothing written")
        return 0
    store.write([*store.read(), record])
    _say(f"created key {record.key_id} for user {user} (tier {args.tier}{_until(expires)}) in {store.where}; "
         f"{store.lasts}.")  # fmt: skip
    _hand_over(key)
    return 0


def cmd_rotate(args: argparse.Namespace) -> int:
    user = gateway_keys.check_user(args.user)
    labels = _labels(args.label)
    grace = gateway_keys.parse_duration(args.grace, "--grace")
    now = _now()
    expires = now + gateway_keys.parse_duration(args.expires) if args.expires else None
    store = _store(args)
    tier = _check_tier(store, args.tier) if args.tier else None
    key = gateway_keys.new_key()
    records, new, old = gateway_keys.rotate(
        store.read(), user=user, labels=labels, tier=tier, at=now, grace=grace,
        new_hash=gateway_keys.hash_key(store.secret(), key), expires=expires,
    )  # fmt: skip
    olds = ", ".join(f"{r.key_id} (until {gateway_keys.format_time(r.expires)})" for r in old if r.expires)
    if args.dry_run:
        print(f"dry run: would give user {user} a new key (tier {new.tier}{_until(expires)}); old keys: {olds}")
        return 0
    store.write(records)
    _say(f"rotated user {user}: new key {new.key_id} (tier {new.tier}{_until(expires)}); the old keys work until "
         f"their grace period ends: {olds}. In {store.where}; {store.lasts}.")  # fmt: skip
    _hand_over(key)
    return 0


def _row(record: KeyRecord, now: datetime) -> dict[str, Any]:
    def time(at: datetime | None) -> str:
        return gateway_keys.format_time(at) if at else "-"

    return {
        "id": record.key_id,
        "user": record.user,
        "tier": record.tier,
        "state": record.state(now),
        "created": time(record.created),
        "expires": time(record.expires),
        "revoked": time(record.revoked),
        "labels": ",".join(f"{k}={v}" for k, v in sorted(record.labels.items())) or "-",
    }


def cmd_list(args: argparse.Namespace) -> int:
    labels = _labels(args.label)
    store = _store(args)
    now = _now()
    records = [r for r in store.read() if gateway_keys.selects(r, user=args.user, labels=labels)]
    rows = [_row(r, now) for r in records]
    if args.output == "json":
        print(json.dumps(rows, indent=2))
        return 0
    columns = ["id", "user", "tier", "state", "created", "expires", "revoked", "labels"]
    widths = {c: max([len(c), *(len(row[c]) for row in rows)]) for c in columns}
    print("  ".join(c.upper().ljust(widths[c]) for c in columns).rstrip())
    for row in rows:
        print("  ".join(row[c].ljust(widths[c]) for c in columns).rstrip())
    plaintext = sum(1 for r in records if not r.hashed)
    if plaintext:
        _say(f"{plaintext} keys are stored in plaintext: `python -m harness keys migrate` stores them as hashes")
    return 0


def cmd_revoke(args: argparse.Namespace) -> int:
    user = gateway_keys.check_user(args.user) if args.user is not None else None
    labels = _labels(args.label)
    gateway_keys.check_selection(user, labels)  # before reaching the store
    store = _store(args)
    records, revoked = gateway_keys.revoke(store.read(), user=user, labels=labels, at=_now())
    names = ", ".join(f"{r.key_id} (user {r.user})" for r in revoked) or "none"
    if args.dry_run:
        print(f"dry run: would revoke {len(revoked)} keys: {names}; nothing written")
        return 0
    if not revoked:
        print("no active key matches: nothing revoked")
        return 1
    store.write(records)
    print(f"revoked {len(revoked)} keys: {names}; {store.lasts}")
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    store = _store(args)
    records, converted = gateway_keys.migrate(store.read(), store.secret())
    if args.dry_run:
        print(f"dry run: would store {converted} plaintext keys as hashes; nothing written")
        return 0
    if converted:
        store.write(records)
    print(f"stored {converted} plaintext keys as hashes in {store.where}; every key keeps working ({store.lasts})")
    return 0


def add_commands(subparsers: Any) -> None:
    keys = subparsers.add_parser(
        "keys", help="create, list, revoke, rotate and migrate the gateway's API keys (stored as hashes)",
        description="The gateway's API keys, stored as HMAC-SHA-256 hashes with user, tier, creation, expiry, "
        "revocation and labels. Local target: the running stack's key file, read by the gateway within "
        "apiKeys.reloadSeconds; it lasts until `make up` starts a new run. Cluster targets: the release's key "
        "Secret, changed through the Kubernetes API; the gateway reads it once the kubelet has synced the "
        "Secret, and the chart keeps it across `helm upgrade` from then on.",
    )  # fmt: skip
    sub = keys.add_subparsers(dest="keys_command", required=True)
    create = sub.add_parser("create", help="mint a key; print it once; store only its hash")
    create.add_argument("--user", required=True, help="the key's owner (budgets are counted per user)")
    create.add_argument("--tier", required=True, help="the tier whose budgets the key spends")
    create.add_argument("--expires", default="", metavar="DURATION", help="lifetime: 5s, 90m, 12h, 30d, 2w")
    create.set_defaults(func=cmd_create)
    listing = sub.add_parser("list", help="the keys: id, user, tier, state, times, labels (no secret material)")
    listing.add_argument("--user", default=None, help="only this user's keys")
    listing.add_argument("-o", "--output", choices=FORMATS, default="table", help="output format (default table)")
    listing.set_defaults(func=cmd_list)
    revoke = sub.add_parser("revoke", help="revoke the keys of a user and/or with labels, from now on")
    revoke.add_argument("--user", default=None, help="revoke this user's keys")
    revoke.set_defaults(func=cmd_revoke)
    rotate = sub.add_parser(
        "rotate", help="give a user a new key; their old keys work until a grace period ends",
        description="Mint a new key for --user (the tier and shared labels of the keys it replaces; print it once) "
        "and set each of the user's active keys (those with every --label, in --tier if given) to expire when "
        "--grace ends; an earlier expiry is kept. After the grace period the old keys get 401 'expired'.",
    )  # fmt: skip
    rotate.add_argument("--user", required=True, help="whose keys to rotate")
    rotate.add_argument("--tier", default=None, help="only the user's keys in this tier (needed if they span tiers)")
    rotate.add_argument("--grace", default=DEFAULT_GRACE, metavar="DURATION",
                        help=f"how long the old keys keep working (default {DEFAULT_GRACE})")  # fmt: skip
    rotate.add_argument("--expires", default="", metavar="DURATION", help="the new key's lifetime (default none)")
    rotate.set_defaults(func=cmd_rotate)
    migrate = sub.add_parser("migrate", help="store every plaintext key of the key file as its hash")
    migrate.set_defaults(func=cmd_migrate)
    for parser in (create, listing, revoke, rotate):
        parser.add_argument(
            "--label", "-l", action="append", default=[], metavar="NAME=VALUE",
            help="a label (create) or a label to select by (list, revoke, rotate); repeatable",
        )  # fmt: skip
    for parser in (create, revoke, rotate, migrate):
        parser.add_argument("--dry-run", action="store_true", help="say what would change; write nothing")
    for parser in (create, listing, revoke, rotate, migrate):
        add_stack_location(parser, "cluster targets: the release (of the rag or the maas-gateway chart)")
