"""The standalone gateway's request path, with the chart's own Lua script at its centre.

`files/gateway.lua` runs in-process in LuaJIT (lupa's `luajit21`, the Lua flavour Envoy embeds),
with the preamble the chart renders (`TIERS`, ...) and `files/json.lua` in front of it, exactly
as in the Envoy ConfigMap. Around it sits a small model of what Envoy and envoyproxy/ratelimit
do with the script's results, written from the chart's Envoy config:

- the two rate limit filters (tokens first, then requests) send the descriptor
  (kind, tier, user, window bucket) with `hits_addend` 0 (tokens) and 1 (requests); `/v1/models`
  only peeks; a refusal is a local 429 with `x-envoy-ratelimited`;
- with routing by model, the catalog's model budgets have filters of their own, in the chart's
  order (tier tokens, tier-model tokens, model tokens, tier requests, model requests); each sends
  its descriptor only when the script named the model in the budget's metadata key;
- `json_to_metadata` / `sse_to_metadata` copy `usage.{total,prompt,completion}_tokens` into `maas.usage`;
- at stream end each token filter that ran charges `maas.usage:charged` (`apply_on_stream_done`);
- the rate limit service keeps one counter per descriptor and unit period (its units are fixed
  and epoch-aligned), answers OVER_LIMIT when a counter passes its limit, and reports
  `X-RateLimit-*` in Envoy's DRAFT_VERSION_03 form.

The clock is injected (`os.time` inside the script), so windows are crossed without waiting.
These are stand-ins for Envoy and the rate limit service: the e2e tests prove the real programs
agree with them.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import lupa.luajit21 as lupa
import yaml

REPO = Path(__file__).resolve().parents[3]
CHART = REPO / "charts" / "maas-gateway"
STUB = Path(__file__).with_name("envoy_stub.lua")
# Another gateway.lua to run instead of the chart's (the mutation run points it at its mutants).
GATEWAY_LUA_ENV = "MAAS_GATEWAY_LUA"
KEYS_FILE_ENV = "MAAS_API_KEYS_FILE"
HMAC_FILE_ENV = "MAAS_API_KEYS_HMAC_FILE"
# The key hashing secret of the model's gateway (apiKeys.hmac).
HMAC_SECRET = "unit-test-key-hashing-secret"
# The rate limit service's units (envoyproxy/ratelimit), as the chart's rlsUnit helper picks them.
RLS_UNITS = (1, 60, 3600, 86400)


def window_seconds(window: str) -> int:
    n = int(window[:-1])
    return n * {"s": 1, "m": 60, "h": 3600}[window[-1]]


def rls_unit(window: int) -> int:
    """The smallest unit of the rate limit service that the window divides (maas-gateway.rlsUnit)."""
    return next(unit for unit in RLS_UNITS if unit >= window and unit % window == 0)


@dataclass(frozen=True)
class Tier:
    requests_limit: int
    requests_window: int
    tokens_limit: int
    tokens_window: int

    def limit(self, kind: str) -> int:
        return self.requests_limit if kind == "requests" else self.tokens_limit

    def window(self, kind: str) -> int:
        return self.requests_window if kind == "requests" else self.tokens_window


@cache
def chart_tiers() -> dict[str, Tier]:
    """The tiers of the chart's default values (read once: parsing YAML is slow)."""
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    return {
        name: Tier(
            requests_limit=int(t["requests"]["limit"]),
            requests_window=window_seconds(t["requests"]["window"]),
            tokens_limit=int(t["tokens"]["limit"]),
            tokens_window=window_seconds(t["tokens"]["window"]),
        )
        for name, t in values["tiers"].items()
    }


@dataclass
class Clock:
    """Seconds since the epoch, moved by the test; the script reads it as os.time()."""

    now: float = 1_800_000_000.0

    def __call__(self) -> int:
        return math.floor(self.now)

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def to_window_start(self, window: int, offset: float = 0.0) -> None:
        """Move forward to the next start of a `window`-second window, plus `offset` seconds."""
        self.now = (math.floor(self.now / window) + 1) * window + offset


