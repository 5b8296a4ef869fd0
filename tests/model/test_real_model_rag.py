"""The real-model lane: a real small instruction model, behind the gateway and registered in
llama-stack like any model, answers from retrieved documents.

The documents hold invented facts (names and numbers no model could know). A grounded answer
states the asked fact; the same question without the documents does not; and an answer that
only echoes its context fails: it must be short and hold the asked fact but none of the other
documents' facts.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import openai
import pytest
from e2e.support import Gateway, await_window, wait_for_charge
from harness import http, real_model
from harness.pytest_plugin import openai_llama_client

from .lane import Lane

pytestmark = [pytest.mark.model, pytest.mark.rag]

MODEL = f"maas/{real_model.MODEL_ID}"  # tests/model/real-model.yaml: global.models.maas
ANSWER_TOKENS = 48  # one short sentence
ANSWER_MAX_WORDS = 40  # longer than any grounded one-sentence answer, shorter than the documents
CALL_TIMEOUT_S = 180.0  # one answer on a shared 2-core CPU: a cold prompt of a few hundred tokens
# The charge test's answer and refusal must fall in one window of the free tier's token budget
# (1 minute, epoch-aligned): one answer with context takes a few seconds here, 40 s leaves room
# for a slower machine. (Without the wait, a window that turned over between the two calls let
# the second through: CI, stop 37.)
CHARGE_SPAN_S = 40.0
INGEST_TIMEOUT_S = 60.0
RESPONSES_TURNS = 3  # the search, then the answer (max_tool_calls=1 skips any second search)
SYSTEM = "Answer the question in one short sentence. Use only the context when a context is given."


@dataclass(frozen=True)
class Fact:
    document: str  # one document per fact: one chunk each, so retrieval must pick the right one
    question: str
    marker: str  # what a grounded answer must contain (lower case)


FACTS = (
    Fact("The lighthouse keeper of Quellmoor is Brannoc Tilvane. He has kept the light since 2019.",
         "Who is the lighthouse keeper of Quellmoor?", "tilvane"),
    Fact("The Quellmoor ferry, named the Oriel Wren, carries exactly 237 passengers.",
         "How many passengers does the Quellmoor ferry carry?", "237"),
    Fact("Fishing boats in Quellmoor harbor pay a mooring fee of 41 copper marks per night.",
         "What mooring fee do fishing boats pay in Quellmoor harbor?", "41"),
    Fact("The Quellmoor eel festival is held every year on the 14th of Sarnet, the town's ninth month.",
         "In which month is the Quellmoor eel festival held?", "sarnet"),
    Fact("The Quellmoor harbor master, Idris Varnholt, keeps her records in a green ledger called the Tidebook.",
         "What is the name of the Quellmoor harbor master's ledger?", "tidebook"),
    Fact("The old Quellmoor breakwater is 1,862 paces long and was finished by the mason Ulla Brisk.",
         "Which mason finished the Quellmoor breakwater?", "brisk"),
)  # fmt: skip
ASKED = (FACTS[0], FACTS[1])  # asked without the documents, and through Responses: a name and a number
# Asked with retrieved context: four facts, each against the top SEARCH_RESULTS documents of six.
# Four facts cannot all be in the same three documents, so retrieval that ranks nothing (every
# document as near as any other, always the same three) leaves at least one answer without its fact.
GROUNDED = (FACTS[0], FACTS[1], FACTS[3], FACTS[5])
SEARCH_RESULTS = 3


@dataclass(frozen=True)
class Store:
    id: str
    file_ids: list[str]


@pytest.fixture(scope="module")
def client(lane: Lane) -> openai.OpenAI:
    base = openai_llama_client(lane.endpoints.llama_stack_url, lane.key)
    return base.with_options(timeout=CALL_TIMEOUT_S)


@pytest.fixture(scope="module")
def store(client: openai.OpenAI, lane: Lane) -> Iterator[Store]:
    file_ids = [
        client.files.create(file=(f"quellmoor-{i}.txt", fact.document.encode(), "text/plain"), purpose="assistants").id
        for i, fact in enumerate(FACTS)
    ]
    created = client.vector_stores.create(
        name=f"model-lane-{uuid.uuid4().hex[:8]}", extra_body={"embedding_model": _embedding_model(lane)}
    )
    for file_id in file_ids:
        client.vector_stores.files.create(vector_store_id=created.id, file_id=file_id)
    try:
        _wait_ingested(client, created.id, len(file_ids))
        yield Store(created.id, file_ids)
    finally:
        client.vector_stores.delete(created.id)
        for file_id in file_ids:
            client.files.delete(file_id)


def _embedding_model(lane: Lane) -> str:
    _, payload = http.json_request("GET", lane.endpoints.llama_stack_url + "/v1/models")
    data = payload.get("data", [])
    models = [m["id"] for m in data if (m.get("custom_metadata") or {}).get("model_type") == "embedding"]
    assert models, "llama-stack lists no embedding model"
    return str(models[0])


def _wait_ingested(client: openai.OpenAI, store_id: str, count: int) -> None:
    deadline = time.monotonic() + INGEST_TIMEOUT_S
    states: list[str] = []
    while time.monotonic() < deadline:
        files = list(client.vector_stores.files.list(vector_store_id=store_id))
        states = [f.status for f in files]
        assert "failed" not in states, f"ingestion failed: {[(f.id, f.last_error) for f in files]}"
        if len(files) == count and all(s == "completed" for s in states):
            return
        time.sleep(0.3)
    raise AssertionError(f"ingestion not complete after {INGEST_TIMEOUT_S}s: {states}")


def chat(client: openai.OpenAI, question: str, context: str = "") -> str:
    user = f"Context:\n{context}\n\nQuestion: {question}" if context else question
    answer = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}],
        max_tokens=ANSWER_TOKENS,
        temperature=0,
        extra_body={"cache_prompt": False},  # llama.cpp: the same wording run after run
    )
    assert answer.usage is not None and answer.usage.total_tokens > 0, "the answer carries no usage to charge"
    return answer.choices[0].message.content or ""


def assert_grounded(answer: str, fact: Fact) -> None:
    """The answer states the asked fact, briefly, and is not a copy of its prompt: it holds none
    of the other documents' facts (the context holds SEARCH_RESULTS documents; an echo holds them
    all) and not the prompt's frame."""
    assert fact.marker in answer.lower(), f"the answer does not state {fact.marker!r}: {answer!r}"
    assert "question:" not in answer.lower(), f"the answer repeats the prompt: {answer!r}"
    words = len(answer.split())
    assert words <= ANSWER_MAX_WORDS, f"a {words}-word answer to a one-sentence question (an echo?): {answer!r}"
    others = [f.marker for f in FACTS if f is not fact and f.marker in answer.lower()]
    assert not others, f"the answer repeats other documents' facts {others} (it echoes the context): {answer!r}"


