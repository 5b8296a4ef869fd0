"""How the harness calls an authenticated llama-stack: the one place that builds its credentials.

llama-stack 0.7.3 with `server.auth` (the chart's default) accepts only `Authorization: Bearer <key>`
(llama_stack/core/server/auth.py, AuthenticationMiddleware) and checks the key with the gateway's
key-validation route (the `custom` provider). Model calls it makes for the caller carry the key
found in the `X-LlamaStack-Provider-Data` JSON header (llama_stack/core/request_headers.py):
`vllm_api_token` for every remote::vllm provider (providers/remote/inference/vllm,
OpenAIMixin._get_api_key_from_config_or_provider_data); provider data is per provider type, not
per model, so `openai_api_key` is left out and remote::openai models (an external MaaS) keep
their configured key.
Sending the caller's own key there makes every chat, Responses and RAG generation call spend the
caller's tier budget at the gateway; the gateway's validation route refuses provider data that
carries a different key.

Code that only has a URL (registration, chunking, tests calling `harness.http`) finds
the credentials of a llama-stack base URL here: `Endpoints` remembers its own on creation.
"""

from __future__ import annotations

import json

# The provider-data field that carries the caller's key: models behind this stack's gateway are
# remote::vllm. remote::openai models (an external MaaS, whose keys callers do not hold) keep
# the key configured in llama-stack: `openai_api_key` is never forwarded.
PROVIDER_KEY_FIELDS = ("vllm_api_token",)
PROVIDER_DATA_HEADER = "X-LlamaStack-Provider-Data"

_keys_by_base: dict[str, str] = {}


def caller_headers(key: str) -> dict[str, str]:
    """Headers of one llama-stack caller: authenticates with `key` and spends `key`'s budget."""
    if not key:
        return {}
    provider_data = json.dumps({field: key for field in PROVIDER_KEY_FIELDS})
    return {"Authorization": f"Bearer {key}", PROVIDER_DATA_HEADER: provider_data}


def remember(base_url: str, key: str) -> None:
    """Use `key` for every later keyless harness call under `base_url`."""
    if base_url and key:
        _keys_by_base[base_url.rstrip("/")] = key


def headers_for(url: str) -> dict[str, str]:
    """The remembered caller headers for `url` (longest matching base URL), or {}."""
    matches = [base for base in _keys_by_base if url == base or url.startswith(base + "/")]
    return caller_headers(_keys_by_base[max(matches, key=len)]) if matches else {}
