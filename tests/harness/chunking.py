"""The chunking a llama-stack server is configured with, read the way any client can read it.

llama-stack 0.7.3 replaces a missing or `"auto"` `chunking_strategy` with a hard-coded 800/400
tokens before any configured default is consulted (llama_stack/core/routers/vector_io.py,
`openai_attach_file_to_vector_store` and `openai_create_vector_store`). The chart therefore
publishes its `vectorStore.chunkSizeTokens`/`chunkOverlapTokens` as the `file_processors`
provider's config, which `GET /v1/providers` returns, and clients pass them back explicitly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from harness.errors import StackNotReady
from harness.http import json_request

# A local GET of the provider list; the server answers it from memory.
PROVIDERS_TIMEOUT_S = 10.0


class ChunkingNotPublished(StackNotReady):
    """The server's file processor carries no chunk size: its config was not rendered by the chart."""


@dataclass(frozen=True)
class Chunking:
    """Chunk size and overlap in llama-stack's tokens (tiktoken cl100k_base)."""

    size_tokens: int
    overlap_tokens: int

    def strategy(self) -> dict[str, Any]:
        """The `chunking_strategy` body field of `vector_stores.create` / `vector_stores.files.create`."""
        return {
            "type": "static",
            "static": {"max_chunk_size_tokens": self.size_tokens, "chunk_overlap_tokens": self.overlap_tokens},
        }


def published_chunking(llama_stack_url: str) -> Chunking:
    """Read the chunking from the first `file_processors` provider of `GET /v1/providers`.

    Raises ChunkingNotPublished when the server lists no such provider or it has no chunk size.
    """
    status, payload = json_request("GET", llama_stack_url.rstrip("/") + "/v1/providers", timeout=PROVIDERS_TIMEOUT_S)
    items = payload.get("data", []) if isinstance(payload, dict) else payload if isinstance(payload, list) else []
    for provider in items:
        config = provider.get("config") or {}
        if provider.get("api") == "file_processors" and "default_chunk_size_tokens" in config:
            return Chunking(
                int(config["default_chunk_size_tokens"]), int(config.get("default_chunk_overlap_tokens", 0))
            )
    raise ChunkingNotPublished(
        f"GET {llama_stack_url}/v1/providers (HTTP {status}) lists no file_processors provider with "
        "default_chunk_size_tokens; render the run config with the llama-stack chart"
    )
