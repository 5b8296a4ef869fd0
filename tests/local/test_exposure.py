"""What the local stack exposes: every process listens on loopback only, and a credential a
client sends (in the query string, a header or a JSON body; valid or not) reaches no log, no
file of the run folder, no diagnostics bundle and none of the gateway's metrics.

These run against the session's stack (`--target local`, the `endpoints` fixture), so the meta
tests can run them against a stack started broken; the stand-in MaaS gets the same socket check.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from harness import usage_metrics
from harness.endpoints import Endpoints
from harness.local.sockets import Listener, listeners, off_loopback
from harness.local.state import RunFolder

pytestmark = pytest.mark.local

FLUSH_TIMEOUT_S = 30.0  # Envoy writes its access log in batches (every 10 s by default)
REQUEST_TIMEOUT_S = 5.0
CREDENTIAL_PARAMS = ("api_key", "apikey", "key", "token", "access_token", "password", "secret")
CREDENTIAL_FIELDS = ("api_key", "apiKey", "key", "token", "password")
PATHS = ("/v1/models", "/v1/chat/completions", "/v1/embeddings", "/healthcheck", "/")


@pytest.fixture(scope="module")
def run(target, endpoints: Endpoints) -> RunFolder:
    if getattr(target, "name", "") != "local":
        pytest.skip(f"reads the local stack's processes and run folder; --target {target.name} runs none here")
    return target.run


def _stack_listeners(run: RunFolder) -> list[Listener]:
    return listeners(run.alive_pids().items())


def test_every_process_of_the_stack_listens_on_loopback_only(run: RunFolder):
    found = _stack_listeners(run)
    assert {listener.name for listener in found} == set(run.alive_pids()), (
        "every long-running container listens somewhere; these hold no socket: "
        f"{sorted(set(run.alive_pids()) - {listener.name for listener in found})}"
    )
    exposed = off_loopback(found)
    assert not exposed, "listening beyond 127.0.0.1:\n" + "\n".join(listener.describe() for listener in exposed)


def test_the_maas_standin_listens_on_loopback_only():
    from harness.maas_standin import StandinMaas

    standin = StandinMaas()
    started = standin.running() is None
    if started:
        standin.up()
    try:
        found = listeners(standin.run.alive_pids().items())
        assert found, "the stand-in MaaS holds no listening socket"
        exposed = off_loopback(found)
        assert not exposed, "stand-in listening beyond 127.0.0.1:\n" + "\n".join(x.describe() for x in exposed)
    finally:
        if started:
            standin.down()


# --- credentials in logs --------------------------------------------------------------------


def _http_attempts(base: str, secret: str) -> Iterator[httpx.Request]:
    """Every place a client may put a key: query parameters, headers, JSON bodies."""
    query = {name: secret for name in CREDENTIAL_PARAMS}
    headers = {
        "Authorization": f"Bearer {secret}",
        "X-Api-Key": secret,
        "Api-Key": secret,
        "X-LlamaStack-Provider-Data": json.dumps({"api_key": secret, "vllm_api_token": secret}),
    }
    body = {"model": "simulated-model", "messages": [{"role": "user", "content": "hi"}], "input": "hi"}
    body |= {name: secret for name in CREDENTIAL_FIELDS}
    for path in PATHS:
        yield httpx.Request("GET", f"{base}{path}", params=query)
        yield httpx.Request("GET", f"{base}{path}", headers=headers)
        yield httpx.Request("GET", f"{base}{path}", headers={"Authorization": f"APIKEY {secret}"})
        yield httpx.Request("POST", f"{base}{path}", params=query, headers=headers, json=body)


def _redis_auth(port: int, secret: str) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=REQUEST_TIMEOUT_S) as sock:
        sock.sendall(f"*2\r\n$4\r\nAUTH\r\n${len(secret)}\r\n{secret}\r\n".encode())
        assert sock.recv(256), "Redis answered nothing to AUTH"


def _postgres_login(port: int, secret: str) -> None:
    import asyncpg

    async def attempt() -> None:
        try:
            conn = await asyncpg.connect(host="127.0.0.1", port=port, user="postgres", password=secret, database="x")
        except (asyncpg.PostgresError, OSError) as error:
            assert "password" in str(error) or "does not exist" in str(error), error
        else:
            await conn.close()
            raise AssertionError("PostgreSQL accepted a made-up password")

    asyncio.run(attempt())


def _send_everywhere(found: list[Listener], secret: str) -> int:
    """Send `secret` every way to every listening port; returns how many HTTP requests got an answer."""
    answered = 0
    with httpx.Client(timeout=REQUEST_TIMEOUT_S) as client:
        for port in sorted({listener.port for listener in found}):
            names = {listener.name for listener in found if listener.port == port}
            if any("redis" in name for name in names):
                _redis_auth(port, secret)
                continue
            if any("postgres" in name or "pgvector" in name for name in names):
                _postgres_login(port, secret)
                continue
            for request in _http_attempts(f"http://127.0.0.1:{port}", secret):
                try:
                    client.send(request)
                    answered += 1
                except httpx.HTTPError:
                    pass  # a gRPC-only port: the bytes still reached it, which is the point
    return answered


def _wait_logged(run: RunFolder, sentinel: str, containers: list[str]) -> None:
    """Until each container's log shows the sentinel request: the access logs are flushed."""
    deadline = time.monotonic() + FLUSH_TIMEOUT_S
    missing = containers
    while missing and time.monotonic() < deadline:
        missing = [c for c in missing if sentinel not in run.log(c).read_text(errors="replace")]
        time.sleep(0.5)
    assert not missing, f"no access log line for {sentinel} in {missing} after {FLUSH_TIMEOUT_S:.0f}s"


