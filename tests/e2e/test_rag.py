"""RAG: ingest a small corpus with distinct made-up facts into the pgvector-backed vector
store, then retrieve: search ranking, Responses `file_search`, and a client-side flow."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from harness import registration as reg

pytestmark = [pytest.mark.e2e, pytest.mark.rag]

CORPUS = Path(__file__).parent / "corpus"
INGEST_TIMEOUT_S = 60


@dataclass(frozen=True)
class Question:
    text: str
    document: str  # file name in the corpus
    fact: str  # a phrase only that document contains


QUESTIONS = [
    Question("What colours is the lighthouse on Karvo Island painted?", "zephyr-lighthouse.txt", "teal and ochre"),
    Question("For how long is the saffron rye loaf proofed?", "quillfeather-bakery.txt", "nineteen hours"),
    Question("How far did the Marrowind Glacier retreat?", "marrowind-glacier.txt", "312 metres"),
    Question(
        "Which opening does the champion of the chess club in the boathouse favour?",
        "tidewright-chess.txt",
        "Vienna Gambit",
    ),
    Question("How many eggs does the velvet beetle lay per season?", "velvet-beetle.txt", "four eggs"),
]


@dataclass
class Ingested:
    store_id: str
    file_ids: dict[str, str]  # corpus file name -> file id
    provider_id: str


def pgvector_provider(llama_stack_url: str) -> str:
    status, payload = reg.http_json("GET", llama_stack_url + "/v1/providers")
    assert status == 200, f"GET /v1/providers answered {status}"
    items = payload.get("data", payload) if isinstance(payload, dict) else payload
    ids = [p["provider_id"] for p in items if p.get("api") == "vector_io" and "pgvector" in p.get("provider_type", "")]
    assert ids, (
        f"no pgvector vector_io provider; vector_io providers: "
        f"{[p.get('provider_type') for p in items if p.get('api') == 'vector_io']}"
    )
    return ids[0]


def embedding_model(llama_stack_url: str) -> str:
    _, payload = reg.http_json("GET", llama_stack_url + "/v1/models")
    ids = [
        m["id"] for m in payload.get("data", []) if (m.get("custom_metadata") or {}).get("model_type") == "embedding"
    ]
    if not ids:
        pytest.skip(f"llama-stack at {llama_stack_url} lists no embedding model")
    return ids[0]


@pytest.fixture(scope="module")
def ingested(openai_llama, llama_stack_url: str) -> Iterator[Ingested]:
    provider = pgvector_provider(llama_stack_url)
    file_ids = {
        p.name: openai_llama.files.create(file=(p.name, p.read_bytes(), "text/plain"), purpose="assistants").id
        for p in sorted(CORPUS.glob("*.txt"))
    }
    store = openai_llama.vector_stores.create(
        name=f"e2e-corpus-{uuid.uuid4().hex[:8]}",
        file_ids=list(file_ids.values()),
        chunking_strategy={"type": "static", "static": {"max_chunk_size_tokens": 200, "chunk_overlap_tokens": 0}},
        extra_body={"provider_id": provider, "embedding_model": embedding_model(llama_stack_url)},
    )
    try:
        wait_ingested(openai_llama, store.id, len(file_ids))
        yield Ingested(store.id, file_ids, provider)
    finally:
        openai_llama.vector_stores.delete(store.id)
        for file_id in file_ids.values():
            openai_llama.files.delete(file_id)


def wait_ingested(client: Any, store_id: str, count: int) -> None:
    deadline = time.monotonic() + INGEST_TIMEOUT_S
    while time.monotonic() < deadline:
        files = list(client.vector_stores.files.list(vector_store_id=store_id))
        states = [f.status for f in files]
        failed = [f for f in files if f.status == "failed"]
        assert not failed, f"ingestion failed: {[(f.id, f.last_error) for f in failed]}"
        if len(files) == count and all(s == "completed" for s in states):
            return
        time.sleep(0.3)
    raise AssertionError(f"ingestion not complete after {INGEST_TIMEOUT_S}s: {states}")


def test_corpus_is_stored_in_pgvector(openai_llama, ingested: Ingested) -> None:
    store = openai_llama.vector_stores.retrieve(ingested.store_id)
    assert store.file_counts.completed == len(ingested.file_ids), store.file_counts
    # llama-stack records the provider that holds the store in its metadata.
    assert (store.metadata or {}).get("provider_id", ingested.provider_id) == ingested.provider_id, store.metadata


@pytest.mark.parametrize("question", QUESTIONS, ids=lambda q: q.document.removesuffix(".txt"))
def test_search_ranks_the_right_document_first(openai_llama, ingested: Ingested, question: Question) -> None:
    results = openai_llama.vector_stores.search(ingested.store_id, query=question.text, max_num_results=3).data
    assert results, f"no results for {question.text!r}"
    ranking = [r.filename or r.file_id for r in results]
    assert results[0].file_id == ingested.file_ids[question.document], f"{question.text!r}: ranking {ranking}"
    assert question.fact in " ".join(c.text for c in results[0].content), f"top chunk lacks {question.fact!r}"


def test_responses_file_search_finds_the_document(openai_llama, chat_model: str, ingested: Ingested) -> None:
    question = QUESTIONS[0]
    response = openai_llama.responses.create(
        model=chat_model,
        input=question.text,
        tools=[{"type": "file_search", "vector_store_ids": [ingested.store_id]}],
        include=["file_search_call.results"],
    )
    calls = [item for item in response.output if item.type == "file_search_call"]
    assert calls, f"the model made no file_search call; output types {[i.type for i in response.output]}"
    results = [r for call in calls for r in (call.results or [])]
    expected = ingested.file_ids[question.document]
    assert any(r.file_id == expected or question.fact in r.text for r in results), (
        f"file_search results {[(r.file_id, r.text[:60]) for r in results]} lack {question.document}"
    )
    assert response.output_text.strip(), "the Responses call returned no answer text"


def test_client_side_rag_sends_retrieved_text_to_the_model(openai_llama, chat_model: str, ingested: Ingested) -> None:
    question = QUESTIONS[3]
    hits = openai_llama.vector_stores.search(ingested.store_id, query=question.text, max_num_results=2).data
    context = "\n\n".join(c.text for hit in hits for c in hit.content)
    assert question.fact in context, f"retrieval missed the fact {question.fact!r}"
    prompt = f"Answer from the context only.\n\nContext:\n{context}\n\nQuestion: {question.text}"
    answer = openai_llama.chat.completions.create(
        model=chat_model, messages=[{"role": "user", "content": prompt}], max_tokens=400
    )
    text = answer.choices[0].message.content or ""
    # The fact exists only in the retrieved chunk: a model that got it can state it.
    assert question.fact.lower() in text.lower(), (
        f"the answer does not carry the retrieved fact {question.fact!r}: {text[:300]!r}"
    )