@pytest.mark.parametrize("fact", GROUNDED, ids=lambda f: f.marker)
def test_chat_with_retrieved_context_states_the_fact(client: openai.OpenAI, store: Store, fact: Fact) -> None:
    """Search the store, pass the top results as context, ask: the answer states the fact and
    only it. Three results of six: retrieval must rank the fact's document among them."""
    results = client.vector_stores.search(store.id, query=fact.question, max_num_results=SEARCH_RESULTS).data
    context = "\n\n".join(part.text for r in results for part in r.content)
    assert_grounded(chat(client, fact.question, context), fact)


@pytest.mark.parametrize("fact", ASKED, ids=lambda f: f.marker)
def test_without_the_documents_the_fact_is_not_stated(client: openai.OpenAI, fact: Fact) -> None:
    answer = chat(client, fact.question)
    assert answer.strip(), "the model gave an empty answer"
    assert fact.marker not in answer.lower(), f"the model states {fact.marker!r} without the documents: {answer!r}"


# Switched off until the lane's model calls tools: Qwen2.5-Coder-0.5B answers a tools request in
# plain text, or, told to search first (even shown the <tool_call> tags its template asks for), with
# a bare JSON object without the tags; llama.cpp does not constrain the output under tool_choice
# "required" (sent here, and by llama-stack on the first turn) and reads the untagged JSON as text,
# so llama-stack sees a plain message and never searches. strict: the test fails as soon as it
# passes, so the marker comes off with the fix.
@pytest.mark.xfail(strict=True, reason="the lane's model does not emit tool calls: no file_search call is made")
def test_responses_file_search_states_the_fact(client: openai.OpenAI, store: Store) -> None:
    fact = ASKED[0]
    response = client.responses.create(
        model=MODEL,
        instructions=SYSTEM,
        input=fact.question,
        tools=[{"type": "file_search", "vector_store_ids": [store.id], "max_num_results": 3}],
        tool_choice="required",
        max_tool_calls=1,
        temperature=0,
        max_output_tokens=ANSWER_TOKENS,
        extra_body={"max_infer_iters": RESPONSES_TURNS},
    )
    calls = [item for item in response.output if item.type == "file_search_call"]
    assert calls, f"no file_search call; output types {[i.type for i in response.output]}"
    assert_grounded(response.output_text, fact)


def test_the_gateway_charges_the_real_model(lane: Lane) -> None:
    """Behind the gateway and charged like any model: a free-tier key (200 tokens a minute) spends
    its budget on one answer with context and is refused the next with 429."""
    key = lane.endpoints.keys["free"][-1]
    free = openai_llama_client(lane.endpoints.llama_stack_url, key)
    context = "\n".join(f.document for f in FACTS)
    gateway = Gateway(lane.endpoints.gateway_url, MODEL)
    try:
        await_window(gateway, key, CHARGE_SPAN_S)
        started = time.monotonic()
        answer = chat(free.with_options(timeout=CALL_TIMEOUT_S), ASKED[1].question, context)
        took = time.monotonic() - started
        assert answer.strip(), "the model gave an empty answer"
        assert took < CHARGE_SPAN_S, f"the answer took {took:.0f}s, over the {CHARGE_SPAN_S:.0f}s left in its window"
        wait_for_charge(gateway, key, 0)  # the answer with context spends the whole budget
        with pytest.raises(openai.RateLimitError):
            chat(free.with_options(timeout=CALL_TIMEOUT_S), ASKED[1].question, context)
    finally:
        gateway.http.close()
