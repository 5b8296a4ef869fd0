"""The real-model lane (tests/model/lane.py), its own pytest run: `make test-model` (which
`make test` runs) sets RAG_MODEL_LANE=1 after installing the model; without it every test here
skips, saying so. RAG_MODEL_LANE_RUN names the
lane stack's run folder (default `model-lane`): the meta tests run the lane against broken ones."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from harness import real_model

from .lane import RUN_NAME, Lane, running, started

LANE_ENV = "RAG_MODEL_LANE"
RUN_ENV = "RAG_MODEL_LANE_RUN"


@pytest.fixture(scope="session")
def lane() -> Iterator[Lane]:
    if os.environ.get(LANE_ENV) != "1":
        pytest.skip("real-model lane not requested: run `make test-model`")
    run_name = os.environ.get(RUN_ENV, RUN_NAME)
    found = running(run_name)
    if found is not None:
        print(f"[model] reusing the running lane stack {found.target.run.name!r}")
        yield found
        return
    real_model.check_installed()
    with started(run_name=run_name) as lane:
        yield lane
