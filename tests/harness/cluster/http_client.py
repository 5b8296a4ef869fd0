"""Tiny stdlib HTTP client for status and verify checks (no extra dependency, keys only in headers)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Response:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: str = ""

    def json(self) -> Any:
        return json.loads(self.body)


def request(
    method: str, url: str, *, key: str = "", body: dict[str, Any] | None = None, timeout: float = 30.0
) -> Response:
    """One request; HTTP errors come back as a Response (callers check the status), network errors raise."""
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return Response(resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read().decode())
    except urllib.error.HTTPError as err:
        return Response(err.code, {k.lower(): v for k, v in err.headers.items()}, err.read().decode(errors="replace"))


def model_ids(base_url: str, key: str = "", timeout: float = 15.0) -> list[str]:
    """Ids from an OpenAI-style `GET /v1/models`; empty when unreachable or refused."""
    try:
        resp = request("GET", f"{base_url.rstrip('/')}/v1/models", key=key, timeout=timeout)
    except OSError:
        return []
    if resp.status != 200:
        return []
    doc = resp.json()
    items = doc.get("data", []) if isinstance(doc, dict) else doc
    return [str(item.get("id") or item.get("identifier")) for item in items if isinstance(item, dict)]
