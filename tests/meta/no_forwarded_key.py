"""pytest plugin (`-p meta.no_forwarded_key`): clients that forward no key to llama-stack (no
X-LlamaStack-Provider-Data), so its model calls spend whatever key llama-stack holds itself.

It patches on import, before any conftest or test module takes the function."""

from __future__ import annotations

from harness import llama_stack_auth

_caller_headers = llama_stack_auth.caller_headers


def _without_provider_data(key: str) -> dict[str, str]:
    headers = _caller_headers(key)
    headers.pop(llama_stack_auth.PROVIDER_DATA_HEADER, None)
    return headers


llama_stack_auth.caller_headers = _without_provider_data
