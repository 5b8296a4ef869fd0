"""The gateway's API-key file format: one `<tier> <user> <key>` line per key."""

from __future__ import annotations

from dataclasses import dataclass

KEYS_SECRET_KEY = "api-keys"  # maas-gateway apiKeys.secretKey default


@dataclass(frozen=True)
class ApiKey:
    tier: str
    user: str
    key: str


def parse(text: str) -> list[ApiKey]:
    keys = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split()
        if len(parts) != 3:
            raise ValueError(f"API-key file line {number}: expected '<tier> <user> <key>', got {len(parts)} fields")
        keys.append(ApiKey(*parts))
    return keys


def by_tier(keys: list[ApiKey]) -> dict[str, list[str]]:
    tiers: dict[str, list[str]] = {}
    for k in keys:
        tiers.setdefault(k.tier, []).append(k.key)
    return tiers