@dataclass(frozen=True)
class Status:
    over: bool
    limit: int
    remaining: int
    reset: int
    unit: int


class RateLimitService:
    """envoyproxy/ratelimit's fixed-window counters for the chart's descriptors."""

    def __init__(self, tiers: dict[str, Tier]) -> None:
        self.tiers = tiers
        self.counters: dict[tuple[str, str, str, str, int], int] = {}
        self.down = False

    def hit(
        self, *, kind: str, tier: str, user: str, window: str, hits: int, now: int, limit: int | None = None
    ) -> Status:
        """One descriptor's check. The tier budgets take their limit and window from the tier; the
        model budgets (`limit` given) are per minute, keyed (kind, model[|tier], user or "*")."""
        if limit is None:
            t = self.tiers[tier]
            unit = rls_unit(t.window(kind))
            limit = t.limit(kind)
        else:
            unit = 60
        key = (kind, tier, user, window, now - now % unit)
        after = self.counters.get(key, 0) + hits
        if hits:
            self.counters[key] = after
        over = after > limit
        return Status(
            over=over, limit=limit, remaining=0 if over else limit - after, reset=unit - now % unit, unit=unit
        )


@dataclass
class Reply:
    status: int
    headers: list[tuple[str, str]]
    body: str
    logs: list[str] = field(default_factory=list)

    def header(self, name: str) -> str | None:
        values = self.all(name)
        return values[0] if values else None

    def all(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k == name.lower()]

    def int_header(self, name: str) -> int | None:
        value = self.header(name)
        return None if value is None else int(value)

    def json(self) -> Any:
        return json.loads(self.body)

    def describe(self) -> str:
        return f"{self.status} {self.headers} {self.body[:300]!r}"


# What the model server answers: (status, headers, body), or DOWN (connection refused).
Upstream = Callable[[dict[str, str], str], tuple[int, list[tuple[str, str]], str]]
DOWN = "down"


def model_server(total_tokens: int = 30, status: int = 200, completion_tokens: int = 1) -> Upstream:
    """A model server answering every call with `status` and a chat completion of `total_tokens`
    (`completion_tokens` of them output)."""

    def answer(headers: dict[str, str], body: str) -> tuple[int, list[tuple[str, str]], str]:
        if status != 200:
            error = {"error": {"message": "refused", "type": "invalid_request_error", "code": str(status)}}
            return status, [("content-type", "application/json")], json.dumps(error)
        usage = {
            "prompt_tokens": total_tokens - completion_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": total_tokens,
        }
        doc = {"object": "chat.completion", "choices": [{"message": {"content": "ok"}}], "usage": usage}
        return 200, [("content-type", "application/json")], json.dumps(doc)

    return answer


def streaming_server(total_tokens: int = 30, completion_tokens: int | None = None) -> Upstream:
    """A model server that streams; the final chunk carries usage when the request asks for it
    (with its prompt/completion parts when `completion_tokens` is given)."""

    def answer(headers: dict[str, str], body: str) -> tuple[int, list[tuple[str, str]], str]:
        doc = json.loads(body)
        chunks: list[dict[str, Any]] = [{"choices": [{"delta": {"content": "ok"}}]}]
        if (doc.get("stream_options") or {}).get("include_usage"):
            usage: dict[str, int] = {"total_tokens": total_tokens}
            if completion_tokens is not None:
                usage |= {"prompt_tokens": total_tokens - completion_tokens, "completion_tokens": completion_tokens}
            chunks.append({"choices": [], "usage": usage})
        text = "".join(f"data: {json.dumps(c)}\n\n" for c in chunks) + "data: [DONE]\n\n"
        return 200, [("content-type", "text/event-stream")], text

    return answer


