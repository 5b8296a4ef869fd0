"""The recording tap in front of the real simulator: it relays calls unchanged (streams too), keeps
each model call's body and the header names it saw, and never a header value."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from harness import inference_sim
from harness.local import model_tap
from harness.tools import require

pytestmark = pytest.mark.local

MODEL = "tap-model"
SECRET = "sk-tap-secret-value-0123456789"
STARTUP_TIMEOUT_S = 30.0
TIMEOUT_S = 10.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def tap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """(base URL, record file) of a tap in front of the real simulator, started as the local target does."""
    record = tmp_path_factory.mktemp("tap") / "model-calls.jsonl"
    port = _free_port()
    simulator = [str(require(inference_sim.NAME)), "--model", MODEL, "--port", str(port), "--mode", "echo"]
    simulator.append("--force-dummy-tokenizer")
    argv = [sys.executable, "-m", "harness.local.model_tap", "--record", str(record), "--", *simulator]
    env = {"PATH": "/usr/bin:/bin", inference_sim.LISTEN_HOST_ENV: "127.0.0.1"}
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while True:
            assert proc.poll() is None, f"the tap exited ({proc.returncode})"
            try:
                if httpx.get(f"{url}/health", timeout=TIMEOUT_S).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the simulator behind the tap never became healthy"
            time.sleep(0.2)
        yield url, record
    finally:
        proc.terminate()
        assert proc.wait(TIMEOUT_S) is not None


def _chat(url: str, text: str, **extra: object) -> httpx.Response:
    body = {"model": MODEL, "messages": [{"role": "user", "content": text}], **extra}
    headers = {"Authorization": f"Bearer {SECRET}", "X-Tier": "gold"}
    return httpx.post(f"{url}/v1/chat/completions", json=body, headers=headers, timeout=TIMEOUT_S)


def test_relays_the_simulators_answer_and_records_the_body(tap: tuple[str, Path]) -> None:
    url, record = tap
    response = _chat(url, "tap relays this")
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"] == "tap relays this"  # the simulator's echo
    calls = [json.loads(line) for line in record.read_text().splitlines()]
    assert calls[-1]["path"] == "/v1/chat/completions"
    assert calls[-1]["body"]["messages"][0]["content"] == "tap relays this"
    assert httpx.get(f"{url}{model_tap.MODEL_CALLS_PATH}", timeout=TIMEOUT_S).json()["calls"] == calls


def test_streams_arrive_whole_with_the_final_usage_chunk(tap: tuple[str, Path]) -> None:
    url, _ = tap
    response = _chat(url, "one two three", stream=True, stream_options={"include_usage": True})
    events = [line[6:] for line in response.text.splitlines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]", events
    last = json.loads(events[-2])
    assert last["choices"] == [] and last["usage"]["completion_tokens"] > 0, last
    text = "".join(
        json.loads(e)["choices"][0]["delta"].get("content", "") for e in events[:-2] if json.loads(e)["choices"]
    )
    assert text == "one two three"


def test_header_names_are_kept_never_their_values(tap: tuple[str, Path]) -> None:
    url, record = tap
    _chat(url, "header check")
    seen = httpx.get(f"{url}{model_tap.RECEIVED_HEADERS_PATH}", timeout=TIMEOUT_S).json()
    chat = [r for r in seen["requests"] if r["path"] == "/v1/chat/completions"]
    assert chat and {"authorization", "x-tier"} <= set(chat[-1]["names"]), seen
    assert SECRET not in json.dumps(seen) and SECRET not in record.read_text()


def test_a_key_in_the_body_is_masked_in_the_record(tap: tuple[str, Path]) -> None:
    url, record = tap
    response = _chat(url, "masked body", api_key=SECRET, token=SECRET, max_tokens=7)
    assert response.status_code == 200, response.text
    assert SECRET not in record.read_text()
    last = json.loads(record.read_text().splitlines()[-1])["body"]
    assert last["api_key"] == last["token"] == "****" and last["max_tokens"] == 7, last
