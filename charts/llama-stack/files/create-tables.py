"""Init step: create every table of llama-stack's SQL stores in the data volume before the server starts.

llama-stack 0.7.3 (core/storage/sqlstore/sqlalchemy_sqlstore.py) shares one store per SQL
backend. Each API only declares its tables when it initialises; the backend creates all
declared tables on its first read or write (`_ensure_engine`), and it counts as initialised
*before* its CREATE TABLE statements have run. On a database without tables (a new data
volume), a request that arrives while the first one is still creating them (two chat
completions whose background inference-store writes overlap) fails with
`no such table: inference_store`, and if that first creation fails the server never creates
the tables: every upload fails with `no such table: openai_files` until a restart.

This step declares the tables of every SQL store in the run config through llama-stack's own
store classes (the same schemas the server declares), creates them in one process with no
other request, and checks they exist; `CREATE TABLE` is skipped for tables already there, so
rows in a kept volume are untouched. The server then finds every table on disk.

Usage: python create-tables.py /etc/llama-stack/config.yaml   (same env as the server)
Exits 1, naming the tables, when a declared table is still missing afterwards.
"""

import asyncio
import sys

import yaml
from llama_stack.core.conversations.conversations import ConversationServiceConfig, ConversationServiceImpl
from llama_stack.core.datatypes import StackConfig
from llama_stack.core.stack import cast_distro_name_to_string, replace_env_vars
from llama_stack.core.storage.datatypes import SqlStoreReference
from llama_stack.core.storage.sqlstore.sqlstore import (
    register_sqlstore_backends,
    shutdown_sqlstore_backends,
    sqlstore_impl,
)
from llama_stack.providers.inline.files.localfs.config import LocalfsFilesImplConfig
from llama_stack.providers.inline.files.localfs.files import LocalfsFilesImpl
from llama_stack.providers.inline.responses.builtin.config import BuiltinResponsesImplConfig
from llama_stack.providers.utils.inference.inference_store import InferenceStore
from llama_stack.providers.utils.responses.responses_store import ResponsesStore

NO_POLICY: list = []  # access rules filter rows, never the schema


def providers(config: StackConfig, api: str, provider_type: str) -> list[dict]:
    return [p.config for p in config.providers.get(api, []) if p.provider_type == provider_type]


async def declare(config: StackConfig) -> None:
    """Let every SQL store of the config declare its tables, as the server does at start."""
    if config.storage.stores.inference:
        await InferenceStore(config.storage.stores.inference, NO_POLICY).initialize()
    if config.storage.stores.conversations:
        await ConversationServiceImpl(ConversationServiceConfig(config=config), {}).initialize()
    for provider in providers(config, "responses", "inline::builtin"):
        await ResponsesStore(BuiltinResponsesImplConfig(**provider).persistence.responses, NO_POLICY).initialize()
    for provider in providers(config, "files", "inline::localfs"):
        await LocalfsFilesImpl(LocalfsFilesImplConfig(**provider), NO_POLICY).initialize()


def sql_backends(config: StackConfig) -> dict:
    return {name: cfg for name, cfg in config.storage.backends.items() if cfg.type.value.startswith("sql_")}


async def create(config: StackConfig) -> dict[str, str]:
    """Create the declared tables of each SQL backend; returns table -> error for any that cannot be read."""
    missing: dict[str, str] = {}
    for backend in sql_backends(config):
        store = sqlstore_impl(SqlStoreReference(backend=backend, table_name="-"))  # one store per backend
        declared = sorted(store.metadata.tables)
        for table in declared:  # the first read creates every declared table; each read proves one exists
            try:
                await store.fetch_one(table)
            except Exception as error:  # noqa: BLE001 - reported below with the table's name
                missing[table] = f"{type(error).__name__}: {error}"
        print(f"create-tables: {backend}: {', '.join(declared) or 'no tables declared'}", flush=True)
    return missing


async def main(path: str) -> int:
    with open(path) as handle:
        config = StackConfig(**cast_distro_name_to_string(replace_env_vars(yaml.safe_load(handle))))
    register_sqlstore_backends(sql_backends(config))
    try:
        await declare(config)
        missing = await create(config)
    finally:
        await shutdown_sqlstore_backends()  # closes the database cleanly (WAL checkpointed)
    if missing:
        print(f"create-tables: tables still missing after creation: {missing}", file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1])))
