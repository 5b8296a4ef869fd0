"""Small helpers the e2e tests share: a gateway client that keeps headers, SSE parsing,
rate-limit header parsing, and the tier budgets the contract promises."""

from __future__ import annotations

import json
import os
import socket
import struct
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlsplit

import httpx

# Default tier budgets (DESIGN.md, gateway contract): tokens per minute, requests per 2 minutes.
TIER_TOKENS = {"free": 200, "premium": 1000, "enterprise": 5000}
TIER_REQUESTS = {"free": 5, "premium": 20, "enterprise": 100}
# Window lengths in seconds of every tier's budgets (tokens per minute, requests per 2 minutes).
WINDOW_S = {"tokens": 60, "requests": 120}
ABORT_READ_BYTES = 300  # what aborted_stream reads of the reply before it resets the connection
CONNECT_RETRIES = 5  # httpcore backs off 0.5, 1, 2, 4 s: covers a port-forward restart


def words(count: int, stem: str = "w") -> str:
    """A prompt of `count` words; the simulator's dummy tokenizer counts each as one token (plus a few
    for the chat template's message separators)."""
    return " ".join(f"{stem}{i}" for i in range(count))


@dataclass
class RateHeaders:
    limit_tokens: int | None
    remaining_tokens: int | None
    consumed_tokens: int | None
    limit_requests: int | None
    remaining_requests: int | None
    reset_tokens: int | None = None  # seconds until the token window ends
    reset_requests: int | None = None

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
            num("reset-tokens"),
            num("reset-requests"),
        )


@dataclass
class Reply:
    """One gateway response: status, headers, parsed JSON body (or SSE chunks)."""

    status: int
    headers: httpx.Headers
    body: Any = None
    chunks: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def of(cls, response: httpx.Response) -> Reply:
        """A read response: its JSON body, or its text when it is not JSON."""
        return cls(response.status_code, response.headers, _json(response))

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


DURATION_UNITS_S = {"s": 1, "m": 60, "h": 3600}


def duration_s(text: str) -> float:
    """Seconds in a duration as the charts write them: a window (`12s`, `2m`, `1h`) or an Envoy timeout (`0.25s`)."""
    text = str(text)
    return float(text[:-1]) * DURATION_UNITS_S[text[-1]]


def auth_header(key: str, scheme: str = "Bearer") -> dict[str, str]:
    return {"Authorization": f"{scheme} {key}"}


class Gateway:
    """The stack's MaaS gateway as a user calls it, keeping status and headers."""

    def __init__(self, base_url: str, model: str) -> None:
        self.model = model
        # Connect retries only: on cluster targets the gateway sits behind `kubectl port-forward`,
        # which exits when the pod resets one forwarded connection (Envoy does after an early 401
        # to a request whose body is still arriving), or its pod is replaced, and is back a second
        # later. A refused connect never reached the stack, so retrying it cannot hide a gateway
        # answer. No connection is kept for the next call: one kept across a port-forward's restart
        # is dead, and the call on it fails without having reached the gateway.
        transport = httpx.HTTPTransport(retries=CONNECT_RETRIES, limits=httpx.Limits(max_keepalive_connections=0))
        self.http = httpx.Client(base_url=base_url.rstrip("/"), timeout=60, transport=transport)

    def models(self, key: str | None, scheme: str = "Bearer", headers: dict[str, str] | None = None) -> Reply:
        hdrs = {**(auth_header(key, scheme) if key else {}), **(headers or {})}
        response = self.http.get("/v1/models", headers=hdrs)
        return Reply.of(response)

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
        return Reply.of(response)

    def stream(self, key: str, text: str, *, max_tokens: int | None = None, include_usage: bool = True) -> Reply:
        body = {**self._body(text, max_tokens), "stream": True}
        if include_usage:
            body["stream_options"] = {"include_usage": True}
        with self.http.stream(
            "POST", "/v1/chat/completions", json=body, headers=self._headers(key, "Bearer", None)
        ) as response:
            if response.status_code != 200:
                response.read()
                return Reply.of(response)
            chunks = parse_sse(response.iter_lines())
            return Reply(response.status_code, response.headers, None, chunks)

    def received_headers(self, key: str) -> dict[str, Any] | None:
        """What the model server reports about the header names it received (the local target's
        recording tap, /tap/received-headers, reached through the gateway); None when it does not."""
        response = self.http.get("/tap/received-headers", headers=auth_header(key))
        if response.status_code == 404:
            return None
        assert response.status_code == 200, f"HTTP {response.status_code} {response.text[:300]}"
        return response.json()

    def post_raw(self, key: str, body: bytes, *, content_type: str | None = "application/json") -> Reply:
        """POST exact bytes to /v1/chat/completions; SSE replies are parsed into chunks."""
        headers = self._headers(key, "Bearer", {"Content-Type": content_type} if content_type else None)
        with self.http.stream("POST", "/v1/chat/completions", content=body, headers=headers) as response:
            response.read()
            if response.status_code == 200 and "text/event-stream" in response.headers.get("content-type", ""):
                return Reply(200, response.headers, None, parse_sse(response.iter_lines()))
            return Reply.of(response)

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
    assert prompt is not None and completion is not None and total is not None, f"usage incomplete: {usage}"
    assert prompt + completion == total, f"usage does not add up: {usage}"
    assert total > 0, f"usage is zero: {usage}"


