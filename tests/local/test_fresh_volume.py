"""A new llama-stack data volume serves its very first requests, even when they overlap.

llama-stack 0.7.3 creates its SQL tables on the first read or write and answers
`no such table` to requests that overlap that creation; the chart's create-tables init
container creates them before the server starts. Here the first data requests to a fresh
stack arrive together: chat completions (stored in the background) and file uploads.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import httpx
import pytest
from harness import registration
from harness.llama_stack_auth import caller_headers
from harness.targets.local import LocalTarget

from .conftest import start_stack

CONCURRENT = 8  # requests of each kind sent at once as the stack's first data requests
HTTP_TIMEOUT_S = 30.0  # one request on a busy 2-core machine
STORED_TIMEOUT_S = 20.0  # chat completions are written to the inference store after the answer


@pytest.fixture(scope="module")
def fresh_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalTarget, str, dict[str, str]]]:
    # The harness's own readiness wait reads the files, vector-store and responses routes, which
    # would create the tables before this test's requests; a cluster's readinessProbe reads none.
    # Wait on the model listing only, so the requests below are the first to reach the stores.
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(registration, "READY_ROUTES", ("/v1/models",))
        target = start_stack("test-fresh-volume", None, tmp_path_factory.mktemp("fresh"))
    try:
        endpoints = target.status()
        yield target, endpoints.llama_stack_url, caller_headers(endpoints.llama_stack_key())
    finally:
        target.down()


async def _first_requests(url: str, model: str, headers: dict[str, str]) -> dict[str, list[int | str]]:
    """Send CONCURRENT chat completions and CONCURRENT uploads at once; their HTTP statuses
    (or the name of the exception a request raised)."""
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=HTTP_TIMEOUT_S) as client:

        async def chat(index: int) -> int:
            body = {"model": model, "messages": [{"role": "user", "content": f"fresh volume {index}"}]}
            return (await client.post("/v1/chat/completions", json=body)).status_code

        async def upload(index: int) -> int:
            files = {"file": (f"fresh-{index}.txt", f"fresh volume file {index}".encode(), "text/plain")}
            return (await client.post("/v1/files", data={"purpose": "assistants"}, files=files)).status_code

        chats = asyncio.gather(*(chat(i) for i in range(CONCURRENT)), return_exceptions=True)
        uploads = asyncio.gather(*(upload(i) for i in range(CONCURRENT)), return_exceptions=True)
        results = dict(zip(("chat", "upload"), await asyncio.gather(chats, uploads), strict=True))
    # A request that hangs (a table creation blocked behind another) shows as its exception's name.
    return {kind: [r if isinstance(r, int) else type(r).__name__ for r in rs] for kind, rs in results.items()}


def _stored_completions(url: str, headers: dict[str, str]) -> int:
    response = httpx.get(f"{url}/v1/chat/completions", params={"limit": 100}, headers=headers, timeout=HTTP_TIMEOUT_S)
    return len(response.json().get("data", [])) if response.status_code == 200 else -response.status_code


def test_first_overlapping_requests_on_a_new_volume_are_all_served_and_stored(fresh_stack):
    target, url, headers = fresh_stack
    model = next(m for m in target.status().llama_stack_models if not m.startswith("embeddings/"))
    statuses = asyncio.run(_first_requests(url, model, headers))
    expected = {"chat": [200] * CONCURRENT, "upload": [200] * CONCURRENT}
    assert statuses == expected, f"first requests to a new volume were not all served: {statuses}"

    deadline = time.monotonic() + STORED_TIMEOUT_S
    while (stored := _stored_completions(url, headers)) < CONCURRENT and time.monotonic() < deadline:
        time.sleep(0.5)
    assert stored == CONCURRENT, f"{stored} of {CONCURRENT} chat completions stored (negative: HTTP error)"

    log = target.component_log("llama-stack")
    assert "no such table" not in log, "llama-stack answered from a database whose tables were not created yet"
