"""Chat completions, plain and streamed, through llama-stack and directly through the gateway."""

from __future__ import annotations

import pytest

from .support import Gateway, assert_usage_arithmetic

pytestmark = [pytest.mark.e2e, pytest.mark.chat]

QUESTION = "Name three colours of a rainbow."


def test_llama_stack_chat(openai_llama, chat_model: str) -> None:
    completion = openai_llama.chat.completions.create(
        model=chat_model, messages=[{"role": "user", "content": QUESTION}], max_tokens=64
    )
    assert completion.choices, f"no choices from {chat_model}"
    assert (completion.choices[0].message.content or "").strip(), f"empty content from {chat_model}"
    assert completion.usage is not None, f"no usage from {chat_model}"
    assert_usage_arithmetic(completion.usage)


def test_llama_stack_chat_stream(openai_llama, chat_model: str) -> None:
    stream = openai_llama.chat.completions.create(
        model=chat_model,
        messages=[{"role": "user", "content": QUESTION}],
        max_tokens=64,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert len(chunks) >= 2, f"a stream of {len(chunks)} chunk(s)"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.strip(), "streamed content is empty"
    with_usage = [i for i, c in enumerate(chunks) if c.usage is not None]
    assert with_usage == [len(chunks) - 1], (
        f"usage expected in the final chunk only; found in chunks {with_usage} of {len(chunks)}"
    )
    assert_usage_arithmetic(chunks[-1].usage)


def test_gateway_chat(gateway: Gateway, key_pool) -> None:
    reply = gateway.chat(key_pool.shared("enterprise"), QUESTION, max_tokens=64)
    assert reply.status == 200, reply.describe()
    assert reply.content.strip(), f"empty content: {reply.describe()}"
    assert_usage_arithmetic(reply.usage)
    assert reply.rate.consumed_tokens == reply.usage["total_tokens"], (
        f"x-ratelimit-consumed-tokens differs from usage: {reply.describe()}"
    )
    assert reply.rate.limit_tokens and reply.rate.remaining_tokens is not None, (
        f"x-ratelimit-* headers missing: {reply.describe()}"
    )


def test_gateway_chat_stream(gateway: Gateway, key_pool) -> None:
    reply = gateway.stream(key_pool.shared("enterprise"), QUESTION, max_tokens=64)
    assert reply.status == 200, reply.describe()
    assert reply.content.strip(), "streamed content is empty"
    usage_at = [i for i, c in enumerate(reply.chunks) if c.get("usage")]
    assert usage_at == [len(reply.chunks) - 1], (
        f"usage expected in the final chunk only; found in chunks {usage_at} of {len(reply.chunks)}"
    )
    assert_usage_arithmetic(reply.usage)
    assert reply.rate.limit_tokens and reply.rate.remaining_tokens is not None, (
        f"x-ratelimit-* headers missing on a stream: {reply.describe()}"
    )
