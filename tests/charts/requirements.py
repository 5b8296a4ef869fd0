"""Missing tools skip a test with a reason, or fail it when the run promised every tool.

CI bootstraps everything and sets RAG_REQUIRE_TOOLS=1, so there a missing tool is a failure
instead of a silently skipped acceptance check.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from harness import tools

REQUIRE_ENV = "RAG_REQUIRE_TOOLS"


def tools_required() -> bool:
    return os.environ.get(REQUIRE_ENV, "") not in ("", "0", "false", "no")


def missing(reason: str) -> None:
    """Skip (or fail under RAG_REQUIRE_TOOLS=1) with a reason naming what is missing."""
    if tools_required():
        pytest.fail(f"{reason} ({REQUIRE_ENV}=1 turns this skip into a failure)", pytrace=False)
    pytest.skip(reason)


def envoy() -> Path:
    """The real Envoy binary: ENVOY_BIN, then .cache/bin, .cache/venv, PATH, then the running venv."""
    candidates = [os.environ.get("ENVOY_BIN", ""), str(tools.find("envoy") or "")]
    candidates.append(str(Path(sys.executable).parent / "envoy"))
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    missing("envoy not found (ENVOY_BIN, .cache/bin, .cache/venv/bin, PATH); run `make bootstrap`")
    raise AssertionError("unreachable")
