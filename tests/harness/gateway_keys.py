"""The gateway's API-key file: one `<tier> <user> <credential> [<field>=<value> ...]` line per key.

The credential is `hmac-sha256:<hex>`, HMAC-SHA-256 of the key under the install's key hashing
secret (maas-gateway `apiKeys.hmac`), or, in a plaintext store (the dev overlays), the key itself.
Fields: `created`, `expires`, `revoked` (UTC times `2026-12-06T03:00:00Z`) and
`label.<name>=<value>`. The gateway's Lua step (files/gateway.lua) reads the same format.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Protocol

from harness.errors import HarnessError

KEYS_SECRET_KEY = "api-keys"  # maas-gateway apiKeys.secretKey default
HMAC_SECRET_KEY = "hmac-key"  # maas-gateway apiKeys.hmac.secretKey default
HASH_PREFIX = "hmac-sha256:"
KEY_PREFIX = "sk-maas-"
TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
TIME_FIELDS = ("created", "expires", "revoked")
LABEL_PREFIX = "label."
_HEX64 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class ApiKey:
    tier: str
    user: str
    key: str


class BadKeyFile(HarnessError, ValueError):
    pass


@dataclass(frozen=True)
class KeyRecord:
    """One line of the key file. Exactly one of `key` (plaintext store) and `hash` is set."""

    tier: str
    user: str
    key: str | None = None
    hash: str | None = None
    created: datetime | None = None
    expires: datetime | None = None
    revoked: datetime | None = None
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def hashed(self) -> bool:
        return self.hash is not None

    @property
    def key_id(self) -> str:
        """A short name of the key that reveals nothing of it: the hash's first 12 hex digits."""
        return self.hash[:12] if self.hash else "plaintext"

    def state(self, now: datetime) -> str:
        if self.revoked is not None and now >= self.revoked:
            return "revoked"
        if self.expires is not None and now >= self.expires:
            return "expired"
        return "active"

    def line(self) -> str:
        credential = f"{HASH_PREFIX}{self.hash}" if self.hash else str(self.key)
        fields = [self.tier, self.user, credential]
        for name in TIME_FIELDS:
            at = getattr(self, name)
            if at is not None:
                fields.append(f"{name}={format_time(at)}")
        fields += [f"{LABEL_PREFIX}{k}={v}" for k, v in sorted(self.labels.items())]
        return " ".join(fields)

    def revoke(self, at: datetime) -> KeyRecord:
        return replace(self, revoked=at)


def format_time(at: datetime) -> str:
    return at.astimezone(UTC).strftime(TIME_FORMAT)


def parse_time(text: str) -> datetime:
    return datetime.strptime(text, TIME_FORMAT).replace(tzinfo=UTC)


def hash_key(secret: str, key: str) -> str:
    return hmac.new(secret.encode(), key.encode(), hashlib.sha256).hexdigest()


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def parse_records(text: str) -> list[KeyRecord]:
    records = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split()
        if len(parts) < 3:
            raise BadKeyFile(
                f"API-key file line {number}: expected '<tier> <user> <credential> [<field>=<value> ...]', "
                f"got {len(parts)} fields: fix maas-gateway.apiKeys"
            )
        records.append(_record(number, *parts))
    return records


def _record(number: int, tier: str, user: str, credential: str, *fields: str) -> KeyRecord:
    times: dict[str, datetime] = {}
    labels: dict[str, str] = {}
    for item in fields:
        name, sep, value = item.partition("=")
        if not sep:
            raise BadKeyFile(f"API-key file line {number} (user {user}): field {name!r} is not <name>=<value>")
        if name in TIME_FIELDS:
            try:
                times[name] = parse_time(value)
            except ValueError:
                raise BadKeyFile(
                    f"API-key file line {number} (user {user}): {name}={value!r} is not a UTC time like "
                    "2026-12-06T03:00:00Z"
                ) from None
        elif name.startswith(LABEL_PREFIX):
            labels[name.removeprefix(LABEL_PREFIX)] = value
    digest = None
    if credential.startswith(HASH_PREFIX):
        digest = credential.removeprefix(HASH_PREFIX).lower()
        if not _HEX64.fullmatch(digest):
            raise BadKeyFile(f"API-key file line {number} (user {user}): the hash is not 64 hex digits")
    return KeyRecord(
        tier, user, key=None if digest else credential, hash=digest, labels=labels,
        created=times.get("created"), expires=times.get("expires"), revoked=times.get("revoked"),
    )  # fmt: skip


