"""Masking secrets before anything is printed or written to a diagnostics folder: the harness's one
masking module. `redact` masks known values and secret-looking keys; `mask_known` only known values
(for text whose numbers must stay readable); `mask_secret_object`/`mask_secret_manifest` mask the
values of Kubernetes Secrets, which are base64 and so escape text patterns."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import yaml

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
    text = mask_known(text, secrets)
    text = _AUTH_HEADER.sub(lambda m: m.group("k") + MASK, text)
    return _SECRET_KEY.sub(_mask_value, text)


def _mask_value(match: re.Match[str]) -> str:
    value = match.group("v")
    # Keep references (${env.X}, secretKeyRef names) readable: they are not secrets.
    if value.startswith("${") or value in ("", '""', "''", "null", "{}"):
        return match.group(0)
    return match.group("k") + MASK


def mask_known(text: str, secrets: Iterable[str]) -> str:
    """Replace known secret values only (longest first, so a key containing another is masked whole):
    the generic `redact` would also mask readable values such as `x-ratelimit-remaining-tokens: 180`."""
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text


def mask_secret_object(obj: dict[str, Any]) -> dict[str, Any]:
    """A Kubernetes object with, if it is a Secret, every `data`/`stringData` value masked (keys kept)."""
    if obj.get("kind") != "Secret":
        return obj
    return obj | {f: {k: MASK for k in obj[f]} for f in ("data", "stringData") if isinstance(obj.get(f), dict)}


def mask_secret_manifest(manifest: str) -> str:
    """A multi-document manifest with every Secret's values masked (`mask_secret_object`)."""
    docs = [mask_secret_object(d) if isinstance(d, dict) else d for d in yaml.safe_load_all(manifest)]
    out = [yaml.safe_dump(doc, sort_keys=False) for doc in docs if doc is not None]
    return "---\n" + "---\n".join(out) if out else ""


def redact_fields(value: Any) -> Any:
    """A copy of JSON-like data with the value of every credential-named field masked."""
    if isinstance(value, dict):
        return {k: MASK if _SECRET_FIELD.fullmatch(str(k)) and v else redact_fields(v) for k, v in value.items()}
    if isinstance(value, list):
        return [redact_fields(v) for v in value]
    return value
