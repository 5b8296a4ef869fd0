"""FAKE OpenAI-compatible model server standing in for llm-d-inference-sim on the local target.

Why a fake: the charts' ``simulator`` mode (charts/vllm-gpu) deploys the real
``ghcr.io/llm-d/llm-d-inference-sim`` image on clusters, but that Go program cannot be
installed on these machines (the Go module proxy answers 403 for every version) and there
is no container engine. The local target therefore starts this module with the *same*
command-line flags the chart renders, so the chart's args are still exercised locally.
It is the one fake in the local stack; everything else is the real program.

What it does, deterministically:

* ``GET /health``, ``GET /ready`` -> 200; ``GET /v1/models`` -> the served model names.
* Fake-only ``GET /fake/received-headers``: the header *names* (never values: they may carry
  keys) of the last requests it received, so tests can prove what a gateway forwards.
* Fake-only ``GET /fake/model-calls`` (only with ``--record``): ``{"calls": [...]}``, the
  recorded model calls oldest first (what ``--record`` wrote), for tests that cannot read the
  file (the stand-in image on a cluster); 404 without ``--record``.
* ``POST /v1/chat/completions`` and ``POST /v1/completions``, plain or streamed (SSE
  ``data: {...}`` events, then ``data: [DONE]``). With ``stream_options.include_usage``
  (or the vLLM flag ``--enable-force-include-usage``) a last chunk has ``choices: []`` and
  ``usage``, as vLLM and the simulator send it.
* ``--mode echo`` replies with the last user message (chat) or the prompt (completions);
  ``--mode random`` replies with a fixed lorem text (the real simulator picks random
  sentences; fixed text keeps tests reproducible).
* Tools: when the request has ``tools``, ``tool_choice`` is not ``"none"`` and the last
  message is not a ``tool`` result, it calls the first (or the named) function tool with
  arguments built from its JSON schema: each required string parameter gets the last user
  message text, so a retrieval tool such as ``knowledge_search`` is asked the user's
  question. When the last message is a tool result, echo mode answers with the tool
  results' text plus the question, so a client can see that retrieved text reached the
  model.

Tokens: a *token* is a maximal run of non-whitespace characters (``\\S+``). It is not a
real tokenizer, but it is simple and exact to reason about in tests:
``prompt_tokens`` = tokens in the text of every message's content (string or ``text``
parts; for completions: the prompt), ``completion_tokens`` = tokens of the reply (for a
tool call: of its arguments JSON), ``total_tokens`` = their sum. ``max_completion_tokens``
(or else ``max_tokens``) cuts the reply after that many tokens (finish_reason ``length``).

Flags: ``--model``, ``--served-model-name`` (space-separated list, as the simulator),
``--port``, ``--mode``, ``--time-to-first-token`` and ``--inter-token-latency`` (ms, slept as
the simulator does), ``--max-model-len`` (only when given: rejects prompt + max_tokens
above it with 400, as the simulator does), ``--config`` (the simulator's YAML file; CLI
wins), plus fake-only ``--host`` (default 127.0.0.1) and ``--record FILE`` (append one JSON
line per model call, its path and body, never its headers; tests read it to see what
reached the model: prompts, tool results). Every other flag (``--seed``,
``--max-num-seqs``, ``--enable-kvcache``, ...) is accepted, ignored and logged once.

Run: ``python -m harness.fakes.model_server --model simulated-model --port 8000 --mode echo``
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import signal
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from harness.redact import redact_fields

LOG = logging.getLogger("fake-model-server")

TOKEN_RE = re.compile(r"\S+")
LOREM = (
    "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor "
    "incididunt ut labore et dolore magna aliqua. Ut enim ad minim veniam, quis nostrud "
    "exercitation ullamco laboris nisi ut aliquip ex ea commodo consequat."
)
MODES = ("echo", "random")
SHUTDOWN_GRACE_S = 5.0
RECEIVED_HEADERS_PATH = "/fake/received-headers"
MODEL_CALLS_PATH = "/fake/model-calls"

# ---------------------------------------------------------------------------------------
# Configuration (command line + the simulator's --config YAML file)
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ServerConfig:
    model: str
    served_model_names: tuple[str, ...]
    port: int = 8000
    host: str = "127.0.0.1"
    mode: str = "random"
    time_to_first_token_ms: int = 0
    inter_token_latency_ms: int = 0
    max_model_len: int | None = None
    force_include_usage: bool = False
    record: str | None = None  # fake-only: append what each model call received to this file
    ignored: tuple[str, ...] = ()


def _duration_ms(text: str) -> int:
    """Milliseconds from '250' (the simulator's unit) or from '250ms' / '2s'."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|s)?\s*", str(text))
    if not match:
        raise argparse.ArgumentTypeError(f"not a duration in milliseconds: {text!r}")
    value = float(match.group(1))
    return int(value * 1000 if match.group(2) == "s" else value)


def _build_parser() -> argparse.ArgumentParser:
    # Defaults are None so values from --config can be told apart from CLI values.
    # allow_abbrev=False: an unknown simulator flag must never be taken for a known one.
    p = argparse.ArgumentParser(
        prog="harness.fakes.model_server",
        description="FAKE stand-in for llm-d-inference-sim (see module docstring).",
        allow_abbrev=False,
    )
    p.add_argument("--model")
    p.add_argument("--served-model-name", nargs="*", action="extend", dest="served_model_name")
    p.add_argument("--port", type=int)
    p.add_argument("--host", help="fake-only: bind address (default 127.0.0.1)")
    p.add_argument("--mode", choices=MODES)
    p.add_argument("--time-to-first-token", type=_duration_ms)
    p.add_argument("--inter-token-latency", type=_duration_ms)
    p.add_argument("--max-model-len", type=int)
    p.add_argument("--config", help="the simulator's YAML config file; CLI values win")
    p.add_argument("--enable-force-include-usage", action="store_true", default=None)
    p.add_argument("--record", metavar="FILE", help="fake-only: append each model call's path and body to FILE")
    return p


_CONFIG_KEYS = {
    "model": "model",
    "served-model-name": "served_model_name",
    "port": "port",
    "mode": "mode",
    "time-to-first-token": "time_to_first_token",
    "inter-token-latency": "inter_token_latency",
    "max-model-len": "max_model_len",
    "enable-force-include-usage": "enable_force_include_usage",
}


def _load_config_file(path: str) -> tuple[dict[str, Any], list[str]]:
    """Known keys of the simulator's YAML config (as argparse dests) and the ignored keys."""
    text = Path(path).read_text(encoding="utf-8")
    try:
        import yaml  # lazy: only needed when a --config file is given

        data = yaml.safe_load(text) or {}
    except ImportError:
        data = json.loads(text)  # JSON is YAML; good enough without PyYAML
    if not isinstance(data, dict):
        raise SystemExit(f"--config {path}: expected a mapping at the top level")
    known = {_CONFIG_KEYS[k]: v for k, v in data.items() if k in _CONFIG_KEYS}
    ignored = [f"{path}:{k}" for k in data if k not in _CONFIG_KEYS]
    return known, ignored


def _pick(cli: Any, file_value: Any, default: Any) -> Any:
    if cli is not None:
        return cli
    return default if file_value is None else file_value


def parse_args(argv: Sequence[str]) -> ServerConfig:
    """Parse simulator flags; unknown flags (and their values) are kept in `ignored`."""
    args, unknown = _build_parser().parse_known_args(list(argv))
    from_file, ignored_keys = _load_config_file(args.config) if args.config else ({}, [])
    model = _pick(args.model, from_file.get("model"), None)
    if not model:
        raise SystemExit("--model is required (flag or 'model' in --config)")
    mode = str(_pick(args.mode, from_file.get("mode"), "random"))
    if mode not in MODES:
        raise SystemExit(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    names = _pick(args.served_model_name or None, from_file.get("served_model_name"), None)
    if isinstance(names, str):
        names = names.split()
    return ServerConfig(
        model=str(model),
        served_model_names=tuple(names) if names else (str(model),),
        port=int(_pick(args.port, from_file.get("port"), 8000)),
        host=args.host or "127.0.0.1",
        mode=mode,
        time_to_first_token_ms=_duration_ms(_pick(args.time_to_first_token, from_file.get("time_to_first_token"), 0)),
        inter_token_latency_ms=_duration_ms(_pick(args.inter_token_latency, from_file.get("inter_token_latency"), 0)),
        max_model_len=_optional_int(_pick(args.max_model_len, from_file.get("max_model_len"), None)),
        force_include_usage=bool(
            _pick(args.enable_force_include_usage, from_file.get("enable_force_include_usage"), False)
        ),
        record=args.record,
        ignored=tuple(unknown + ignored_keys),
    )


def _optional_int(value: Any) -> int | None:
    return None if value is None else int(value)


# ---------------------------------------------------------------------------------------
# Tokens and text
# ---------------------------------------------------------------------------------------


def count_tokens(text: str) -> int:
    return len(TOKEN_RE.findall(text))


def truncate_tokens(text: str, limit: int | None) -> tuple[str, bool]:
    """Keep the first `limit` tokens with their original spacing; report if anything was cut."""
    if limit is None:
        return text, False
    ends = [m.end() for m in TOKEN_RE.finditer(text)]
    if len(ends) <= limit:
        return text, False
    return (text[: ends[limit - 1]] if limit > 0 else ""), True


def token_pieces(text: str) -> list[str]:
    """Split into one piece per token (whitespace attached) so the pieces join back to `text`."""
    ends = [m.end() for m in TOKEN_RE.finditer(text)]
    if not ends:
        return [text] if text else []
    ends[-1] = len(text)
    starts = [0, *ends[:-1]]
    return [text[s:e] for s, e in zip(starts, ends, strict=True)]


def content_text(content: Any) -> str:
    """Text of a message content: a string, or a list of parts where text parts count."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = [p.get("text", "") for p in content if isinstance(p, dict) and isinstance(p.get("text"), str)]
        return "\n".join(texts)
    return ""


# ---------------------------------------------------------------------------------------
# Requests, replies, errors
# ---------------------------------------------------------------------------------------


class ApiError(Exception):
    """An OpenAI-style error response."""

    def __init__(self, status: int, message: str, *, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code

    def body(self) -> dict[str, Any]:
        kind = {404: "not_found_error", 500: "server_error"}.get(self.status, "invalid_request_error")
        return {"error": {"message": self.message, "type": kind, "param": self.param, "code": self.code}}


@dataclass(frozen=True)
class ToolCall:
    id: str
    name: str
    arguments: str


@dataclass(frozen=True)
class Reply:
    text: str | None
    tool_call: ToolCall | None
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int

    def usage(self) -> dict[str, int]:
        total = self.prompt_tokens + self.completion_tokens
        return {"prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens, "total_tokens": total}


def _max_tokens(body: dict[str, Any]) -> int | None:
    for key in ("max_completion_tokens", "max_tokens"):
        value = body.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ApiError(400, f"{key} must be a non-negative integer", param=key)
        return value
    return None


def _check_context(config: ServerConfig, prompt_tokens: int, max_tokens: int | None) -> None:
    """Reject what does not fit --max-model-len, like the simulator (only when the flag is set)."""
    if config.max_model_len is None:
        return
    wanted = prompt_tokens + (max_tokens or 0)
    if wanted > config.max_model_len:
        raise ApiError(
            400,
            f"This model's maximum context length is {config.max_model_len} tokens. However, you requested "
            f"{wanted} tokens ({prompt_tokens} in the messages, {max_tokens or 0} in the completion).",
            code="context_length_exceeded",
        )


def _text_reply(text: str, prompt_tokens: int, max_tokens: int | None) -> Reply:
    kept, cut = truncate_tokens(text, max_tokens)
    return Reply(kept, None, "length" if cut else "stop", prompt_tokens, count_tokens(kept))


def _last_user_text(messages: list[dict[str, Any]]) -> str:
    for message in reversed(messages):
        if message.get("role") == "user":
            return content_text(message.get("content"))
    return ""


def _trailing_tool_text(messages: list[dict[str, Any]]) -> str:
    texts: list[str] = []
    for message in reversed(messages):
        if message.get("role") != "tool":
            break
        texts.append(content_text(message.get("content")))
    return "\n".join(reversed(texts))


# --- tool calls ------------------------------------------------------------------------


def _schema_value(schema: dict[str, Any], text: str) -> Any:
    """A deterministic value valid for a (simple) JSON schema; strings get the user text."""
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return schema["enum"][0]
    kind = schema.get("type", "string")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "string")
    defaults: dict[str, Any] = {"integer": 1, "number": 1, "boolean": False, "array": [], "null": None}
    if kind == "object":
        return _schema_arguments(schema, text)
    return defaults.get(kind, text)


def _schema_arguments(schema: dict[str, Any], text: str) -> dict[str, Any]:
    """Fill required properties; when none are required, fill the string properties."""
    props = schema.get("properties") or {}
    required = [name for name in schema.get("required") or [] if name in props] or [
        name for name, sub in props.items() if isinstance(sub, dict) and sub.get("type") == "string"
    ]
    return {name: _schema_value(props[name] or {}, text) for name in required}


def _chosen_tool(tools: list[Any], tool_choice: Any) -> dict[str, Any] | None:
    functions: list[dict[str, Any]] = [
        t["function"] for t in tools if isinstance(t, dict) and isinstance(t.get("function"), dict)
    ]
    if not functions or tool_choice == "none":
        return None
    wanted = _choice_names(tool_choice)
    return next((f for f in functions if f.get("name") in wanted), functions[0])


def _choice_names(tool_choice: Any) -> list[str]:
    """Tool names a dict tool_choice asks for: a named function, or an allowed_tools list."""
    if not isinstance(tool_choice, dict):
        return []  # "auto" / "required" / absent: any tool
    if tool_choice.get("type") == "allowed_tools":
        entries = (tool_choice.get("allowed_tools") or {}).get("tools") or []
    else:
        entries = [tool_choice]
    names = [(e.get("function") or {}).get("name") or e.get("name") for e in entries if isinstance(e, dict)]
    return [n for n in names if isinstance(n, str)]


def _tool_reply(function: dict[str, Any], question: str, prompt_tokens: int) -> Reply:
    arguments = json.dumps(_schema_arguments(function.get("parameters") or {}, question))
    call = ToolCall(f"call_{uuid.uuid4().hex[:24]}", str(function.get("name", "")), arguments)
    return Reply(None, call, "tool_calls", prompt_tokens, count_tokens(arguments))


def chat_reply(config: ServerConfig, body: dict[str, Any]) -> Reply:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages or not all(isinstance(m, dict) for m in messages):
        raise ApiError(400, "messages must be a non-empty list of message objects", param="messages")
    max_tokens = _max_tokens(body)
    prompt_tokens = sum(count_tokens(content_text(m.get("content"))) for m in messages)
    _check_context(config, prompt_tokens, max_tokens)
    question = _last_user_text(messages)
    last_is_tool = messages[-1].get("role") == "tool"
    tools = body.get("tools")
    function = _chosen_tool(tools, body.get("tool_choice")) if isinstance(tools, list) and not last_is_tool else None
    if function is not None:
        return _tool_reply(function, question, prompt_tokens)
    if config.mode == "random":
        return _text_reply(LOREM, prompt_tokens, max_tokens)
    if last_is_tool:
        return _text_reply(f"{_trailing_tool_text(messages)}\n\nQuestion: {question}", prompt_tokens, max_tokens)
    return _text_reply(question, prompt_tokens, max_tokens)


def completion_reply(config: ServerConfig, body: dict[str, Any]) -> Reply:
    prompt = body.get("prompt")
    if isinstance(prompt, str):
        text = prompt
    elif isinstance(prompt, list) and all(isinstance(p, str) for p in prompt):
        text = " ".join(prompt)  # batched prompts are answered as one prompt
    elif isinstance(prompt, list) and all(isinstance(p, int) for p in prompt):
        text = " ".join(str(p) for p in prompt)  # token ids: one token each
    else:
        raise ApiError(400, "prompt must be a string, a list of strings or a list of token ids", param="prompt")
    max_tokens = _max_tokens(body)
    prompt_tokens = count_tokens(text)
    _check_context(config, prompt_tokens, max_tokens)
    return _text_reply(LOREM if config.mode == "random" else text, prompt_tokens, max_tokens)


# ---------------------------------------------------------------------------------------
# Response documents (plain and streamed)
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Envelope:
    """What every document of one response shares."""

    kind: str  # "chat" or "text"
    model: str
    id: str = field(default_factory=lambda: f"cmpl-{uuid.uuid4().hex}")
    created: int = field(default_factory=lambda: int(time.time()))

    @property
    def chunk_object(self) -> str:
        return "text_completion" if self.kind == "text" else "chat.completion.chunk"

    def doc(self, obj: str, choices: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
        return {"id": self.id, "object": obj, "created": self.created, "model": self.model, "choices": choices, **extra}


def _tool_call_json(call: ToolCall) -> dict[str, Any]:
    return {"id": call.id, "type": "function", "function": {"name": call.name, "arguments": call.arguments}}


def full_response(env: Envelope, reply: Reply) -> dict[str, Any]:
    if env.kind == "text":
        choice = {"index": 0, "text": reply.text or "", "logprobs": None, "finish_reason": reply.finish_reason}
        return env.doc("text_completion", [choice], usage=reply.usage())
    message: dict[str, Any] = {"role": "assistant", "content": reply.text}
    if reply.tool_call is not None:
        message["tool_calls"] = [_tool_call_json(reply.tool_call)]
    choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": reply.finish_reason}
    return env.doc("chat.completion", [choice], usage=reply.usage())


def _chunk(env: Envelope, delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
    if env.kind == "text":
        choice = {"index": 0, "text": delta.get("content", ""), "logprobs": None, "finish_reason": finish_reason}
    else:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
    return env.doc(env.chunk_object, [choice])


def _tool_call_deltas(call: ToolCall) -> Iterator[dict[str, Any]]:
    """OpenAI's shape: id + name with empty arguments first, then argument fragments."""
    head = {"index": 0, "id": call.id, "type": "function", "function": {"name": call.name, "arguments": ""}}
    yield {"role": "assistant", "content": None, "tool_calls": [head]}
    for piece in token_pieces(call.arguments):
        yield {"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}


def stream_chunks(env: Envelope, reply: Reply, include_usage: bool) -> Iterator[dict[str, Any]]:
    """All SSE documents of a streamed response (without the final [DONE])."""
    if reply.tool_call is not None:
        deltas: Iterator[dict[str, Any]] = _tool_call_deltas(reply.tool_call)
    else:
        deltas = iter([{"content": p} for p in token_pieces(reply.text or "")])
        if env.kind == "chat":
            yield _chunk(env, {"role": "assistant", "content": ""})
    for delta in deltas:
        yield _chunk(env, delta)
    yield _chunk(env, {}, reply.finish_reason)
    if include_usage:
        yield env.doc(env.chunk_object, [], usage=reply.usage())


# ---------------------------------------------------------------------------------------
# HTTP server
# ---------------------------------------------------------------------------------------


class InFlight:
    """Counts requests being answered, so SIGTERM can let them finish."""

    def __init__(self) -> None:
        self._count = 0
        self._cond = threading.Condition()

    def __enter__(self) -> None:
        with self._cond:
            self._count += 1

    def __exit__(self, *_: object) -> None:
        with self._cond:
            self._count -= 1
            self._cond.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: self._count == 0, timeout)


class HeaderNames:
    """Header names of the last requests (newest last), numbered from 1. Names only: values may be keys."""

    def __init__(self, keep: int = 512) -> None:
        self._seen: deque[dict[str, Any]] = deque(maxlen=keep)
        self._count = 0
        self._lock = threading.Lock()

    def record(self, method: str, path: str, names: list[str]) -> None:
        with self._lock:
            self._count += 1
            self._seen.append({"seq": self._count, "method": method, "path": path, "names": sorted(set(names))})

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {"count": self._count, "requests": list(self._seen)}


class FakeModelServer(ThreadingHTTPServer):
    daemon_threads = True  # idle keep-alive connections must not block shutdown
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.inflight = InFlight()
        self.header_names = HeaderNames()
        self.record_lock = threading.Lock()
        if config.record:
            Path(config.record).touch()  # present from the start: readers can tell "no calls" from "not recording"
        super().__init__((config.host, config.port), Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client dropping a kept-alive connection is routine; anything else is logged once."""
        if isinstance(sys.exception(), ConnectionError | TimeoutError):
            return
        LOG.exception("error on a connection from %s", client_address[0])

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"  # host is a str for AF_INET


@dataclass
class RequestLog:
    """The one log line of a request. Never holds headers (they carry API keys)."""

    model: str = "-"
    status: int = 0
    usage: dict[str, int] | None = None
    stream: bool = False
    note: str = ""

    def line(self, method: str, path: str, elapsed_ms: float) -> str:
        usage = " ".join(f"{k}={v}" for k, v in (self.usage or {}).items()) or "usage=-"
        note = f" note={self.note}" if self.note else ""
        return (
            f"{method} {path} model={self.model} status={self.status} stream={str(self.stream).lower()} "
            f"{usage} {elapsed_ms:.1f}ms{note}"
        )


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive for clients and Envoy; chunked SSE
    # Headers and body go out in separate writes: with Nagle's algorithm the body waits for
    # the client's delayed ACK of the headers (about 40 ms per request on a kept-alive
    # connection). TCP_NODELAY sends each write at once, as real model servers do.
    disable_nagle_algorithm = True
    server: FakeModelServer
    server_version = "fake-llm-d-inference-sim"

    # --- plumbing --------------------------------------------------------------------
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Silenced: each request gets exactly one line from `_logged`."""

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (stdlib signature)
        LOG.warning("%s - %s", self.address_string(), format % args)

    def do_GET(self) -> None:
        self._logged(self._get)

    def do_POST(self) -> None:
        self._logged(self._post)

    def _logged(self, action: Any) -> None:
        started = time.monotonic()
        entry = RequestLog()
        path = self.path.split("?", 1)[0]
        if path not in (RECEIVED_HEADERS_PATH, MODEL_CALLS_PATH):
            self.server.header_names.record(self.command, path, [k.lower() for k in self.headers])
        with self.server.inflight:
            try:
                action(path, entry)
            except ApiError as err:
                self._send_json(err.status, err.body(), entry)
            except (BrokenPipeError, ConnectionResetError):
                entry.note = "client-disconnected"
                self.close_connection = True
            except Exception as err:  # a bug here must answer 500, not drop the connection
                LOG.exception("internal error")
                self._send_json(500, ApiError(500, f"internal error: {err}").body(), entry)
        LOG.info(entry.line(self.command, path, (time.monotonic() - started) * 1000))

    def _send_json(self, status: int, doc: dict[str, Any], entry: RequestLog) -> None:
        payload = json.dumps(doc).encode()
        entry.status = status
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _read_body(self) -> bytes:
        """Read the whole body first, so an early error cannot leave bytes on a kept-alive connection."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked()
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError as err:
            self.close_connection = True  # the body's end is unknown
            raise ApiError(400, "invalid Content-Length") from err
        return self.rfile.read(length)

    @staticmethod
    def _parse_json(raw: bytes) -> dict[str, Any]:
        try:
            body = json.loads(raw or b"null")
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise ApiError(400, f"request body is not valid JSON: {err}") from err
        if not isinstance(body, dict):
            raise ApiError(400, "request body must be a JSON object")
        return body

    def _read_chunked(self) -> bytes:
        parts: list[bytes] = []
        while True:
            size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass  # skip trailers
                return b"".join(parts)
            parts.append(self.rfile.read(size))
            self.rfile.readline()

    # --- routes ----------------------------------------------------------------------
    def _get(self, path: str, entry: RequestLog) -> None:
        if path in ("/health", "/ready"):
            self._send_json(200, {"status": "ok"}, entry)
        elif path == "/v1/models":
            self._send_json(200, self._models(), entry)
        elif path == RECEIVED_HEADERS_PATH:
            self._send_json(200, self.server.header_names.snapshot(), entry)
        elif path == MODEL_CALLS_PATH and self.server.config.record:
            self._send_json(200, {"calls": self._recorded()}, entry)
        else:
            raise ApiError(404, f"no route GET {path}")

    def _models(self) -> dict[str, Any]:
        cfg = self.server.config
        created = int(time.time())
        data = [
            {"id": name, "object": "model", "created": created, "owned_by": "vllm", "root": cfg.model, "parent": None}
            | ({"max_model_len": cfg.max_model_len} if cfg.max_model_len else {})
            for name in cfg.served_model_names
        ]
        return {"object": "list", "data": data}

    def _post(self, path: str, entry: RequestLog) -> None:
        kinds = {"/v1/chat/completions": "chat", "/v1/completions": "text"}
        raw = self._read_body()
        if path not in kinds:
            raise ApiError(404, f"no route POST {path}")
        body = self._parse_json(raw)
        model = body.get("model") or self.server.config.served_model_names[0]  # vLLM: model is optional
        entry.model = str(model)
        if model not in self.server.config.served_model_names:
            raise ApiError(404, f"The model `{model}` does not exist.", param="model", code="model_not_found")
        self._record(path, body)
        builder = chat_reply if kinds[path] == "chat" else completion_reply
        reply = builder(self.server.config, body)
        entry.usage = reply.usage()
        env = Envelope(kinds[path], str(model))
        if body.get("stream"):
            self._stream(env, reply, self._include_usage(body), entry)
        else:
            self._sleep_generation(reply.completion_tokens)
            self._send_json(200, full_response(env, reply), entry)

    def _record(self, path: str, body: dict[str, Any]) -> None:
        """One JSON line per model call, so tests can read what reached the model (prompts,
        tool results). Credential fields are masked; headers are left out: they may carry keys
        (see RECEIVED_HEADERS_PATH)."""
        if not self.server.config.record:
            return
        line = json.dumps({"path": path, "body": redact_fields(body)}) + "\n"  # a client may send a key in it
        with self.server.record_lock, open(self.server.config.record, "a", encoding="utf-8") as out:
            out.write(line)

    def _recorded(self) -> list[dict[str, Any]]:
        """What `_record` wrote, oldest first (read under its lock: no half-written line)."""
        with self.server.record_lock, open(str(self.server.config.record), encoding="utf-8") as lines:
            return [json.loads(line) for line in lines if line.strip()]

    def _include_usage(self, body: dict[str, Any]) -> bool:
        options = body.get("stream_options")
        asked = isinstance(options, dict) and bool(options.get("include_usage"))
        return asked or self.server.config.force_include_usage

    # --- timing and streaming --------------------------------------------------------
    def _sleep_generation(self, tokens: int) -> None:
        """Non-streamed delay of the simulator: ttft + itl * (tokens - 1)."""
        cfg = self.server.config
        time.sleep((cfg.time_to_first_token_ms + cfg.inter_token_latency_ms * max(tokens - 1, 0)) / 1000)

    def _stream(self, env: Envelope, reply: Reply, include_usage: bool, entry: RequestLog) -> None:
        entry.stream, entry.status = True, 200
        chunked = self.request_version == "HTTP/1.1"  # HTTP/1.0 clients get close-delimited body
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.close_connection = True
        self.end_headers()
        cfg = self.server.config
        delay_ms = cfg.time_to_first_token_ms
        for doc in stream_chunks(env, reply, include_usage):
            if delay_ms:
                time.sleep(delay_ms / 1000)
            self._write_event(f"data: {json.dumps(doc)}\n\n".encode(), chunked)
            delay_ms = cfg.inter_token_latency_ms if doc["choices"] else 0
        self._write_event(b"data: [DONE]\n\n", chunked)
        if chunked:
            self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _write_event(self, data: bytes, chunked: bool) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data) if chunked else data)
        self.wfile.flush()


# ---------------------------------------------------------------------------------------
# Process entry point
# ---------------------------------------------------------------------------------------


def make_server(config: ServerConfig) -> FakeModelServer:
    """Bind (port 0 picks a free port); call serve_forever() to answer requests."""
    return FakeModelServer(config)


def _configure_logging() -> None:
    logging.basicConfig(
        stream=sys.stderr, level=logging.INFO, format="%(asctime)s fake-model-server %(levelname)s %(message)s"
    )


def main(argv: Sequence[str] | None = None) -> int:
    _configure_logging()
    config = parse_args(sys.argv[1:] if argv is None else argv)
    if config.ignored:
        LOG.info("ignored simulator flags (meaningless for this fake): %s", " ".join(config.ignored))
    server = make_server(config)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()
    LOG.info(
        "FAKE llm-d-inference-sim listening on %s mode=%s models=%s",
        server.url,
        config.mode,
        ",".join(config.served_model_names),
    )
    while not stop.wait(0.2):
        pass
    LOG.info("shutting down: no new connections, letting in-flight requests finish")
    server.shutdown()
    if not server.inflight.wait_idle(SHUTDOWN_GRACE_S):
        LOG.warning("requests still running after %.0fs grace; exiting anyway", SHUTDOWN_GRACE_S)
    server.server_close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
