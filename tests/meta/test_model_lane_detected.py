"""The real-model lane can fail: it fails when retrieval is broken (a constant embedder in the
embeddings server's place) and when the model only echoes (the inference simulator in echo mode,
a real program that echoes, in the model's place).

Part of the lane (`make test-model`); skipped otherwise, like the lane.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from harness import real_model
from harness.local import stack
from harness.paths import REPO_ROOT
from model import test_real_model_rag as lane_tests
from model.lane import started

from .runs import Run, run_suite
from .test_product_breakages_detected import EMBEDDER_READY_S, wait_listening

pytestmark = [pytest.mark.meta, pytest.mark.model]

MODULE = "tests/model/test_real_model_rag.py"
GROUNDED_TEST = "test_real_model_rag::test_chat_with_retrieved_context_states_the_fact[{}]"
GROUNDED = frozenset(GROUNDED_TEST.format(fact.marker) for fact in lane_tests.GROUNDED)
ECHO_OVERLAY = f"""
vllm-gpu:
  enabled: true
  simulator:
    model: {real_model.MODEL_ID}
    mode: echo
"""


@pytest.fixture(autouse=True)
def requested() -> None:
    if os.environ.get("RAG_MODEL_LANE") != "1":
        pytest.skip("real-model lane not requested: run `make test-model`")


def run_lane(run_name: str, tmp: Path) -> Run:
    """The lane's grounded-answer tests against the running lane stack `run_name`."""
    env: dict[str, str | None] = {"RAG_MODEL_LANE": "1", "RAG_MODEL_LANE_RUN": run_name}
    return run_suite([MODULE], tmp, run_name=run_name, extra=("-k", "retrieved_context"), env=env)


def assert_failed(run: Run, what: str) -> None:
    missed = sorted(GROUNDED - run.failed_by_assertion())
    assert not missed, f"with {what}, these lane tests did not fail: {missed}\n{run.tail()}"


def test_lane_fails_when_retrieval_is_broken(tmp_path: Path) -> None:
    """Every document as near to every question as any other: the search returns the same three
    for all four questions, so at least one answer lacks its fact."""
    with started(run_name="model-lane-constant-embedder") as lane:
        run = lane.target.run
        port = int(run.get("ports")["embeddings"])
        (container,) = stack.stop_component(run, "embeddings")
        command = [sys.executable, "-m", "meta.constant_embedder", "--port", str(port), "--model", "broken"]
        env = {"PYTHONPATH": str(REPO_ROOT / "tests"), "PATH": "/usr/bin:/bin"}
        embedder = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        run.record_pid(container, embedder.pid)  # the stack counts as whole: the lane reuses it
        try:
            wait_listening(port, EMBEDDER_READY_S)
            result = run_lane(run.name, tmp_path)
        finally:
            embedder.terminate()
            embedder.wait(timeout=10)
    failed = GROUNDED & result.failed_by_assertion()
    assert failed, f"with a constant embedder, no grounded-answer test failed\n{result.tail()}"


def test_lane_fails_when_the_model_only_echoes(tmp_path: Path) -> None:
    overlay = tmp_path / "echo.yaml"
    overlay.write_text(ECHO_OVERLAY)
    with started(run_name="model-lane-echo", extra=(overlay,), model=False) as lane:
        result = run_lane(lane.target.run.name, tmp_path)
    assert_failed(result, "an echoing server in the model's place")
