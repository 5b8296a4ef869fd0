"""Tests of the chunking and embedding tests: break the mechanism each one proves, see it fail.

One extra local stack (run name `meta-rag-broken`) runs with the chart declaring the `passage: `
prefix while the embeddings stand-in is made to ignore the chart and prefix `query: `. Then:
  1. test_embeddings runs as users run it             -> both prefix tests fail
  2. test_chunking runs with a client that sends no chunking_strategy (`-p meta.auto_chunking`:
     llama-stack's own 800/400, the fault the chart's published chunking exists to avoid)
     -> the size and E5-fit tests fail
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from harness.local import programs

from meta.runs import BrokenStack, StackBreak, broken_stack

pytestmark = pytest.mark.meta


def _stand_in_ignores_the_chart(patch: pytest.MonkeyPatch) -> None:
    # The stand-in no longer follows the chart's --default-prompt.
    patch.setattr(programs, "embedding_mode", lambda spec: "query")


BREAK = StackBreak(
    "meta-rag-broken", overlay='embeddings:\n  prompt: "passage: "\n', while_starting=_stand_in_ignores_the_chart
)
EMBEDDINGS = "tests/e2e/test_embeddings.py"
CHUNKING = "tests/e2e/test_chunking.py"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokenStack]:
    yield from broken_stack(BREAK, tmp_path_factory)


def test_prefix_tests_fail_when_the_stand_in_ignores_the_chart(stack: BrokenStack, tmp_path: Path) -> None:
    run = stack.run([EMBEDDINGS], tmp_path)
    expected = {
        "test_embeddings::test_query_vector_uses_the_declared_prefix",
        "test_embeddings::test_documents_are_embedded_like_queries",
    }
    assert run.failed() == expected, f"failed {sorted(run.failed())}, want {sorted(expected)}:\n{run.tail()}"
    for name in expected:
        assert "declared 'passage: '" in run.message(name), run.message(name)


def test_chunking_tests_fail_without_the_published_chunking(stack: BrokenStack, tmp_path: Path) -> None:
    run = stack.run([CHUNKING], tmp_path, extra=("-p", "meta.auto_chunking"))
    expected = {
        "test_chunking::test_chunks_have_the_configured_size",
        "test_chunking::test_every_chunk_fits_the_embedding_model",
    }
    assert expected <= run.failed(), (
        f"failed {sorted(run.failed())}, expected at least {sorted(expected)}:\n{run.tail()}"
    )
    assert "chunks larger than" in run.message("test_chunking::test_chunks_have_the_configured_size")
    assert run.outcomes["test_chunking::test_published_chunking_is_valid"][0] == "passed"
