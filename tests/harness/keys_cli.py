"""`python -m harness keys create|list|revoke|migrate`: the gateway's API keys, kept as hashes.

On the local target the store is the running gateway's key file (harness.local.key_files). Each
change is written in one step; the gateway reads it within `apiKeys.reloadSeconds`, nothing
restarts. `create` prints the new key once on stdout and writes only its HMAC-SHA-256;
`list` shows no secret material; every change takes `--dry-run`.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from typing import Any

from harness import gateway_keys
from harness.cli_common import add_run_name, add_target
from harness.declared import Declared
from harness.gateway_keys import BadKeyRequest, KeyRecord
from harness.local.key_files import LocalKeyFiles
from harness.local.state import RunFolder

TARGETS = ("local",)  # a cluster's key Secret is not managed by this command yet
FORMATS = ("table", "json")


def _store(args: argparse.Namespace) -> tuple[LocalKeyFiles, Declared]:
    run = RunFolder.named(args.run_name)
    return LocalKeyFiles.of(run), Declared.from_files(run.values_files())


def _labels(items: list[str]) -> dict[str, str]:
    return dict(gateway_keys.parse_label(item) for item in items)


def _when(declared: Declared) -> str:
    seconds = declared.key_reload_seconds()
    return f"within {seconds} s (apiKeys.reloadSeconds)" if seconds else "when the gateway restarts (reloadSeconds 0)"


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _say(text: str) -> None:
    print(text, file=sys.stderr)


def cmd_create(args: argparse.Namespace) -> int:
    files, declared = _store(args)
    user = gateway_keys.check_user(args.user)
    tiers = declared.tier_names()
    if args.tier not in tiers:
        raise BadKeyRequest(f"--tier {args.tier!r} is not a tier of the gateway; choose one of {', '.join(tiers)}")
    labels = _labels(args.label)
    now = _now()
    expires = now + gateway_keys.parse_duration(args.expires) if args.expires else None
    key = gateway_keys.new_key()
    record = KeyRecord(
        args.tier, user, hash=gateway_keys.hash_key(files.secret(), key), created=now, expires=expires, labels=labels
    )
    until = f", expires {gateway_keys.format_time(expires)}" if expires else ", no expiry"
    if args.dry_run:
        print(f"dry run: would create a key for user {user} (tier {args.tier}{until}); nothing written")
        return 0
    files.write([*files.read(), record])
    _say(f"created key {record.key_id} for user {user} (tier {args.tier}{until}); it works {_when(declared)}.")
    _say("The key is printed once, below; only its hash is stored.")
    print(key)
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
    files, _ = _store(args)
    now = _now()
    labels = _labels(args.label)
    records = [r for r in files.read() if gateway_keys.selects(r, user=args.user, labels=labels)]
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
    files, declared = _store(args)
    user = gateway_keys.check_user(args.user) if args.user is not None else None
    records, revoked = gateway_keys.revoke(files.read(), user=user, labels=_labels(args.label), at=_now())
    names = ", ".join(f"{r.key_id} (user {r.user})" for r in revoked) or "none"
    if args.dry_run:
        print(f"dry run: would revoke {len(revoked)} keys: {names}; nothing written")
        return 0
    if not revoked:
        print("no active key matches: nothing revoked")
        return 1
    files.write(records)
    print(f"revoked {len(revoked)} keys: {names}; the gateway refuses them {_when(declared)}")
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    files, declared = _store(args)
    records, converted = gateway_keys.migrate(files.read(), files.secret())
    if args.dry_run:
        print(f"dry run: would store {converted} plaintext keys as hashes; nothing written")
        return 0
    if converted:
        files.write(records)
    print(f"stored {converted} plaintext keys as hashes; every key keeps working (read {_when(declared)})")
    return 0


def add_commands(subparsers: Any) -> None:
    keys = subparsers.add_parser(
        "keys", help="create, list, revoke and migrate the gateway's API keys (stored as hashes)",
        description="The gateway's API keys, stored as HMAC-SHA-256 hashes with user, tier, creation, expiry, "
        "revocation and labels. Local target: the running stack's key file, read by the gateway within "
        "apiKeys.reloadSeconds (a restart of the stack renders it from the values again).",
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
    migrate = sub.add_parser("migrate", help="store every plaintext key of the key file as its hash")
    migrate.set_defaults(func=cmd_migrate)
    for parser in (create, listing, revoke):
        parser.add_argument(
            "--label", "-l", action="append", default=[], metavar="NAME=VALUE",
            help="a label (create) or a label to select by (list, revoke); repeatable",
        )  # fmt: skip
    for parser in (create, revoke, migrate):
        parser.add_argument("--dry-run", action="store_true", help="say what would change; write nothing")
    for parser in (create, listing, revoke, migrate):
        add_target(parser, TARGETS)
        add_run_name(parser)