def usage_from(content_type: str, body: str) -> dict[str, float] | None:
    """What json_to_metadata / sse_to_metadata put into maas.usage (total_tokens, and
    prompt_tokens / completion_tokens from usage's parts or the Responses API's input/output)."""
    found: dict[str, float] | None = None
    if "application/json" in content_type:
        docs = [body]
    elif "text/event-stream" in content_type:
        docs = [line[5:].strip() for line in body.splitlines() if line.startswith("data:")]
    else:
        return None
    for text in docs:
        try:
            doc = json.loads(text)
        except ValueError:
            continue
        if not isinstance(doc, dict):
            continue
        for usage in (doc.get("usage"), (doc.get("response") or {}).get("usage")):
            if not isinstance(usage, dict):
                continue
            for source, target in (
                ("total_tokens", "total_tokens"),
                ("prompt_tokens", "prompt_tokens"),
                ("completion_tokens", "completion_tokens"),
                ("input_tokens", "prompt_tokens"),
                ("output_tokens", "completion_tokens"),
            ):
                if isinstance(usage.get(source), int | float):
                    found = (found or {}) | {target: usage[source]}
    return found


# Token budgets (charged at stream end) and the metadata key that names the model for each model budget.
TOKEN_BUDGETS = ("tokens", "tier_model_tokens", "model_tokens")
MODEL_BUDGET_KEYS = {"tier_model_tokens": "tier_model_tpm", "model_tokens": "model_tpm", "model_requests": "model_rpm"}


def lua_table_to_dict(table: Any) -> dict[str, Any]:
    return {} if table is None else {str(k): v for k, v in table.items()}


