"""Unit tests of the FAKE llm-d-inference-sim (harness.fakes.model_server), over real HTTP on 127.0.0.1."""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import openai
import pytest
from harness.fakes import model_server as fms

pytestmark = pytest.mark.unit

TESTS_DIR = Path(__file__).resolve().parents[1]
MODEL = "simulated-model"
SEARCH_TOOL = {
    "type": "function",
    "function": {
        "name": "knowledge_search",
        "description": "Search the knowledge base",
        "parameters": {
            "type": "object",
            "properties": {"query": {"type": "string"}, "top_k": {"type": "integer"}},
            "required": ["query"],
        },
    },
}


@contextmanager
def running(argv: list[str]) -> Iterator[fms.FakeModelServer]:
    server = fms.make_server(fms.parse_args([*argv, "--port", "0"]))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture(scope="module")
def echo_server() -> Iterator[fms.FakeModelServer]:
    with running(["--model", MODEL, "--served-model-name", MODEL, "alias-model", "--mode", "echo"]) as server:
        yield server


@pytest.fixture()
def client(echo_server: fms.FakeModelServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{echo_server.url}/v1", api_key="sk-unit-test", max_retries=0)


def raw_request(server: fms.FakeModelServer, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(*server.server_address[:2], timeout=10)
    try:
        conn.request(method, path, body=body, headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def post_json(server: fms.FakeModelServer, path: str, doc: dict[str, Any]) -> tuple[int, Any]:
    status, payload = raw_request(server, "POST", path, json.dumps(doc).encode())
    return status, json.loads(payload)


def user(text: str) -> dict[str, str]:
    return {"role": "user", "content": text}


# --- endpoints -----------------------------------------------------------------------------


def test_health_and_ready(echo_server: fms.FakeModelServer) -> None:
    assert raw_request(echo_server, "GET", "/health")[0] == 200
    assert raw_request(echo_server, "GET", "/ready")[0] == 200


def test_models_lists_served_names(client: openai.OpenAI) -> None:
    models = client.models.list()
    assert [m.id for m in models.data] == [MODEL, "alias-model"]
    assert all(m.object == "model" for m in models.data)


def test_models_default_to_model_flag() -> None:
    with running(["--model", "only-model"]) as server:
        status, payload = raw_request(server, "GET", "/v1/models")
    assert status == 200
    assert [m["id"] for m in json.loads(payload)["data"]] == ["only-model"]


# --- echo, usage, truncation -----------------------------------------------------------


def test_echo_returns_last_user_message_with_exact_usage(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model=MODEL,
        messages=[
            {"role": "system", "content": "You are terse."},
            user("first question"),
            {"role": "assistant", "content": "an answer"},
            user("what   is RAG?"),
        ],
    )
    assert completion.choices[0].message.content == "what   is RAG?"
    assert completion.choices[0].finish_reason == "stop"
    # tokens are \S+ runs: 3 + 2 + 2 + 3 in the prompt, 3 in the reply
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (10, 3)
    assert completion.usage.total_tokens == 13


def test_echo_accepts_content_parts(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model="alias-model",
        messages=[{"role": "user", "content": [{"type": "text", "text": "part one"}, {"type": "text", "text": "two"}]}],
    )
    assert completion.choices[0].message.content == "part one\ntwo"
    assert completion.model == "alias-model"
    assert completion.usage is not None and completion.usage.prompt_tokens == 3


def test_max_tokens_truncates_reply(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(model=MODEL, messages=[user("one two three four five")], max_tokens=2)
    assert completion.choices[0].message.content == "one two"
    assert completion.choices[0].finish_reason == "length"
    assert completion.usage is not None and completion.usage.completion_tokens == 2


def test_max_completion_tokens_wins_over_max_tokens(echo_server: fms.FakeModelServer) -> None:
    doc = {"model": MODEL, "messages": [user("a b c d")], "max_tokens": 3, "max_completion_tokens": 1}
    status, body = post_json(echo_server, "/v1/chat/completions", doc)
    assert status == 200
    assert body["choices"][0]["message"]["content"] == "a"
    assert body["usage"] == {"prompt_tokens": 4, "completion_tokens": 1, "total_tokens": 5}


def test_invalid_max_tokens_is_400(echo_server: fms.FakeModelServer) -> None:
    status, body = post_json(
        echo_server, "/v1/chat/completions", {"model": MODEL, "messages": [user("x")], "max_tokens": -1}
    )
    assert status == 400
    assert body["error"]["param"] == "max_tokens"


# --- streaming -----------------------------------------------------------------------------


def test_streaming_with_include_usage_ends_with_usage_chunk(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model=MODEL,
        messages=[user("stream these four words")],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "stream these four words"
    finish = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finish == ["stop"]
    last = chunks[-1]
    assert last.choices == []
    assert last.usage is not None
    assert (last.usage.prompt_tokens, last.usage.completion_tokens, last.usage.total_tokens) == (4, 4, 8)
    assert all(c.usage is None for c in chunks[:-1])


def sse_events(payload: bytes) -> list[str]:
    return [line.removeprefix("data: ") for line in payload.decode().split("\n\n") if line.startswith("data: ")]


def test_streaming_wire_format_ends_with_done(echo_server: fms.FakeModelServer) -> None:
    doc = {"model": MODEL, "messages": [user("hi there")], "stream": True, "stream_options": {"include_usage": True}}
    status, payload = raw_request(echo_server, "POST", "/v1/chat/completions", json.dumps(doc).encode())
    assert status == 200
    events = sse_events(payload)
    assert events[-1] == "[DONE]"
    assert json.loads(events[-2])["usage"]["total_tokens"] == 4
    assert payload.endswith(b"data: [DONE]\n\n")


def test_streaming_without_include_usage_has_no_usage(echo_server: fms.FakeModelServer) -> None:
    doc = {"model": MODEL, "messages": [user("hi there")], "stream": True}
    status, payload = raw_request(echo_server, "POST", "/v1/chat/completions", json.dumps(doc).encode())
    assert status == 200
    docs = [json.loads(e) for e in sse_events(payload)[:-1]]
    assert docs and all("usage" not in d and d["choices"] for d in docs)


def test_force_include_usage_flag_adds_usage_chunk() -> None:
    with running(["--model", MODEL, "--mode", "echo", "--enable-force-include-usage"]) as server:
        doc = {"model": MODEL, "messages": [user("a b")], "stream": True}
        status, payload = raw_request(server, "POST", "/v1/chat/completions", json.dumps(doc).encode())
    assert status == 200
    assert json.loads(sse_events(payload)[-2])["usage"]["completion_tokens"] == 2


# --- completions endpoint ------------------------------------------------------------------


def test_completions_echo_and_stream(client: openai.OpenAI) -> None:
    completion = client.completions.create(model=MODEL, prompt="say this back", max_tokens=2)
    assert completion.choices[0].text == "say this"
    assert completion.usage is not None and completion.usage.total_tokens == 5
    stream = client.completions.create(
        model=MODEL, prompt="say this back", stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    assert "".join(c.choices[0].text for c in chunks if c.choices) == "say this back"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 3


# --- tools ---------------------------------------------------------------------------------


def test_tool_call_when_tools_present(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model=MODEL, messages=[user("What does the handbook say about leave?")], tools=[SEARCH_TOOL]
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.tool_calls is not None and len(choice.message.tool_calls) == 1
    call = choice.message.tool_calls[0]
    assert call.function.name == "knowledge_search"
    # only required parameters are filled; strings get the user's question
    assert json.loads(call.function.arguments) == {"query": "What does the handbook say about leave?"}
    assert completion.usage is not None
    assert completion.usage.completion_tokens == fms.count_tokens(call.function.arguments)


def test_streamed_tool_call_reassembles(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model=MODEL,
        messages=[user("find the refund policy")],
        tools=[SEARCH_TOOL],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    deltas = [tc for c in chunks if c.choices for tc in (c.choices[0].delta.tool_calls or [])]
    assert deltas[0].id and deltas[0].function is not None and deltas[0].function.name == "knowledge_search"
    arguments = "".join(d.function.arguments or "" for d in deltas if d.function is not None)
    assert json.loads(arguments) == {"query": "find the refund policy"}
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "tool_calls"
    assert chunks[-1].usage is not None


def test_tool_choice_none_answers_plainly(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model=MODEL, messages=[user("no tools please")], tools=[SEARCH_TOOL], tool_choice="none"
    )
    assert completion.choices[0].message.content == "no tools please"
    assert completion.choices[0].finish_reason == "stop"


def test_named_tool_choice_and_required_non_string_params(echo_server: fms.FakeModelServer) -> None:
    other = {
        "type": "function",
        "function": {
            "name": "lookup",
            "parameters": {
                "type": "object",
                "properties": {"id": {"type": "integer"}, "kind": {"type": "string", "enum": ["a", "b"]}},
                "required": ["id", "kind"],
            },
        },
    }
    doc = {
        "model": MODEL,
        "messages": [user("q")],
        "tools": [SEARCH_TOOL, other],
        "tool_choice": {"type": "function", "function": {"name": "lookup"}},
    }
    status, body = post_json(echo_server, "/v1/chat/completions", doc)
    assert status == 200
    call = body["choices"][0]["message"]["tool_calls"][0]
    assert call["function"]["name"] == "lookup"
    assert json.loads(call["function"]["arguments"]) == {"id": 1, "kind": "a"}


def test_allowed_tools_choice_picks_a_listed_tool(echo_server: fms.FakeModelServer) -> None:
    """llama-stack's Responses API sends this shape for tool_choice=allowed_tools."""
    other = {"type": "function", "function": {"name": "other", "parameters": {"type": "object", "properties": {}}}}
    choice = {
        "type": "allowed_tools",
        "allowed_tools": {"mode": "auto", "tools": [{"type": "function", "function": {"name": "knowledge_search"}}]},
    }
    doc = {"model": MODEL, "messages": [user("q")], "tools": [other, SEARCH_TOOL], "tool_choice": choice}
    status, body = post_json(echo_server, "/v1/chat/completions", doc)
    assert status == 200
    assert body["choices"][0]["message"]["tool_calls"][0]["function"]["name"] == "knowledge_search"


def test_answer_after_tool_result_contains_tool_text(client: openai.OpenAI) -> None:
    question = "What is the vacation policy?"
    completion = client.chat.completions.create(
        model=MODEL,
        tools=[SEARCH_TOOL],
        messages=[
            user(question),
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"id": "call_1", "type": "function", "function": {"name": "knowledge_search", "arguments": "{}"}}
                ],
            },
            {
                "role": "tool",
                "tool_call_id": "call_1",
                "content": [{"type": "text", "text": "Employees get 25 vacation days per year."}],
            },
        ],
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "stop"
    assert choice.message.tool_calls is None
    assert choice.message.content is not None
    assert "Employees get 25 vacation days per year." in choice.message.content
    assert question in choice.message.content


# --- random mode, context length --------------------------------------------------------------


def test_random_mode_is_fixed_text() -> None:
    with running(["--model", MODEL, "--mode", "random"]) as server:
        doc = {"model": MODEL, "messages": [user("ignored")], "max_tokens": 5}
        replies = [post_json(server, "/v1/chat/completions", doc)[1] for _ in range(2)]
    texts = [r["choices"][0]["message"]["content"] for r in replies]
    assert texts[0] == texts[1] == "Lorem ipsum dolor sit amet,"


def test_max_model_len_rejects_too_long_requests() -> None:
    with running(["--model", MODEL, "--mode", "echo", "--max-model-len", "5"]) as server:
        ok_status, _ = post_json(server, "/v1/chat/completions", {"model": MODEL, "messages": [user("a b c")]})
        doc = {"model": MODEL, "messages": [user("a b c")], "max_tokens": 3}
        status, body = post_json(server, "/v1/chat/completions", doc)
    assert ok_status == 200
    assert status == 400
    assert "maximum context length is 5" in body["error"]["message"]


# --- errors --------------------------------------------------------------------------------


def test_unknown_model_is_404(client: openai.OpenAI, echo_server: fms.FakeModelServer) -> None:
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="no-such-model", messages=[user("hi")])
    status, body = post_json(echo_server, "/v1/chat/completions", {"model": "no-such-model", "messages": [user("hi")]})
    assert status == 404
    assert body["error"]["code"] == "model_not_found"
    assert "no-such-model" in body["error"]["message"]


def test_bad_json_is_400(echo_server: fms.FakeModelServer) -> None:
    status, payload = raw_request(echo_server, "POST", "/v1/chat/completions", b'{"model": ')
    assert status == 400
    assert "not valid JSON" in json.loads(payload)["error"]["message"]
    status, payload = raw_request(echo_server, "POST", "/v1/chat/completions", b"[1, 2]")
    assert status == 400


def test_error_keeps_connection_usable(echo_server: fms.FakeModelServer) -> None:
    """A rejected request's body must be consumed, or the next request on the connection breaks."""
    conn = http.client.HTTPConnection(*echo_server.server_address[:2], timeout=10)
    try:
        conn.request("POST", "/v1/unknown", body=b'{"some": "body"}')
        first = conn.getresponse()
        first.read()
        conn.request("GET", "/v1/models")
        second = conn.getresponse()
        assert (first.status, second.status) == (404, 200)
        assert json.loads(second.read())["object"] == "list"
    finally:
        conn.close()


# --- command line --------------------------------------------------------------------------


def test_parse_args_tolerates_simulator_flags() -> None:
    config = fms.parse_args(
        [
            "--model", "m", "--served-model-name", "a", "b", "--port", "9000", "--mode", "echo",
            "--seed", "42", "--enable-kvcache", "--max-num-seqs", "5", "--time-to-first-token", "20",
            "--inter-token-latency", "2s", "--kv-cache-size", "1024",
        ]
    )  # fmt: skip
    assert config.served_model_names == ("a", "b")
    assert (config.port, config.mode) == (9000, "echo")
    assert (config.time_to_first_token_ms, config.inter_token_latency_ms) == (20, 2000)
    assert config.ignored == ("--seed", "42", "--enable-kvcache", "--max-num-seqs", "5", "--kv-cache-size", "1024")


def test_parse_args_reads_simulator_config_file_cli_wins(tmp_path: Path) -> None:
    path = tmp_path / "sim.json"  # JSON is valid YAML, so this works with or without PyYAML
    path.write_text(
        json.dumps({"model": "file-model", "served-model-name": ["x"], "mode": "echo", "port": 7000, "seed": 1})
    )
    config = fms.parse_args(["--config", str(path), "--port", "7100"])
    assert (config.model, config.served_model_names, config.mode, config.port) == ("file-model", ("x",), "echo", 7100)
    assert config.ignored == (f"{path}:seed",)


def test_parse_args_requires_model() -> None:
    with pytest.raises(SystemExit):
        fms.parse_args(["--port", "1"])


def test_process_with_unknown_flags_serves_logs_and_stops_on_sigterm() -> None:
    """Run the module like the local target does; check logging hygiene and SIGTERM shutdown."""
    argv = [
        sys.executable, "-m", "harness.fakes.model_server", "--model", MODEL, "--port", "0", "--mode", "echo",
        "--seed", "7", "--enable-kvcache", "--max-num-seqs", "4", "--some-future-flag", "value",
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(TESTS_DIR)}
    started = time.monotonic()
    proc = subprocess.Popen(argv, env=env, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        port, head = _wait_for_port(proc)
        ready_s = time.monotonic() - started
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        body = json.dumps({"model": MODEL, "messages": [user("over the wire")]})
        conn.request("POST", "/v1/chat/completions", body=body, headers={"Authorization": "Bearer sk-very-secret-key"})
        response = conn.getresponse()
        assert response.status == 200
        assert json.loads(response.read())["choices"][0]["message"]["content"] == "over the wire"
        conn.close()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=5) == 0
        log = head + proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert "--some-future-flag value" in log
    assert re.search(r"POST /v1/chat/completions model=simulated-model status=200 .*total_tokens=6", log)
    assert "sk-very-secret-key" not in log
    assert ready_s < 5  # generous bound for loaded CI machines; typically ~0.3 s here


def _wait_for_port(proc: subprocess.Popen[str]) -> tuple[int, str]:
    """The port from the startup line (the server was started with --port 0), and the log so far."""
    assert proc.stderr is not None
    seen: list[str] = []
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        seen.append(line)
        match = re.search(r"listening on http://127\.0\.0\.1:(\d+)", line)
        if match:
            return int(match.group(1)), "".join(seen)
        if not line and proc.poll() is not None:
            break
    raise AssertionError(f"fake model server did not start (exit code {proc.poll()}): {''.join(seen)}")


# --- latency ---------------------------------------------------------------------------------

KEPT_ALIVE_REQUESTS = 50
KEPT_ALIVE_BUDGET_S = 0.5  # ~1 ms each when writes are not held back; Nagle + delayed ACK made it ~2.2 s


def test_kept_alive_connection_does_not_stall(echo_server: fms.FakeModelServer) -> None:
    """Sequential requests on one connection answer without a per-request stall (Nagle vs. delayed ACK)."""
    body = json.dumps({"model": MODEL, "messages": [user("quick")], "max_tokens": 1})
    conn = http.client.HTTPConnection(*echo_server.server_address[:2], timeout=10)
    try:
        conn.request("GET", "/v1/models")  # connect and warm up outside the timed loop
        conn.getresponse().read()
        started = time.monotonic()
        for _ in range(KEPT_ALIVE_REQUESTS):
            conn.request("POST", "/v1/chat/completions", body=body, headers={"Content-Type": "application/json"})
            response = conn.getresponse()
            assert response.status == 200
            response.read()
        elapsed = time.monotonic() - started
    finally:
        conn.close()
    assert elapsed < KEPT_ALIVE_BUDGET_S, f"{KEPT_ALIVE_REQUESTS} kept-alive requests took {elapsed:.2f}s"


def test_record_writes_path_and_body_never_headers(tmp_path: Path) -> None:
    record = tmp_path / "requests.jsonl"
    with running(["--model", MODEL, "--mode", "echo", "--record", str(record)]) as server:
        conn = http.client.HTTPConnection(*server.server_address[:2], timeout=10)
        body = json.dumps({"model": MODEL, "messages": [user("remember me")]})
        headers = {"Authorization": "Bearer sk-recorded-never", "X-Maas-User": "u1", "Content-Type": "application/json"}
        conn.request("POST", "/v1/chat/completions", body=body, headers=headers)
        assert conn.getresponse().read()
        conn.request("GET", "/v1/models")  # not a model call: not recorded
        conn.getresponse().read()
        conn.close()
    lines = [json.loads(line) for line in record.read_text().splitlines()]
    assert len(lines) == 1
    assert lines[0]["path"] == "/v1/chat/completions"
    assert lines[0]["body"]["messages"][0]["content"] == "remember me"
    assert "headers" not in lines[0]  # headers may carry keys: never recorded
    assert "sk-recorded-never" not in record.read_text()


def test_recorded_calls_are_served_over_http_only_when_recording(tmp_path: Path) -> None:
    with running(["--model", MODEL, "--mode", "echo", "--record", str(tmp_path / "calls.jsonl")]) as server:
        assert post_json(server, "/v1/chat/completions", {"model": MODEL, "messages": [user("over http")]})[0] == 200
        status, payload = raw_request(server, "GET", fms.MODEL_CALLS_PATH)
    calls = json.loads(payload)["calls"]
    assert status == 200 and [c["body"]["messages"][0]["content"] for c in calls] == ["over http"]
    with running(["--model", MODEL, "--mode", "echo"]) as server:
        assert raw_request(server, "GET", fms.MODEL_CALLS_PATH)[0] == 404, "served calls it never recorded"