def render(records: list[KeyRecord]) -> str:
    header = "# <tier> <user> <credential> [created=|expires=|revoked=<UTC time>] [label.<name>=<value>]\n"
    return header + "".join(r.line() + "\n" for r in records)


def parse(text: str) -> list[ApiKey]:
    """The plaintext keys of the file (the harness calls the gateway with them); hashed keys have
    none to give."""
    return [ApiKey(r.tier, r.user, r.key) for r in parse_records(text) if r.key is not None]


def by_tier(keys: list[ApiKey]) -> dict[str, list[str]]:
    tiers: dict[str, list[str]] = {}
    for k in keys:
        tiers.setdefault(k.tier, []).append(k.key)
    return tiers


SERVICE_TIER = "internal"  # the dev overlays' tier of the harness's own keys


def listing_key(keys: dict[str, list[str]]) -> str | None:
    """The key the harness lists the gateway's models with: the service tier's first, so no user
    tier's budget is touched and the list is the same on every target; else the first key of the
    tier with the most keys."""
    for tier in (SERVICE_TIER, *sorted(keys, key=lambda t: -len(keys[t]))):
        if keys.get(tier):
            return keys[tier][0]
    return None


# -- changes to a key store (the `keys` CLI) ------------------------------------------------------


class KeyStore(Protocol):
    """Where a running gateway reads its key file from: the local stack's mounted copy
    (harness.local.key_files) or the release's Secret on a cluster (harness.cluster.key_secret)."""

    @property
    def where(self) -> str:
        """What it is, for messages: "Secret rag/rag-maas-gateway-api-keys (key api-keys)"."""
        ...

    @property
    def lasts(self) -> str:
        """When a change reaches the gateway, and how long it lasts."""
        ...

    @property
    def tiers(self) -> list[str]:
        """The gateway's tiers (maas-gateway `tiers`), which a key may name."""
        ...

    def read(self) -> list[KeyRecord]:
        """The key file's records."""
        ...

    def secret(self) -> str:
        """The key hashing secret (never printed)."""
        ...

    def write(self, records: list[KeyRecord]) -> None:
        """Replace the key file in one step."""
        ...


_DURATION = re.compile(r"([0-9]{1,9})([smhdw])")
MAX_DURATION = timedelta(days=3650)  # no key or grace period lasts longer than 10 years
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_LABEL = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_./]*)=([-A-Za-z0-9_.]*)")
_USER = re.compile(r"[A-Za-z0-9][-A-Za-z0-9._@]{0,62}")


class BadKeyRequest(HarnessError, ValueError):
    pass


def parse_duration(text: str, option: str = "--expires") -> timedelta:
    """`30d`, `12h`, `90m`, `5s`, `2w` (kubectl's habit for durations)."""
    match = _DURATION.fullmatch(text.strip())
    if match is None or int(match.group(1)) == 0:
        raise BadKeyRequest(f"{option} {text!r}: expected a positive duration such as 5s, 90m, 12h, 30d or 2w")
    duration = timedelta(seconds=int(match.group(1)) * _UNIT_SECONDS[match.group(2)])
    if duration > MAX_DURATION:
        raise BadKeyRequest(f"{option} {text!r}: at most {MAX_DURATION.days}d")
    return duration


def parse_label(text: str) -> tuple[str, str]:
    match = _LABEL.fullmatch(text)
    if match is None:
        raise BadKeyRequest(
            f"--label {text!r}: expected <name>=<value> (name: letters, digits, -_./; value: letters, digits, -_.)"
        )
    return match.group(1), match.group(2)


