"""Init step: drop models from llama-stack's persistent registry that the run config no longer declares.

llama-stack keeps registered models and user data (vector stores, tool groups) in one
registry (`storage.stores.metadata`). It adds the models of `registered_resources` at start
but never drops one whose entry or provider left the config, so a removed model stays
listed. This step removes exactly those model entries, through llama-stack's own registry
code, and leaves every other entry (vector stores included) untouched.

Usage: python prune-registry.py /etc/llama-stack/config.yaml   (same env as the server)
"""

import asyncio
import sys

import yaml
from llama_stack.core.datatypes import StackConfig
from llama_stack.core.stack import cast_distro_name_to_string, replace_env_vars
from llama_stack.core.storage.kvstore import kvstore_impl
from llama_stack.core.storage.kvstore.kvstore import register_kvstore_backends
from llama_stack.core.store.registry import DiskDistributionRegistry


def declared(config: StackConfig) -> tuple[set[str], set[str]]:
    """(inference provider ids, model identifiers `<provider_id>/<provider_model_id>`) of the config."""
    providers = {p.provider_id for p in config.providers.get("inference", [])}
    models = {
        f"{m.provider_id}/{m.provider_model_id or m.model_id}" for m in config.registered_resources.models
    }
    return providers, models


def stale(obj, providers: set[str], models: set[str]) -> bool:
    if obj.type != "model":
        return False
    if obj.provider_id not in providers:
        return True  # its provider left the config: nothing can serve it
    # Entries from the config (register API); models a provider lists itself are refreshed by llama-stack.
    return str(getattr(obj, "source", "")).endswith("via_register_api") and obj.identifier not in models


async def prune(path: str) -> int:
    with open(path) as handle:
        config = StackConfig(**cast_distro_name_to_string(replace_env_vars(yaml.safe_load(handle))))
    backends = {name: cfg for name, cfg in config.storage.backends.items() if cfg.type.value.startswith("kv_")}
    register_kvstore_backends(backends)
    registry = DiskDistributionRegistry(await kvstore_impl(config.storage.stores.metadata))
    providers, models = declared(config)
    removed = 0
    for obj in await registry.get_all():
        if stale(obj, providers, models):
            await registry.delete(obj.type, obj.identifier)
            print(f"prune-registry: removed model {obj.identifier} (no longer in the run config)", flush=True)
            removed += 1
    print(f"prune-registry: {removed} stale model(s) removed; other registry entries kept", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(prune(sys.argv[1])))
