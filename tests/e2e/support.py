"""Small helpers the e2e tests share: a gateway client that keeps headers, SSE parsing,
rate-limit header parsing, and the tier budgets the contract promises."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import httpx

# Default tier budgets (DESIGN.md, gateway contract): tokens per minute, requests per 2 minutes.
TIER_TOKENS = {"free": 200, "premium": 1000, "enterprise": 5000}
TIER_REQUESTS = {"free": 5, "premium": 20, "enterprise": 100}
CONNECT_RETRIES = 5  # httpcore backs off 0.5, 1, 2, 4 s: covers a port-forward restart


def words(count: int, stem: str = "w") -> str:
    """A prompt of exactly `count` whitespace tokens (the local fake counts tokens so)."""
    return " ".join(f"{stem}{i}" for i in range(count))


@dataclass
class RateHeaders:
    limit_tokens: int | None
    remaining_tokens: int | None
    consumed_tokens: int | None
    limit_requests: int | None
    remaining_requests: int | None

    @classmethod
    def of(cls, headers: httpx.Headers) -> RateHeaders:
        def num(name: str) -> int | None:
            value = headers.get(f"x-ratelimit-{name}")
            return int(value.split(",")[0].split(";")[0].strip()) if value else None

        return cls(
            num("limit-tokens"),
            num("remaining-tokens"),
            num("consumed-tokens"),
            num("limit-requests"),
            num("remaining-requests"),
        )


@dataclass
class Reply:
    """One gateway response: status, headers, parsed JSON body (or SSE chunks)."""

    status: int
    headers: httpx.Headers
    body: Any = None
    chunks: list[dict[str, Any]] = field(default_factory=list)

    @property
    def rate(self) -> RateHeaders:
        return RateHeaders.of(self.headers)

    @property
    def usage(self) -> dict[str, int]:
        source = self.chunks[-1] if self.chunks else self.body
        return (source or {}).get("usage") or {}

    @property
    def content(self) -> str:
        if self.chunks:
            return "".join(c["choices"][0]["delta"].get("content") or "" for c in self.chunks if c.get("choices"))
        return self.body["choices"][0]["message"]["content"] or ""

    def describe(self) -> str:
        """For assertion messages: status, rate headers, body start (never the request's key)."""
        return f"HTTP {self.status} {self.rate} body={str(self.body)[:300]}"


def auth_header(key: str, scheme: str = "Bearer") -> dict[str, str]:
    return {"Authorization": f"{scheme} {key}"}


class Gateway:
    """The stack's MaaS gateway as a user calls it, keeping status and headers."""

    def __init__(self, base_url: str, model: str) -> None:
        self.model = model
        # Connect retries only: on cluster targets the gateway sits behind `kubectl port-forward`,
        # which exits when the pod resets one forwarded connection (Envoy does after an early 401
        # to a request whose body is still arriving) and is back a second later. A refused
        # connect never reached the stack, so retrying it cannot hide a gateway answer.
        transport = httpx.HTTPTransport(retries=CONNECT_RETRIES)
        self.http = httpx.Client(base_url=base_url.rstrip("/"), timeout=60, transport=transport)

    def models(self, key: str | None, scheme: str = "Bearer", headers: dict[str, str] | None = None) -> Reply:
        hdrs = {**(auth_header(key, scheme) if key else {}), **(headers or {})}
        response = self.http.get("/v1/models", headers=hdrs)
        return Reply(response.status_code, response.headers, _json(response))

    def chat(
        self,
        key: str | None,
        text: str,
        *,
        max_tokens: int | None = None,
        scheme: str = "Bearer",
        headers: dict[str, str] | None = None,
    ) -> Reply:
        response = self.http.post(
            "/v1/chat/completions", json=self._body(text, max_tokens), headers=self._headers(key, scheme, headers)
        )
        return Reply(response.status_code, response.headers, _json(response))

    def stream(self, key: str, text: str, *, max_tokens: int | None = None, include_usage: bool = True) -> Reply:
        body = {**self._body(text, max_tokens), "stream": True}
        if include_usage:
            body["stream_options"] = {"include_usage": True}
        with self.http.stream(
            "POST", "/v1/chat/completions", json=body, headers=self._headers(key, "Bearer", None)
        ) as response:
            if response.status_code != 200:
                response.read()
                return Reply(response.status_code, response.headers, _json(response))
            chunks = parse_sse(response.iter_lines())
            return Reply(response.status_code, response.headers, None, chunks)

    def _body(self, text: str, max_tokens: int | None) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self.model, "messages": [{"role": "user", "content": text}]}
        if max_tokens is not None:
            body["max_tokens"] = max_tokens
        return body

    @staticmethod
    def _headers(key: str | None, scheme: str, extra: dict[str, str] | None) -> dict[str, str]:
        return {**(auth_header(key, scheme) if key else {}), **(extra or {})}


def parse_sse(lines: Any) -> list[dict[str, Any]]:
    """`data: {...}` events up to `data: [DONE]`; raises if the stream never says DONE."""
    chunks: list[dict[str, Any]] = []
    for line in lines:
        if not line.startswith("data:"):
            continue
        data = line[5:].strip()
        if data == "[DONE]":
            return chunks
        chunks.append(json.loads(data))
    raise AssertionError(f"stream ended without data: [DONE] after {len(chunks)} chunk(s)")


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text


def assert_usage_arithmetic(usage: Any) -> None:
    """prompt + completion = total, all present and the total positive."""
    get = (lambda k: usage.get(k)) if isinstance(usage, dict) else (lambda k: getattr(usage, k, None))
    prompt, completion, total = get("prompt_tokens"), get("completion_tokens"), get("total_tokens")
    assert None not in (prompt, completion, total), f"usage incomplete: {usage}"
    assert prompt + completion == total, f"usage does not add up: {usage}"
    assert total > 0, f"usage is zero: {usage}"
