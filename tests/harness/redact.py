"""Masking secrets before anything is printed or written to a diagnostics folder."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

MASK = "****"
# Values of keys like these are masked wherever they appear in YAML/JSON/env text.
_SECRET_KEY = re.compile(
    r"(?P<k>[\"']?[\w.-]*(?:token|password|secret|api[_-]?key|apikey)[\w.-]*[\"']?[ \t]*[:=][ \t]*)(?P<v>[^\s,}\]]+)",
    re.IGNORECASE,
)
# Field names of structured data (JSON bodies) that hold a credential: `api_key`, `key`, `token`,
# `vllm_api_token`, `password` ...; not counts such as `max_tokens`.
_SECRET_FIELD = re.compile(
    r"(?:[\w-]*[_-])?(?:api[_-]?key|apikey|key|token|access[_-]?token|password|passwd|secret|authorization|credentials?)",
    re.IGNORECASE,
)
_AUTH_HEADER = re.compile(r"(?P<k>Authorization:\s*(?:Bearer|APIKEY)\s+)(?P<v>\S+)", re.IGNORECASE)


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """Replace every known secret value, then values of secret-looking keys and auth headers."""
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        text = text.replace(secret, MASK)
    text = _AUTH_HEADER.sub(lambda m: m.group("k") + MASK, text)
    return _SECRET_KEY.sub(_mask_value, text)


def _mask_value(match: re.Match[str]) -> str:
    value = match.group("v")
    # Keep references (${env.X}, secretKeyRef names) readable: they are not secrets.
    if value.startswith("${") or value in ("", '""', "''", "null", "{}"):
        return match.group(0)
    return match.group("k") + MASK


def redact_fields(value: Any) -> Any:
    """A copy of JSON-like data with the value of every credential-named field masked."""
    if isinstance(value, dict):
        return {k: MASK if _SECRET_FIELD.fullmatch(str(k)) and v else redact_fields(v) for k, v in value.items()}
    if isinstance(value, list):
        return [redact_fields(v) for v in value]
    return value
