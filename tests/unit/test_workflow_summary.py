"""The per-area e2e summary tells the truth: `ok` when a test of the area passed, `FAIL` when one
failed, `skipped (why)` when none ran here, and `not ok` only next to a failure (a non-zero exit)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from harness.pytest_plugin import _workflow_summary

pytestmark = pytest.mark.unit


@dataclass
class Report:
    nodeid: str
    when: str = "call"
    longrepr: object = None


def skipped(nodeid: str, reason: str, when: str = "setup") -> Report:
    return Report(nodeid, when=when, longrepr=(nodeid.split("::")[0], 1, f"Skipped: {reason}"))


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


def verdicts(lines: list[str]) -> dict[str, str]:
    return {line.split()[1]: line.split()[0] for line in lines if line.split()[0] in ("ok", "FAIL", "skipped")}


def test_a_failed_area_is_fail_and_the_run_not_ok() -> None:
    lines = summary(
        {
            "passed": [Report("tests/e2e/test_chat.py::a")],
            "skipped": [skipped("tests/e2e/test_rag.py::b", "no model reachable"), Report("tests/e2e/test_chat.py::c")],
            "failed": [Report("tests/e2e/test_auth.py::d")],
        }
    )
    assert verdicts(lines) == {"auth": "FAIL", "chat": "ok", "rag": "skipped"}
    assert [line for line in lines if line.startswith("not ok")] == ["not ok: tests failed in auth"], lines


def test_an_area_with_no_test_run_is_skipped_with_its_reasons_and_not_not_ok() -> None:
    lines = summary(
        {
            "passed": [Report("tests/e2e/test_chat.py::a")],
            "skipped": [
                skipped("tests/e2e/test_maas.py::b", "no MaaS endpoint: set MAAS_ENDPOINT"),
                skipped("tests/e2e/test_maas.py::c", "no MaaS endpoint: set MAAS_ENDPOINT"),
                skipped("tests/e2e/test_maas.py::d", "MAAS_API_KEY is not set"),
            ],
        }
    )
    assert verdicts(lines) == {"chat": "ok", "maas": "skipped"}
    maas = next(line for line in lines if line.split()[1:2] == ["maas"])
    assert maas.endswith("(no MaaS endpoint: set MAAS_ENDPOINT; MAAS_API_KEY is not set)"), maas
    assert not any("not ok" in line for line in lines), lines


def test_an_errored_setup_is_a_failure() -> None:
    lines = summary({"error": [Report("tests/e2e/test_rag.py::a", when="setup")]})
    assert verdicts(lines) == {"rag": "FAIL"}
    assert "not ok: tests failed in rag" in lines