def _files_holding(root: Path, marker: str, valid: str | None = None) -> list[str]:
    hits = []
    for path in sorted(p for p in root.rglob("*") if p.is_file() and not p.is_symlink()):
        data = path.read_bytes()
        if marker.encode() in data:
            hits.append(f"{path} holds the made-up key")
        if valid and valid.encode() in data:
            hits.append(f"{path} holds a valid key")
    return hits


def test_a_key_sent_every_way_reaches_no_log_run_folder_or_diagnostics(
    run: RunFolder, target, endpoints, key_pool, tmp_path
):
    marker = f"leak-marker-{secrets.token_hex(8)}"  # an invalid key, as a mistyped one
    valid = key_pool.one("enterprise")  # a real key (its budget is spent here): in key files, never in a log
    found = _stack_listeners(run)
    assert found, "the stack holds no listening socket"
    answered = _send_everywhere(found, marker) + _send_everywhere(found, valid)
    assert answered, "no HTTP component answered"

    # Access logs with a line per request: the gateway's Envoy and llama-stack's uvicorn.
    sentinel = f"/v1/models/flush-{secrets.token_hex(6)}"
    loggers = {n for n in run.alive_pids() if n.endswith(("-envoy", "-llama-stack"))}
    assert len(loggers) == 2, f"expected the gateway's and llama-stack's containers, found {sorted(run.alive_pids())}"
    for url in (endpoints.gateway_url, endpoints.llama_stack_url):
        httpx.get(f"{url}{sentinel}", timeout=REQUEST_TIMEOUT_S)
    _wait_logged(run, sentinel, sorted(loggers))

    bundle = target.diagnose(tmp_path / "diagnostics")
    leaks = _files_holding(run.logs_dir, marker, valid) + _files_holding(run.root, marker)
    leaks += _files_holding(bundle, marker, valid)
    metrics = usage_metrics.scrape(f"http://127.0.0.1:{target.internal_port('gateway_metrics')}")
    leaks += [
        f"the gateway's metrics hold {what}"
        for what, k in (("the made-up key", marker), ("a valid key", valid))
        if k in metrics
    ]
    leaks = list(dict.fromkeys(leaks))
    assert not leaks, "a key a client sent was written down:\n" + "\n".join(leaks)
