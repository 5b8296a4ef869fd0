"""Meta-test plugin (`-p meta.break_models_check`, case in META_MODELS_BREAK): the `models check|sync`
CLI that tests/e2e/test_models_check.py runs as a subprocess runs with one mechanism broken:

- `ignores-llama-stack`: the comparison takes llama-stack's listing to be whatever the catalog expects;
- `ignores-gateway`: the comparison takes each tier's gateway listing to be whatever the catalog expects;
- `sync-registers-nothing`: sync's registration returns without applying anything.

The plugin points the e2e module's CLI command (`HARNESS`) at this file, which breaks the mechanism
in the CLI's own process and then runs `python -m harness`.
"""

from __future__ import annotations

import os
import runpy
import sys
from dataclasses import replace
from typing import Any

import pytest

CASE_ENV = "META_MODELS_BREAK"
CASES = ("ignores-llama-stack", "ignores-gateway", "sync-registers-nothing")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    case = os.environ.get(CASE_ENV, "")
    assert case in CASES, f"{CASE_ENV}={case!r}: choose one of {CASES}"
    for item in items:
        module = getattr(item, "module", None)
        if module is not None and hasattr(module, "HARNESS"):
            module.HARNESS = [sys.executable, "-m", "meta.break_models_check"]


def _break(case: str) -> None:
    from harness import model_drift, registration
    from harness.registration import Report

    compare = model_drift.compare

    def expected_listings(entries: Any, observed: Any, **kw: Any) -> Any:
        by_model = kw.get("by_model", False)
        if case == "ignores-llama-stack":
            observed = replace(observed, llama_stack=[e.llama_stack_id for e in entries])
        if case == "ignores-gateway":
            listings = {
                tier: [
                    (e.public_id if by_model else e.served)
                    for e in entries
                    if e.via_gateway and (not by_model or e.allows(tier))
                ]
                for tier in observed.gateway
            }
            observed = replace(observed, gateway=listings)
        return compare(entries, observed, **kw)

    def registers_nothing(target: Any, llama_stack_url: str, desired: Any, **kw: Any) -> Report:
        return Report(method="none")

    model_drift.compare = expected_listings
    if case == "sync-registers-nothing":
        registration.register = registers_nothing


if __name__ == "__main__":
    _break(os.environ.get(CASE_ENV, ""))
    sys.argv[0] = "harness"
    runpy.run_module("harness", run_name="__main__", alter_sys=True)
