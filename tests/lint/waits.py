"""The one-wait-helper rule: no module of the harness but `harness/waiting.py` imports tenacity or
counts down its own `time.monotonic() + X` deadline; every wait goes through `harness.waiting`."""

from __future__ import annotations

import re
from pathlib import Path

HELPER = Path("waiting.py")  # relative to the harness package
# `import tenacity`, `from tenacity import ...`, `from tenacity.stop import ...`
TENACITY = re.compile(r"^\s*(import\s+tenacity\b|from\s+tenacity(\.\w+)*\s+import\b)")
# a hand-written deadline: `deadline = time.monotonic() + timeout` (also `monotonic() +` after `from time import`)
DEADLINE = re.compile(r"\bmonotonic\(\)\s*\+")


def findings(harness: Path) -> list[str]:
    """`path:line: text` of every own wait in the harness package at `harness`."""
    return [
        f"{path.relative_to(harness)}:{number}: {line.strip()}"
        for path in sorted(harness.rglob("*.py"))
        if path.relative_to(harness) != HELPER
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if TENACITY.search(line) or DEADLINE.search(line)
    ]
