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