class Gateway:
    """One Envoy worker of the standalone gateway plus its rate limit service."""

    def __init__(
        self,
        *,
        keys: list[tuple[str, str, str]],
        tmp_path: Path,
        tiers: dict[str, Tier] | None = None,
        clock: Clock | None = None,
        failure_mode: str = "closed",
        default_max_tokens: int = 4096,
        reload_seconds: int = 30,
        keys_env_set: bool = True,
        validate_path: str = "/auth/validate",
        buffer_limit: int = 16 * 1024 * 1024,
        models: dict[str, dict[str, Any]] | None = None,
        llama_stack_prefix: str | None = None,
        onward_seconds: int = 900,
        chunking: tuple[int, int] = (400, 100),
    ) -> None:
        self.tiers = tiers or dict(chart_tiers())
        self.clock = clock or Clock()
        self.limiter = RateLimitService(self.tiers)
        self.failure_mode = failure_mode
        self.buffer_limit = buffer_limit
        self.validate_path = validate_path
        # The routing table of maas-gateway.routingTable (public id -> cluster, served, tiers, meta);
        # None: routing.byModel off.
        self.models = models
        # maas-gateway llamaStack.pathPrefix (None: llamaStack.enabled false) and onwardSeconds.
        self.llama_stack_prefix = llama_stack_prefix
        self.onward_seconds = onward_seconds
        # llamaStack.chunking: (sizeTokens, overlapTokens).
        self.chunking = chunking
        self.keys_file = tmp_path / "api-keys"
        self.write_keys(keys)
        self.hmac_file = tmp_path / "hmac-key"
        self.hmac_file.write_text(HMAC_SECRET + "\n")
        self.lua = lupa.LuaRuntime(unpack_returned_tuples=True)
        env = {KEYS_FILE_ENV: str(self.keys_file), HMAC_FILE_ENV: str(self.hmac_file)} if keys_env_set else {}
        self.lua.globals().os.time = lambda *args: self.clock()
        self.lua.globals().os.getenv = lambda name: env.get(name)
        self.stub = self.lua.execute(STUB.read_text())
        self.stub.install_pairs()
        script = Path(os.environ.get(GATEWAY_LUA_ENV) or CHART / "files" / "gateway.lua").read_text()
        self.lua.execute(
            "\n".join(
                [
                    self.preamble(default_max_tokens, reload_seconds),
                    (CHART / "files" / "json.lua").read_text(),
                    (CHART / "files" / "sha256.lua").read_text(),
                    script,
                ]
            )
        )
        self.charges: list[int] = []
        # Clusters the model calls were sent to (when `upstream` maps clusters to servers).
        self.clusters: list[str] = []

    def write_keys(self, keys: list[tuple[str, str, str]]) -> None:
        self.keys_file.write_text("".join(f"{tier} {user} {key}\n" for tier, user, key in keys))

    def preamble(self, default_max_tokens: int, reload_seconds: int) -> str:
        """The generated table the chart puts in front of the script (envoy-configmap.yaml)."""
        lines = ["TIERS = {"]
        for name, t in self.tiers.items():
            lines.append(
                f'  ["{name}"] = {{requests_limit = {t.requests_limit}, requests_window = {t.requests_window}, '
                f"tokens_limit = {t.tokens_limit}, tokens_window = {t.tokens_window}}},"
            )
        lines += [
            "}",
            f'KEYS_FILE_ENV = "{KEYS_FILE_ENV}"',
            f'HMAC_FILE_ENV = "{HMAC_FILE_ENV}"',
            f"RELOAD_SECONDS = {reload_seconds}",
            f"DEFAULT_MAX_TOKENS = {default_max_tokens}",
            f'VALIDATE_PATH = "{self.validate_path}"',
            f"ROUTE_BY_MODEL = {'true' if self.models is not None else 'false'}",
            f"MODELS_JSON = [==[{json.dumps(self.models or {}, sort_keys=True)}]==]",
            f'LLAMA_STACK_PREFIX = "{self.llama_stack_prefix}"'
            if self.llama_stack_prefix
            else "LLAMA_STACK_PREFIX = nil",
            f"ONWARD_SECONDS = {self.onward_seconds}",
            f"LLAMA_STACK_CHUNKING = {{ size = {self.chunking[0]}, overlap = {self.chunking[1]} }}",
        ]
        return "\n".join(lines)

    # -- one HTTP exchange ------------------------------------------------------------------------

    def call(
        self,
        method: str,
        path: str,
        *,
        key: str | None = None,
        headers: list[tuple[str, str]] | None = None,
        body: str | dict[str, Any] | None = None,
        upstream: Upstream | str | dict[str, Upstream] | None = None,
        duration: float = 0.0,
        broken_metadata: bool = False,
    ) -> Reply:
        """Send one request through the filter chain; `duration` seconds pass before its stream ends.
        `upstream` may map Envoy cluster names to model servers: the route's cluster is then
        maas_upstream for /v1/models and, for model calls with routing on, the x-maas-cluster
        header's value when the script last cleared the route cache (Envoy's cluster_header; a
        name without a cluster is Envoy's 503)."""
        raw = json.dumps(body) if isinstance(body, dict) else body
        request_headers = [(":method", method), (":path", path), *(headers or [])]
        if key is not None:
            request_headers.append(("authorization", f"Bearer {key}"))
        md = self.stub.metadata()
        request = self.stub.handle(self.lua.table_from([self.lua.table_from(h) for h in request_headers]), raw, md)
        logs: list[str] = []
        request.too_large = raw is not None and len(raw.encode()) > self.buffer_limit
        request.broken_metadata = broken_metadata
        suspended = self.run("envoy_on_request", request)
        logs += list(request.logs.values())
        local: Reply | None = None
        if suspended == "413":
            # Envoy's own answer when body() outgrows the buffer; the script is never resumed.
            local = Reply(413, [("content-type", "text/plain")], "Payload Too Large")
        elif request.reply is not None:
            # A reply the script sent itself: the request went no further, nothing was checked or charged.
            return self.reply_of(request.reply, logs)

        maas = lua_table_to_dict(md.namespaces["maas"])
        # The route headers Envoy matches on: the script's at its last route clearing, else the client's.
        if request.route_cleared:
            match = lua_table_to_dict(request.route_match)
        else:
            sent_headers = dict(request_headers)
            match = {"llama_stack": sent_headers.get("x-maas-llama-stack"), "onward": sent_headers.get("x-maas-onward")}
        route = self.route(path, match)
        # The routes whose calls count a request and are charged at end of stream.
        charged = route in ("model", "llama_stack_model")
        statuses: list[tuple[str, Status]] = []
        token_filters_ran: list[str] = []
        if local is None and "tier" in maas and route != "direct":
            for kind in self.filters(route, maas):
                hits = 1 if (kind in ("requests", "model_requests") and charged) else 0
                if kind in TOKEN_BUDGETS and charged:
                    token_filters_ran.append(kind)
                if self.limiter.down:
                    if self.failure_mode == "closed" and charged:
                        local = self.local_reply(503, "rate_limit_service_unavailable", "service_unavailable")
                        break
                    continue
                status = self.check(kind, maas, hits)
                statuses.append((kind, status))
                if status.over and charged:
                    local = self.local_reply(429, "rate_limit_exceeded", "rate_limit_exceeded")
                    local.headers.append(("x-envoy-ratelimited", "true"))
                    break

        if local is None:
            if route == "direct":
                local = Reply(404, [], "")
            else:
                forwarded = {e[1]: e[2] for e in request.hdrs.entries.values()}
                sent = request.buf.bytes if request.buf is not None else ""
                answer: Upstream | str | None
                if isinstance(upstream, dict):
                    # Envoy's route: the static maas_upstream, or cluster_header on the catch-all
                    # route when routing by model (read when the route was last picked).
                    cluster: str | None = "maas_upstream"
                    if route.startswith("llama_stack"):
                        cluster = "maas_llama_stack"
                    elif route in ("model", "onward") and self.models is not None:
                        cluster = (
                            request.route_header
                            if request.route_cleared
                            else dict(request_headers).get("x-maas-cluster")
                        )
                    answer = upstream.get(str(cluster), DOWN)
                    self.clusters.append(str(cluster))
                else:
                    answer = upstream
                # The routes remove the routing headers before the upstream sees them.
                for name in ("x-maas-cluster", "x-maas-llama-stack", "x-maas-onward"):
                    forwarded.pop(name, None)
                answer = answer or model_server()
                if answer == DOWN:
                    local = self.local_reply(503, "upstream_unavailable", "service_unavailable")
                else:
                    assert callable(answer), f"upstream {answer!r} is neither a model server nor DOWN"
                    status_code, response_headers, response_body = answer(forwarded, sent)
                    usage = usage_from(dict(response_headers).get("content-type", ""), response_body)
                    for name, value in (usage or {}).items():
                        md.set(md, "maas.usage", name, value)
                    local = Reply(status_code, list(response_headers), response_body)
        response = local
        # Encoder side: each rate limit filter that answered adds its X-RateLimit-* headers.
        for kind, status in reversed(statuses):
            response.headers += [
                ("x-ratelimit-limit", f'{status.limit}, {status.limit};w={status.unit};name="{kind}"'),
                ("x-ratelimit-remaining", str(status.remaining)),
                ("x-ratelimit-reset", str(status.reset)),
            ]
        handle = self.stub.handle(
            self.lua.table_from(
                [self.lua.table_from([":status", str(response.status)])]
                + [self.lua.table_from([k, v]) for k, v in response.headers]
            ),
            # A response without a body ends with its headers: Envoy's body() gives the script nil.
            response.body or None,
            md,
        )
        self.run("envoy_on_response", handle)
        logs += list(handle.logs.values())
        out = Reply(
            status=int(handle.hdrs.get(handle.hdrs, ":status")),
            headers=[(e[1], e[2]) for e in handle.hdrs.entries.values() if e[1] != ":status"],
            body=handle.buf.bytes if handle.buf is not None else "",
            logs=logs,
        )
        # Stream end: each token filter that ran charges maas.usage:charged (apply_on_stream_done).
        self.clock.advance(duration)
        if token_filters_ran and not self.limiter.down:
            charge = lua_table_to_dict(md.namespaces["maas.usage"]).get("charged")
            if charge is not None:
                hits = math.floor(float(charge))
                self.charges.append(hits)
                for kind in token_filters_ran:
                    self.check(kind, maas, hits, at_start=False)
        return out

    def filters(self, route: str, maas: dict[str, Any]) -> list[str]:
        """The rate limit filters that send a descriptor, in the chart's filter order (the onward route has none)."""
        if route == "onward":
            return []
        if route != "model" or self.models is None:
            return ["tokens", "requests"]
        named = {kind: key in maas for kind, key in MODEL_BUDGET_KEYS.items()}
        return [
            kind
            for kind in ("tokens", "tier_model_tokens", "model_tokens", "requests", "model_requests")
            if named.get(kind, True)
        ]

    def check(self, kind: str, maas: dict[str, Any], hits: int, *, at_start: bool = True) -> Status:
        """One filter's descriptor sent to the rate limit service (now, or at stream end)."""
        now = self.clock()
        if kind in ("tokens", "requests"):
            return self.limiter.hit(
                kind=kind, tier=maas["tier"], user=maas["user"], window=maas[f"{kind}_bucket"], hits=hits, now=now
            )
        model = maas[MODEL_BUDGET_KEYS[kind]]
        limits = (self.models or {})[model]["limits"]
        if kind == "tier_model_tokens":
            limit, scope, user = limits["tiers"][maas["tier"]]["tpm"], f"{model}|{maas['tier']}", maas["user"]
        else:
            limit, scope, user = limits["rpm" if kind == "model_requests" else "tpm"], model, "*"
        return self.limiter.hit(
            kind=kind, tier=scope, user=user, window=maas["minute_bucket"], hits=hits, now=now, limit=int(limit)
        )

    def run(self, function: str, handle: Any) -> Any:
        """Call one of the script's entry points in a coroutine, as Envoy does; returns what the
        coroutine yielded when Envoy stopped it (\"413\"), else None."""
        co = self.lua.eval(f"function(h) return coroutine.wrap(function() {function}(h) end) end")(handle)
        return co()

    def route(self, path: str, match: dict[str, Any]) -> str:
        """The chart's route for a path and the route headers, in the route table's order."""
        bare = path.split("?", 1)[0]
        if bare == self.validate_path:
            return "direct"
        if bare == "/v1/models" or bare.startswith("/v1/models/"):
            return "models"
        if self.llama_stack_prefix and bare.startswith(self.llama_stack_prefix + "/"):
            return "llama_stack_model" if match.get("llama_stack") == "model" else "llama_stack"
        if match.get("onward") is not None:
            return "onward"
        return "model"

    def local_reply(self, status: int, code: str, etype: str) -> Reply:
        body = json.dumps({"error": {"message": code, "type": etype, "code": code}})
        return Reply(status, [("content-type", "application/json")], body)

    def reply_of(self, reply: Any, logs: list[str]) -> Reply:
        headers = [(e[1], e[2]) for e in reply.headers.entries.values()]
        status = next(int(v) for k, v in headers if k == ":status")
        return Reply(status, [(k, v) for k, v in headers if k != ":status"], reply.body or "", logs)

    # -- what a client sees ---------------------------------------------------------------------

    def chat(self, key: str, *, upstream: Upstream | str | None = None, **extra: Any) -> Reply:
        body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 8, **extra}
        return self.call("POST", "/v1/chat/completions", key=key, body=body, upstream=upstream)

    def budget(self, key: str, kind: str = "tokens") -> int:
        """The key's remaining budget as /v1/models reports it (costs nothing)."""
        reply = self.call(
            "GET", "/v1/models", key=key, upstream=lambda h, b: (200, [("content-type", "application/json")], "{}")
        )
        assert reply.status == 200, reply.describe()
        value = reply.int_header(f"x-ratelimit-remaining-{kind}")
        assert value is not None, reply.describe()
        return value
