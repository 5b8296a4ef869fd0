"""The per-area e2e summary: an area where nothing passed is not ok."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from harness.pytest_plugin import _workflow_summary

pytestmark = pytest.mark.unit


@dataclass
class Report:
    nodeid: str
    when: str = "call"


@dataclass
class Terminal:
    stats: dict[str, list[Report]]
    lines: list[str] = field(default_factory=list)

    def section(self, title: str) -> None:
        self.lines.append(f"== {title}")

    def write_line(self, line: str) -> None:
        self.lines.append(line)


def summary(stats: dict[str, list[Report]]) -> list[str]:
    terminal = Terminal(stats)
    _workflow_summary(terminal)
    return terminal.lines


def test_all_skipped_area_is_not_ok() -> None:
    lines = summary(
        {
            "passed": [Report("tests/e2e/test_chat.py::a")],
            "skipped": [Report("tests/e2e/test_rag.py::b", when="setup"), Report("tests/e2e/test_chat.py::c")],
            "failed": [Report("tests/e2e/test_auth.py::d")],
        }
    )
    verdicts = {line.split()[1]: line.split()[0] for line in lines if line.split()[0] in ("ok", "FAIL", "NONE")}
    assert verdicts == {"auth": "FAIL", "chat": "ok", "rag": "NONE"}
    assert any(line.startswith("not ok: no test passed in auth, rag") for line in lines), lines
