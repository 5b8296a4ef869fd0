"""Tests of the chunking and embedding tests: break the mechanism each one proves, see it fail.

One extra local stack (run name `meta-rag-broken`) runs with the chart declaring the `passage: `
prefix while the embeddings stand-in is made to ignore the chart and prefix `query: `. Then:
  1. test_embeddings runs as users run it             -> both prefix tests fail
  2. test_chunking runs with a client that sends no chunking_strategy (llama-stack's own 800/400,
     the fault the chart's published chunking exists to avoid) -> the size and E5-fit tests fail
"""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness.endpoints import Endpoints
from harness.local import programs
from harness.paths import REPO_ROOT
from harness.targets import TargetOptions, get_target

pytestmark = pytest.mark.meta

RUN_NAME = "meta-rag-broken"
OVERLAY = 'embeddings:\n  prompt: "passage: "\n'
# A pytest plugin for the subprocess: the documented client path is skipped, "auto" is sent.
AUTO_CHUNKING_PLUGIN = """\
from harness import chunking

chunking.Chunking.strategy = lambda self: {"type": "auto"}
"""
EMBEDDINGS = "tests/e2e/test_embeddings.py"
CHUNKING = "tests/e2e/test_chunking.py"


@pytest.fixture(scope="module")
def broken_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Endpoints]:
    overlay = tmp_path_factory.mktemp("overlay") / "rag-broken.yaml"
    overlay.write_text(OVERLAY)
    target = get_target("local", TargetOptions(run_name=RUN_NAME, values=[overlay]))
    if _running(target):
        target.down()
    with pytest.MonkeyPatch.context() as patch:
        # The stand-in no longer follows the chart's --default-prompt.
        patch.setattr(programs, "embedding_mode", lambda spec: "query")
        endpoints = target.up()
    yield endpoints
    if os.environ.get("RAG_KEEP") != "1":
        target.down()


# One e2e module against the local stack: ingestion, embeddings and a 1,800-token document.
SUITE_TIMEOUT_S = 600


def _values_args(stack: Endpoints) -> list[str]:
    """`--values` for each overlay the stack started with: a run with other values is refused."""
    return [arg for fp in stack.values or [] for arg in ("--values", fp.rsplit(" sha256:", 1)[0])]


def _suite(
    path: str, tmp: Path, *, plugin_dir: Path | None = None, values: list[str] = ()
) -> tuple[str, dict[str, tuple[str, str]]]:
    """Run one e2e module against the broken stack in a fresh pytest, as a user runs it.

    Returns its output and "module::test" -> (passed|failed|error|skipped, message).
    """
    junit = tmp / "junit.xml"
    paths = [str(REPO_ROOT / "tests"), *([str(plugin_dir)] if plugin_dir else []), os.environ.get("PYTHONPATH")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, paths)), "RAG_DIAGNOSTICS_DIR": str(tmp / "diag")}
    command = [sys.executable, "-m", "pytest", path, "-p", "no:cacheprovider", "-q", "--target", "local"]
    command += ["--run-name", RUN_NAME, f"--junitxml={junit}", *values]
    command += ["-p", "meta_auto_chunking"] if plugin_dir else []
    done = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, env=env, timeout=SUITE_TIMEOUT_S)
    outcomes: dict[str, tuple[str, str]] = {}
    for case in ET.parse(junit).iter("testcase"):
        name = f"{case.get('classname', '').rsplit('.', 1)[-1]}::{case.get('name')}"
        bad = next((c for c in case if c.tag in ("failure", "error", "skipped")), None)
        outcome = "passed" if bad is None else {"failure": "failed"}.get(bad.tag, bad.tag)
        outcomes[name] = (outcome, "" if bad is None else f"{bad.get('message', '')}\n{bad.text or ''}")
    return done.stdout + done.stderr, outcomes


def _failed(outcomes: dict[str, tuple[str, str]]) -> set[str]:
    return {name for name, (outcome, _) in outcomes.items() if outcome in ("failed", "error")}


def _running(target: object) -> bool:
    try:
        target.status()  # type: ignore[attr-defined]
    except Exception:  # status() raises when nothing runs; any reason means "not usable"
        return False
    return True


def test_prefix_tests_fail_when_the_stand_in_ignores_the_chart(broken_stack: Endpoints, tmp_path: Path) -> None:
    output, outcomes = _suite(EMBEDDINGS, tmp_path, values=_values_args(broken_stack))
    expected = {
        "test_embeddings::test_query_vector_uses_the_declared_prefix",
        "test_embeddings::test_documents_are_embedded_like_queries",
    }
    assert _failed(outcomes) == expected, (
        f"failed {sorted(_failed(outcomes))}, want {sorted(expected)}:\n{output[-3000:]}"
    )
    for name in expected:
        assert "declared 'passage: '" in outcomes[name][1], outcomes[name][1]


def test_chunking_tests_fail_without_the_published_chunking(broken_stack: Endpoints, tmp_path: Path) -> None:
    plugin_dir = tmp_path / "plugin"
    plugin_dir.mkdir()
    (plugin_dir / "meta_auto_chunking.py").write_text(AUTO_CHUNKING_PLUGIN)
    output, outcomes = _suite(CHUNKING, tmp_path, plugin_dir=plugin_dir, values=_values_args(broken_stack))
    expected = {
        "test_chunking::test_chunks_have_the_configured_size",
        "test_chunking::test_every_chunk_fits_the_embedding_model",
    }
    failed = _failed(outcomes)
    assert expected <= failed, f"failed {sorted(failed)}, expected at least {sorted(expected)}:\n{output[-3000:]}"
    assert "chunks larger than" in outcomes["test_chunking::test_chunks_have_the_configured_size"][1]
    assert outcomes["test_chunking::test_published_chunking_is_valid"][0] == "passed"
