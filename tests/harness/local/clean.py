"""`make clean`: stop every local stack and remove everything the runs created, in and outside the repository."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

from harness import paths
from harness.local import postgres, stack
from harness.local.state import RunFolder


def _legacy_staging(run: RunFolder) -> list[Path]:
    """Staging folders of older harness versions: <temp>/rag-maas-pgvector/runs/<sha1 of the work dir>."""
    work = run.root / "work"
    names = list(work.iterdir()) if work.is_dir() else []
    ids = (hashlib.sha1(str(p.resolve()).encode()).hexdigest()[:10] for p in names)
    return [postgres.STAGING_ROOT / "runs" / i for i in ids if (postgres.STAGING_ROOT / "runs" / i).exists()]


def clean(runs_dir: Path = paths.RUNS_DIR) -> list[str]:
    """Stop the stacks of every run folder, delete their temp data and the run folders; returns their names."""
    names: list[str] = []
    for root in sorted(p for p in runs_dir.glob("*") if (p / "state.json").is_file()):
        run = RunFolder(root.name, root)
        if run.alive_pids():
            stack.down(run)
        postgres.remove_staging(root)
        for legacy in _legacy_staging(run):
            shutil.rmtree(legacy, ignore_errors=True)
        names.append(root.name)
    shutil.rmtree(runs_dir, ignore_errors=True)
    return names
