"""Tiny stdlib HTTP client for status and verify checks (no extra dependency, keys only in headers)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any

from harness import llama_stack_auth


@dataclass
class Response:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: str = ""

    def json(self) -> Any:
        return json.loads(self.body)


def request(
    method: str,
    url: str,
    *,
    key: str = "",
    body: dict[str, Any] | None = None,
    timeout: float = 30.0,
    headers: dict[str, str] | None = None,
) -> Response:
    """One request; HTTP errors come back as a Response (callers check the status), network errors raise.
    `headers` (e.g. harness.llama_stack_auth.caller_headers) are sent as given, after `key`'s;
    with neither, the caller headers remembered for an authenticated llama-stack at `url`."""
    if not key and headers is None:
        headers = llama_stack_auth.headers_for(url)
    bearer = {"Authorization": f"Bearer {key}"} if key else {}
    headers = {"Content-Type": "application/json", **bearer, **(headers or {})}
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return Response(resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read().decode())
    except urllib.error.HTTPError as err:
        return Response(err.code, {k.lower(): v for k, v in err.headers.items()}, err.read().decode(errors="replace"))


def model_ids(
    base_url: str, key: str = "", timeout: float = 15.0, headers: dict[str, str] | None = None
) -> list[str]:
    """Ids from an OpenAI-style `GET /v1/models`; empty when unreachable or refused."""
    try:
        resp = request("GET", f"{base_url.rstrip('/')}/v1/models", key=key, timeout=timeout, headers=headers)
    except OSError:
        return []
    if resp.status != 200:
        return []
    doc = resp.json()
    items = doc.get("data", []) if isinstance(doc, dict) else doc
    return [str(item.get("id") or item.get("identifier")) for item in items if isinstance(item, dict)]
