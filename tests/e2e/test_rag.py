"""RAG: ingest a corpus of made-up facts into the pgvector-backed vector store, then retrieve.

The corpus pairs each answer document with a distractor close in topic (two lighthouses, two
bakeries, two glaciers), and one long almanac that the store splits into several chunks.
Questions are paraphrases that share few words with their answers. The tests assert ranking
(which chunk comes first, scores descending), what PostgreSQL holds, and what the model
server received; a claim about how a model uses retrieved text is made only against a real
model (the MaaS lane).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from harness import http
from harness import registration as reg
from harness.declared import Declared
from harness.http import ssl_verify
from harness.pytest_plugin import llm_ids

pytestmark = [pytest.mark.e2e, pytest.mark.rag]

CORPUS = Path(__file__).parent / "corpus"
INGEST_TIMEOUT_S = 60
CHUNK_TOKENS = 120  # small enough to split the almanac into several chunks; llama-stack needs >= 100
LONG_DOCUMENT = "karvo-almanac.txt"
MIN_LONG_CHUNKS = 3
RESPONSES_TURNS = 3  # model turns in the Responses test: the tool call, the skipped second call, an answer


@dataclass(frozen=True)
class Question:
    text: str
    document: str  # file name in the corpus
    fact: str  # a phrase only the answer chunk contains


QUESTIONS = [
    Question("Which hues decorate the Zephyr beacon?", "zephyr-lighthouse.txt", "teal and ochre"),
    Question(
        "How long does the Quillfeather saffron bread rise before baking?", "quillfeather-bakery.txt", "nineteen hours"
    ),
    Question("How much ground has the Marrowind ice lost since surveys began?", "marrowind-glacier.txt", "312 metres"),
    Question("Which opening does the strongest player at the boathouse club prefer?", LONG_DOCUMENT, "Vienna Gambit"),
]
LONG_QUESTION = QUESTIONS[3]


@dataclass
class Ingested:
    store_id: str
    file_ids: dict[str, str]  # corpus file name -> file id
    provider_id: str
    embedding_model: str


def pgvector_provider(llama_stack_url: str) -> str:
    status, payload = http.json_request("GET", llama_stack_url + "/v1/providers")
    assert status == 200, f"GET /v1/providers answered {status}"
    items = payload.get("data", payload) if isinstance(payload, dict) else payload
    ids = [p["provider_id"] for p in items if p.get("api") == "vector_io" and "pgvector" in p.get("provider_type", "")]
    assert ids, (
        f"no pgvector vector_io provider; vector_io providers: "
        f"{[p.get('provider_type') for p in items if p.get('api') == 'vector_io']}"
    )
    return ids[0]


def embedding_models(llama_stack_url: str) -> list[str]:
    _, payload = http.json_request("GET", llama_stack_url + "/v1/models")
    return [
        m["id"] for m in payload.get("data", []) if (m.get("custom_metadata") or {}).get("model_type") == "embedding"
    ]


def embedding_model(llama_stack_url: str) -> str:
    """The first embedding model llama-stack lists (for callers that need one, any one)."""
    listed = embedding_models(llama_stack_url)
    assert listed, f"llama-stack at {llama_stack_url} lists no embedding model"
    return listed[0]


@pytest.fixture(scope="module")
def store_embedding_model(llama_stack_url: str, declared: Declared) -> str:
    """The declared embedding model as llama-stack lists it; fails when the values declare one it lacks."""
    if not declared.embedding_model:
        pytest.skip(f"the values ({declared.describe()}) declare no embedding model (llama-stack.embeddings)")
    listed = embedding_models(llama_stack_url)
    matching = [m for m in listed if m.endswith("/" + declared.embedding_model) or m == declared.embedding_model]
    assert matching, f"the values declare the embedding model {declared.embedding_model!r}; llama-stack lists {listed}"
    return matching[0]


def test_declared_embedding_model_is_registered(store_embedding_model: str, declared: Declared) -> None:
    assert store_embedding_model.endswith(declared.embedding_model), store_embedding_model


@pytest.fixture(scope="module")
def ingested(openai_llama, llama_stack_url: str, store_embedding_model: str) -> Iterator[Ingested]:
    provider = pgvector_provider(llama_stack_url)
    file_ids = {
        p.name: openai_llama.files.create(file=(p.name, p.read_bytes(), "text/plain"), purpose="assistants").id
        for p in sorted(CORPUS.glob("*.txt"))
    }
    store = openai_llama.vector_stores.create(
        name=f"e2e-corpus-{uuid.uuid4().hex[:8]}",
        extra_body={"provider_id": provider, "embedding_model": store_embedding_model},
    )
    # Files attached one by one: llama-stack applies a chunking strategy given here, while
    # one given with vector_stores.create(file_ids=...) falls back to its 800-token default.
    chunking = {"type": "static", "static": {"max_chunk_size_tokens": CHUNK_TOKENS, "chunk_overlap_tokens": 0}}
    for file_id in file_ids.values():
        openai_llama.vector_stores.files.create(vector_store_id=store.id, file_id=file_id, chunking_strategy=chunking)
    try:
        wait_ingested(openai_llama, store.id, len(file_ids))
        yield Ingested(store.id, file_ids, provider, store_embedding_model)
    finally:
        openai_llama.vector_stores.delete(store.id)
        for file_id in file_ids.values():
            openai_llama.files.delete(file_id)


def wait_ingested(client: Any, store_id: str, count: int) -> None:
    deadline = time.monotonic() + INGEST_TIMEOUT_S
    states: list[str] = []
    while time.monotonic() < deadline:
        files = list(client.vector_stores.files.list(vector_store_id=store_id))
        states = [f.status for f in files]
        failed = [f for f in files if f.status == "failed"]
        assert not failed, f"ingestion failed: {[(f.id, f.last_error) for f in failed]}"
        if len(files) == count and all(s == "completed" for s in states):
            return
        time.sleep(0.3)
    raise AssertionError(f"ingestion not complete after {INGEST_TIMEOUT_S}s: {states}")


def search(client: Any, ingested: Ingested, question: Question, results: int) -> list[Any]:
    return client.vector_stores.search(ingested.store_id, query=question.text, max_num_results=results).data


def text_of(result: Any) -> str:
    return " ".join(c.text for c in result.content)


def describe(results: list[Any]) -> str:
    return "; ".join(f"{r.filename or r.file_id} {r.score:.3f} {text_of(r)[:50]!r}" for r in results)


# --- storage ---------------------------------------------------------------------------------


def test_corpus_is_stored_in_postgresql_one_row_per_chunk(
    openai_llama, ingested: Ingested, pgvector_rows, declared: Declared
) -> None:
    store = openai_llama.vector_stores.retrieve(ingested.store_id)
    assert store.file_counts.completed == len(ingested.file_ids), store.file_counts
    rows = pgvector_rows(ingested.store_id)
    assert rows.dimensions == {declared.embedding_dimension}, (
        f"vector dimensions in PostgreSQL {rows.dimensions}, the values declare {declared.embedding_dimension}"
    )
    by_file = rows.chunks_by_file()
    assert set(by_file) == set(ingested.file_ids.values()), (
        f"rows name files {sorted(by_file)}, ingested {sorted(ingested.file_ids.values())}"
    )
    long_chunks = by_file[ingested.file_ids[LONG_DOCUMENT]]
    assert len(long_chunks) >= MIN_LONG_CHUNKS, f"{LONG_DOCUMENT} is stored as {len(long_chunks)} chunk(s)"
    duplicates = [cid for cid in rows.chunk_ids if rows.chunk_ids.count(cid) > 1]
    assert not duplicates, f"chunks stored more than once: {sorted(set(duplicates))}"
    stored = " ".join(long_chunks)
    assert LONG_QUESTION.fact in stored, f"the stored chunks of {LONG_DOCUMENT} lack {LONG_QUESTION.fact!r}"


# --- ranking ---------------------------------------------------------------------------------


@pytest.mark.parametrize("question", QUESTIONS, ids=lambda q: q.document.removesuffix(".txt"))
def test_one_result_is_the_answer_chunk(openai_llama, ingested: Ingested, question: Question) -> None:
    results = search(openai_llama, ingested, question, results=1)
    assert len(results) == 1, f"asked for one result, got {len(results)}: {describe(results)}"
    top = results[0]
    assert top.file_id == ingested.file_ids[question.document], f"{question.text!r}: got {describe(results)}"
    assert question.fact in text_of(top), (
        f"{question.text!r}: the top chunk lacks {question.fact!r}: {describe(results)}"
    )
    # First by a margin, not by a tie broken in its favour.
    pair = search(openai_llama, ingested, question, results=2)
    assert pair[0].score > pair[1].score, f"{question.text!r}: the answer ties the runner-up: {describe(pair)}"


@pytest.mark.parametrize("question", QUESTIONS, ids=lambda q: q.document.removesuffix(".txt"))
def test_scores_descend_from_the_answer_chunk(openai_llama, ingested: Ingested, question: Question) -> None:
    results = search(openai_llama, ingested, question, results=5)
    assert len(results) >= 3, f"expected several results: {describe(results)}"
    scores = [r.score for r in results]
    assert scores == sorted(scores, reverse=True), f"scores do not descend: {describe(results)}"
    assert scores[0] > scores[1], f"the answer does not stand out from the next result: {describe(results)}"
    assert question.fact in text_of(results[0]), f"{question.text!r}: first is not the answer: {describe(results)}"


def test_long_document_answer_chunk_outranks_its_other_chunks(openai_llama, ingested: Ingested) -> None:
    results = search(openai_llama, ingested, LONG_QUESTION, results=10)
    long_id = ingested.file_ids[LONG_DOCUMENT]
    own = [r for r in results if r.file_id == long_id]
    assert len(own) >= 2, f"fewer than two chunks of {LONG_DOCUMENT} among the results: {describe(results)}"
    assert LONG_QUESTION.fact in text_of(own[0]), f"the chess chunk is not the almanac's first: {describe(own)}"
    assert own[0].score > own[1].score, f"the chess chunk ties the almanac's next chunk: {describe(own)}"
    assert all(LONG_QUESTION.fact not in text_of(r) for r in own[1:]), f"the fact is in several chunks: {describe(own)}"


# --- Responses file_search -------------------------------------------------------------------


@pytest.fixture(scope="module")
def own_chat_model(llama_stack_url: str, registration: Any, endpoints: Any) -> str:
    """An LLM of the stack's own model servers, whose calls `model_calls` records (in the MaaS lane
    `chat_model` is the MaaS's, served by another process), that the harness's key may use: the
    first the gateway lists to it (llama-stack names a gateway entry `<key>/<public id>`)."""
    _, payload = http.json_request("GET", llama_stack_url + "/v1/models")
    external = set(registration.registered + registration.already) if registration is not None else set()
    listed = list(endpoints.gateway_models)
    own = [m for m in llm_ids(payload) if m not in external and m.partition("/")[2] in listed]
    assert own, (
        f"llama-stack at {llama_stack_url} lists no model of the stack's own model servers that the "
        f"gateway lists to the harness's key ({listed})"
    )
    return min(own, key=lambda m: listed.index(m.partition("/")[2]))


def test_responses_file_search_passes_the_answer_to_the_model(
    openai_llama, own_chat_model: str, ingested: Ingested, model_calls
) -> None:
    """Responses with file_search: llama-stack searches the store with the query the model asks for
    and passes the results back to the model.

    The simulator asks with a query of its own (a random word); that a model asks the right question
    and answers from the results is a model property, checked only against a real model.
    """
    question = QUESTIONS[0]
    before = len(model_calls.records())
    response = openai_llama.responses.create(
        model=own_chat_model,
        input=question.text,
        tools=[{"type": "file_search", "vector_store_ids": [ingested.store_id], "max_num_results": 3}],
        include=["file_search_call.results"],
        # With tool_choice "auto" the simulator calls a tool on a coin flip (it picks 0..n calls at
        # random): "required" makes the first turn a search; llama-stack then sets "auto" again, and
        # max_tool_calls=1 skips any further search, so the turns end with an answer.
        tool_choice="required",
        max_tool_calls=1,
        extra_body={"max_infer_iters": RESPONSES_TURNS},
    )
    calls = [item for item in response.output if item.type == "file_search_call"]
    assert calls, f"no file_search call; output types {[i.type for i in response.output]}"
    results = [r for call in calls for r in (call.results or [])]
    assert results, f"the file_search call for {calls[0].queries} returned no results"
    stored = set(ingested.file_ids.values())
    assert all(r.file_id in stored for r in results), f"results from outside the store: {[r.file_id for r in results]}"
    received = [" ".join(text.split()) for text in tool_outputs(model_calls.records()[before:])]
    assert received, "the model server received no tool output after the file_search call"
    for result in results:
        excerpt = " ".join((result.text or "").split())[:80]
        assert excerpt, f"a file_search result without text: {result}"
        assert any(excerpt in text for text in received), (
            f"the tool output passed back to the model lacks the result {excerpt!r}: {[t[:200] for t in received]}"
        )


def tool_outputs(records: list[dict[str, Any]]) -> list[str]:
    """Text of every tool message in the recorded model calls."""
    texts = []
    for record in records:
        for message in record["body"].get("messages") or []:
            if message.get("role") == "tool":
                content = message.get("content")
                if isinstance(content, list):  # content parts: their text, in order
                    content = "".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
                texts.append(content if isinstance(content, str) else str(content))
    return texts


# --- client-side RAG -------------------------------------------------------------------------


def context_prompt(context: str, question: str) -> str:
    return f"Answer from the context only.\n\nContext:\n{context}\n\nQuestion: {question}"


def test_client_side_rag_puts_the_retrieved_chunk_in_the_model_prompt(
    openai_llama, own_chat_model: str, ingested: Ingested, model_calls
) -> None:
    """Retrieval then chat through llama-stack: the prompt the model server receives carries the chunk.

    What the model makes of it is a model property, checked only against a real model
    (test_real_model_answers_from_retrieved_context).
    """
    question = LONG_QUESTION
    hits = search(openai_llama, ingested, question, results=1)
    assert hits, "the search returned nothing"
    context = text_of(hits[0])  # whatever ranks first: ranking is the ranking tests' claim
    marker = f"[request {uuid.uuid4().hex[:12]}]"
    answer = openai_llama.chat.completions.create(
        model=own_chat_model,
        messages=[{"role": "user", "content": f"{context_prompt(context, question.text)}\n{marker}"}],
        max_tokens=400,
    )
    assert (answer.choices[0].message.content or "").strip(), "the model returned no answer"
    received = model_calls.containing(marker)
    assert received, f"the model server never received the request marked {marker}"
    prompt = " ".join(str(m.get("content")) for m in received[-1]["body"]["messages"])
    assert context in prompt, f"the prompt the model received lacks the retrieved chunk {context[:80]!r}"


@pytest.mark.maas
def test_real_model_answers_from_retrieved_context(openai_llama, ingested: Ingested, maas) -> None:
    """A real model states a made-up fact with the retrieved chunk, and not without it (control)."""
    if not maas.configured:
        pytest.skip("MAAS_ENDPOINT and MAAS_API_KEY are not set: how a model uses context needs a real model")
    from openai import OpenAI

    session = httpx.Client(verify=ssl_verify(maas.tls_verify), timeout=120)
    # The SDK declares httpx2.Client but also takes an httpx.Client (it normalises both at run time).
    client = OpenAI(
        base_url=reg.v1_url(maas.endpoint),
        api_key=maas.api_key,
        max_retries=0,
        http_client=session,  # type: ignore[arg-type]
    )
    model = maas.model or reg.discover_models(maas.endpoint, maas.api_key, verify=maas.tls_verify)[0]
    question = LONG_QUESTION
    context = text_of(search(openai_llama, ingested, question, results=1)[0])

    def ask(prompt: str) -> str:
        reply = client.chat.completions.create(
            model=model, messages=[{"role": "user", "content": prompt}], max_tokens=200, temperature=0
        )
        return reply.choices[0].message.content or ""

    with_store = ask(context_prompt(context, question.text))
    assert question.fact.lower() in with_store.lower(), (
        f"{model}: the answer does not carry the retrieved fact {question.fact!r}: {with_store[:300]!r}"
    )
    control = ask(question.text)
    assert question.fact.lower() not in control.lower(), (
        f"{model} states {question.fact!r} without the store: the control shows the fact is not made up"
    )