def check_user(user: str) -> str:
    if not _USER.fullmatch(user):
        raise BadKeyRequest(f"--user {user!r}: 1-63 letters, digits and -._@, starting with a letter or digit")
    return user


def reload_note(reload_seconds: int) -> str:
    """When the gateway reads a changed key file (maas-gateway `apiKeys.reloadSeconds`)."""
    if reload_seconds:
        return f"the gateway reads it within {reload_seconds} s (apiKeys.reloadSeconds)"
    return "each gateway worker reads the key file only once (apiKeys.reloadSeconds 0): restart the gateway"


def check_selection(user: str | None, labels: dict[str, str]) -> None:
    """A revocation selects by user and/or labels, never every key at once."""
    if user is None and not labels:
        raise BadKeyRequest("revoke needs --user or --label: it never revokes every key at once")


def selects(record: KeyRecord, *, user: str | None, labels: dict[str, str]) -> bool:
    if user is not None and record.user != user:
        return False
    return all(record.labels.get(k) == v for k, v in labels.items())


def revoke(
    records: list[KeyRecord], *, user: str | None, labels: dict[str, str], at: datetime
) -> tuple[list[KeyRecord], list[KeyRecord]]:
    """The store with the selected keys revoked at `at` (those already revoked keep their time),
    and the keys this revoked."""
    check_selection(user, labels)
    changed: list[KeyRecord] = []
    out = []
    for record in records:
        if selects(record, user=user, labels=labels) and (record.revoked is None or record.revoked > at):
            record = record.revoke(at)
            changed.append(record)
        out.append(record)
    return out, changed


def migrate(records: list[KeyRecord], secret: str) -> tuple[list[KeyRecord], int]:
    """Every plaintext line replaced by its hash (fields kept); and how many were converted."""
    out = [replace(r, key=None, hash=hash_key(secret, r.key)) if r.key is not None else r for r in records]
    return out, sum(1 for r in records if r.key is not None)


def rotate(
    records: list[KeyRecord],
    *,
    user: str,
    labels: dict[str, str],
    tier: str | None,
    at: datetime,
    grace: timedelta,
    new_hash: str,
    expires: datetime | None,
) -> tuple[list[KeyRecord], KeyRecord, list[KeyRecord]]:
    """A rotation of the user's active keys (those with `labels`, in `tier` if given): the store with
    a new key (hash `new_hash`; the old keys' tier and shared labels) added, and each old key set to
    expire `grace` after `at` (an earlier expiry is kept); the new record; the old keys as they now stand."""
    chosen = [
        r for r in records
        if selects(r, user=user, labels=labels) and r.state(at) == "active" and tier in (None, r.tier)
    ]  # fmt: skip
    what = f"user {user}" + "".join(f", label {k}={v}" for k, v in sorted(labels.items()))
    what += f", tier {tier}" if tier else ""
    if not chosen:
        raise BadKeyRequest(f"rotate: {what} has no active key to rotate: make one with `keys create`")
    tiers = sorted({r.tier for r in chosen})
    if len(tiers) > 1:
        raise BadKeyRequest(f"rotate: {what} has active keys in tiers {', '.join(tiers)}: choose one with --tier")
    until = at + grace
    if expires is not None and expires < until:
        raise BadKeyRequest(
            f"rotate: the new key would expire ({format_time(expires)}) before the old keys' grace period ends "
            f"({format_time(until)}): choose a longer --expires or a shorter --grace"
        )
    ids = {id(r) for r in chosen}
    out = [
        replace(r, expires=until) if id(r) in ids and (r.expires is None or r.expires > until) else r for r in records
    ]
    changed = [r for r, before in zip(out, records, strict=True) if id(before) in ids]
    new = KeyRecord(tiers[0], user, hash=new_hash, created=at, expires=expires, labels=_common_labels(chosen))
    return [*out, new], new, changed


def _common_labels(records: list[KeyRecord]) -> dict[str, str]:
    """The labels every one of `records` carries with the same value (the rotated key keeps them)."""
    first = dict(records[0].labels)
    return {k: v for k, v in first.items() if all(r.labels.get(k) == v for r in records[1:])}