# A rate-limit test checks counters that reset at window bounds (epoch-aligned): it needs the
# whole test inside one window. The gateway tells how much is left (x-ratelimit-reset-*).
WINDOW_MARGIN_S = 1.0


class BudgetSource(Protocol):
    """What the budget helpers read: a gateway's /v1/models answer for a key."""

    def models(self, key: str | None) -> Reply: ...


def await_window(gateway: BudgetSource, key: str, need_s: float) -> None:
    """Return once at least `need_s` seconds are left in the key's token and request windows,
    sleeping into the next window when too little is left. Reads the budget through /v1/models,
    which costs nothing. Raises when the gateway sends no reset headers."""
    for _ in range(3):  # the token and the request window may each need one wait
        rate = gateway.models(key).rate
        resets = [r for r in (rate.reset_tokens, rate.reset_requests) if r is not None]
        assert resets, "the gateway sent no x-ratelimit-reset-* headers on /v1/models"
        short = [r for r in resets if r < need_s + WINDOW_MARGIN_S]
        if not short:
            return
        time.sleep(max(short) + WINDOW_MARGIN_S / 2)
    raise AssertionError(f"could not find {need_s}s left in the windows of this key after three waits")


def wait_for_charge(gateway: BudgetSource, key: str, expected_remaining: int, *, timeout_s: float = 5.0) -> int:
    """The key's remaining tokens once they have dropped to `expected_remaining` (or below: the
    charge is at least what was expected). Usage is charged when the response stream ends, just
    after the client has it. Fails loudly, with what it saw, when the charge never comes."""
    deadline = time.monotonic() + timeout_s
    seen: list[int | None] = []
    while time.monotonic() < deadline:
        remaining = gateway.models(key).rate.remaining_tokens
        if not seen or seen[-1] != remaining:
            seen.append(remaining)
        if remaining is not None and remaining <= max(expected_remaining, 0):
            return remaining
        time.sleep(0.05)
    raise AssertionError(
        f"the charge never came: remaining tokens stayed {seen} for {timeout_s}s, expected <= {expected_remaining}"
    )


def remaining_tokens(gateway: BudgetSource, key: str) -> int:
    remaining = gateway.models(key).rate.remaining_tokens
    assert remaining is not None, "the gateway sent no x-ratelimit-remaining-tokens on /v1/models"
    return remaining


def aborted_stream(url: str, key: str, body: bytes) -> bytes:
    """Send a streaming chat, read ABORT_READ_BYTES of the reply, then reset the connection (RST)."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port or 80), timeout=30) as sock:
        head = (
            f"POST /v1/chat/completions HTTP/1.1\r\nHost: {parts.netloc}\r\nAuthorization: Bearer {key}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        sock.sendall(head.encode() + body)
        received = b""
        while len(received) < ABORT_READ_BYTES:
            data = sock.recv(ABORT_READ_BYTES - len(received))
            if not data:
                break
            received += data
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close = reset
    return received


def harness_cli(target: Any, command: str, *args: str) -> subprocess.CompletedProcess[str]:
    """`python -m harness <command> <args>` on the test's stack (its run name, or its namespace), as a
    user runs it: a process of its own, which picks nothing up from RAG_TARGET."""
    env = {k: v for k, v in os.environ.items() if k != "RAG_TARGET"}
    if target.name == "local":
        where = ["--run-name", target.options.run_name]
    else:
        where = ["--namespace", target.deployment().namespace]
    return subprocess.run(
        [sys.executable, "-m", "harness", command, *args, "--target", target.name, *where],
        capture_output=True, text=True, timeout=120, env=env, check=False,
    )  # fmt: skip
