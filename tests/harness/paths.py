"""Where things live: the repository, its git-ignored cache, and run folders."""

from __future__ import annotations

import os
from pathlib import Path

from harness.errors import HarnessError

REPO_ROOT = Path(__file__).resolve().parents[2]
# RAG_CHARTS_DIR: a copy of charts/ (the meta tests break a chart there, never in the tree).
CHARTS_DIR = Path(os.environ.get("RAG_CHARTS_DIR", REPO_ROOT / "charts"))
VALUES_DIR = REPO_ROOT / "values"
CACHE_DIR = Path(os.environ.get("RAG_CACHE_DIR", REPO_ROOT / ".cache"))
BIN_DIR = CACHE_DIR / "bin"
VENV_DIR = CACHE_DIR / "venv"
OGX_VENV_DIR = CACHE_DIR / "ogx-venv"  # OGX 1.5, llama-stack's successor: its own venv (other pins)
RUNS_DIR = Path(os.environ.get("RAG_RUNS_DIR", CACHE_DIR / "runs"))
TIKTOKEN_DIR = CACHE_DIR / "tiktoken"  # tiktoken's cl100k_base, offline (TIKTOKEN_CACHE_DIR)
KUBE_CACHE_DIR = CACHE_DIR / "kube"  # the kube lane: sources, binaries, images, run folder
KUBE_BIN_DIR = KUBE_CACHE_DIR / "bin"  # the kube lane's built binaries


class UnknownOverlay(HarnessError, FileNotFoundError):
    pass


def chart(name: str) -> Path:
    return CHARTS_DIR / name


def values_file(name: str) -> Path:
    """`values/<name>.yaml`; raises with the list of overlays when it does not exist."""
    path = VALUES_DIR / f"{name}.yaml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in VALUES_DIR.glob("*.yaml")))
        raise UnknownOverlay(f"no values overlay {path}: use one of {known}")
    return path
