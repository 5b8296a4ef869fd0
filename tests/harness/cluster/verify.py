"""Quick checks of a running install (any target), one line per check; keys are never printed."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from harness import llama_stack_auth
from harness.endpoints import Endpoints
from harness.http import Response, request

RATELIMIT_HEADERS = ("x-ratelimit-limit-tokens", "x-ratelimit-remaining-tokens")
# The tier whose budget a verify run may spend (largest default budget first).
KEY_TIERS = ("enterprise", "premium", "free")


@dataclass
class Check:
    name: str
    ok: bool
    detail: str

    def line(self) -> str:
        return f"{'PASS' if self.ok else 'FAIL'}  {self.name}: {self.detail}"


Get = Callable[..., Response]


def pick_key(endpoints: Endpoints) -> tuple[str, str]:
    """(tier, key): the last key of the roomiest tier, the one the test suite is least likely to use."""
    for tier in (*KEY_TIERS, *sorted(endpoints.keys)):
        if endpoints.keys.get(tier):
            return tier, endpoints.keys[tier][-1]
    return "", ""


def _guard(name: str, fn: Callable[[], Check]) -> Check:
    try:
        return fn()
    except OSError as exc:  # connection refused, timeout, DNS: report, don't crash the other checks
        return Check(name, False, f"unreachable ({exc})")


@dataclass
class Verifier:
    endpoints: Endpoints
    http: Get = request
    timeout: float = 15.0
    chat_timeout: float = 120.0

    def run(self) -> list[Check]:
        return [
            _guard("gateway without a key", self.no_key),
            _guard("gateway with a key", self.with_key),
            _guard("chat through the gateway", self.chat),
            _guard("llama-stack health", self.health),
            _guard("llama-stack without a key", self.stack_no_key),
            _guard("llama-stack models", self.models),
        ]

    def _gw(self, path: str) -> str:
        return f"{self.endpoints.gateway_url.rstrip('/')}{path}"

    def _ls(self, path: str) -> str:
        return f"{self.endpoints.llama_stack_url.rstrip('/')}{path}"

    def no_key(self) -> Check:
        resp = self.http("GET", self._gw("/v1/models"), timeout=self.timeout)
        return Check("gateway without a key", resp.status == 401, f"GET /v1/models -> {resp.status} (want 401)")

    def with_key(self) -> Check:
        tier, key = pick_key(self.endpoints)
        if not key:
            return Check("gateway with a key", False, "the target reported no API keys")
        resp = self.http("GET", self._gw("/v1/models"), key=key, timeout=self.timeout)
        ids = [m.get("id") for m in resp.json().get("data", [])] if resp.status == 200 else []
        return Check(
            "gateway with a key", resp.status == 200, f"GET /v1/models with a {tier} key -> {resp.status}, models {ids}"
        )

    def chat(self) -> Check:
        name = "chat through the gateway"
        tier, key = pick_key(self.endpoints)
        model = self.endpoints.gateway_models[0] if self.endpoints.gateway_models else ""
        if not key or not model:
            return Check(name, False, f"need a key and a gateway model (have key: {bool(key)}, model: {model!r})")
        body = {"model": model, "messages": [{"role": "user", "content": "Say hello."}], "max_tokens": 16}
        resp = self.http("POST", self._gw("/v1/chat/completions"), key=key, body=body, timeout=self.chat_timeout)
        if resp.status != 200:
            return Check(name, False, f"POST /v1/chat/completions ({model}) -> {resp.status}: {resp.body[:200]}")
        usage = resp.json().get("usage") or {}
        missing = [h for h in RATELIMIT_HEADERS if h not in resp.headers]
        ok = bool(usage.get("total_tokens")) and not missing
        detail = f"{model}: usage {usage or 'missing'}"
        remaining = resp.headers.get(RATELIMIT_HEADERS[1])
        detail += f", missing headers {missing}" if missing else f", {RATELIMIT_HEADERS[1]}={remaining}"
        return Check(name, ok, detail)

    def health(self) -> Check:
        resp = self.http("GET", self._ls("/v1/health"), timeout=self.timeout)
        return Check("llama-stack health", resp.status == 200, f"GET /v1/health -> {resp.status} {resp.body[:80]}")

    def stack_no_key(self) -> Check:
        """With auth on (the chart default) a keyless call is refused; a stack installed with
        auth off (llama-stack.auth.enabled=false) passes and says so."""
        resp = self.http("GET", self._ls("/v1/models"), timeout=self.timeout, headers={})
        if resp.status == 200:
            return Check("llama-stack without a key", True, "GET /v1/models -> 200: authentication is OFF")
        return Check("llama-stack without a key", resp.status == 401, f"GET /v1/models -> {resp.status} (want 401)")

    def models(self) -> Check:
        key = self.endpoints.llama_stack_key()
        headers = llama_stack_auth.caller_headers(key)
        resp = self.http("GET", self._ls("/v1/models"), timeout=self.timeout, headers=headers)
        if resp.status != 200:
            return Check("llama-stack models", False, f"GET /v1/models -> {resp.status}")
        items = resp.json().get("data", [])
        llms = [str(m.get("id") or m.get("identifier")) for m in items if _is_llm(m)]
        return Check("llama-stack models", bool(llms), f"llm models {llms or 'none registered'}")


def _is_llm(model: dict[str, Any]) -> bool:
    kind = model.get("model_type") or (model.get("custom_metadata") or {}).get("model_type") or "llm"
    return kind == "llm"
