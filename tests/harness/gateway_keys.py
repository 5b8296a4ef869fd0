"""The gateway's API-key file format: one `<tier> <user> <key>` line per key."""

from __future__ import annotations

from dataclasses import dataclass

from harness.errors import HarnessError

KEYS_SECRET_KEY = "api-keys"  # maas-gateway apiKeys.secretKey default


@dataclass(frozen=True)
class ApiKey:
    tier: str
    user: str
    key: str


class BadKeyFile(HarnessError, ValueError):
    pass


def parse(text: str) -> list[ApiKey]:
    keys = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split()
        if len(parts) != 3:
            raise BadKeyFile(
                f"API-key file line {number}: expected '<tier> <user> <key>', got {len(parts)} fields: "
                "fix maas-gateway.apiKeys"
            )
        keys.append(ApiKey(*parts))
    return keys


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
