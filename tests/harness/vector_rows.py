"""Read a vector store's rows straight from PostgreSQL, to check what llama-stack stored.

llama-stack's pgvector provider (0.7) keeps one table per vector store, `vs_<store id with
every character outside [A-Za-z0-9_] replaced by _>`, with one row per chunk: `id` (the chunk
id), `document` (the chunk as JSON, its metadata naming the file), `embedding vector(<dim>)`
and `content_text`. Source: llama_stack/providers/remote/vector_io/pgvector/pgvector.py.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass

CONNECT_TIMEOUT_S = 5  # a local or port-forwarded PostgreSQL answers at once


@dataclass(frozen=True)
class Dsn:
    host: str
    port: int
    user: str
    password: str
    database: str


@dataclass(frozen=True)
class Row:
    chunk_id: str
    file_id: str
    dimension: int
    text: str


@dataclass(frozen=True)
class Rows:
    table: str
    rows: list[Row]

    @property
    def dimensions(self) -> set[int]:
        return {r.dimension for r in self.rows}

    @property
    def chunk_ids(self) -> list[str]:
        return [r.chunk_id for r in self.rows]

    def chunks_by_file(self) -> dict[str, list[str]]:
        """File id -> texts of its chunks."""
        grouped: dict[str, list[str]] = defaultdict(list)
        for row in self.rows:
            grouped[row.file_id].append(row.text)
        return dict(grouped)


def table_name(store_id: str) -> str:
    return "vs_" + re.sub(r"[^a-zA-Z0-9_]", "_", store_id)


def read_rows(dsn: Dsn, store_id: str) -> Rows:
    """Every row of the store's table; raises LookupError when the table does not exist."""
    import psycopg2  # lazy: from the `local` extra, which a chart-only install lacks
    from psycopg2 import sql  # lazy: as above

    table = table_name(store_id)
    conn = psycopg2.connect(
        host=dsn.host,
        port=dsn.port,
        user=dsn.user,
        password=dsn.password,
        dbname=dsn.database,
        connect_timeout=CONNECT_TIMEOUT_S,
    )
    # Autocommit: a read left in an open transaction would block llama-stack's DROP TABLE.
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT to_regclass(%s)", (table,))
            if cur.fetchone()[0] is None:
                raise LookupError(f"PostgreSQL database {dsn.database!r} has no table {table}")
            cur.execute(
                sql.SQL(
                    "SELECT id, COALESCE(document->'metadata'->>'file_id', document->'chunk_metadata'->>'document_id',"
                    " ''), vector_dims(embedding), content_text FROM {}"
                ).format(sql.Identifier(table))
            )
            rows = [Row(str(i), str(f), int(d), str(t)) for i, f, d, t in cur.fetchall()]
    finally:
        conn.close()
    return Rows(table, rows)
