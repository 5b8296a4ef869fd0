"""Template helpers that every chart carries as an identical copy, and a check that keeps them equal.

Each chart installs on its own, so a helper they share is copied into each `_helpers.tpl` under the
chart's own prefix (`llama-stack.securityContext`, `rag.securityContext`, ...). A library chart would
hold one definition, but would make every chart depend on it (`helm dependency build`, an archive or
a fourth `file://` dependency in each chart). The copies are instead kept equal by this check: after
replacing the chart prefix, each copy, its comment included, must match the umbrella's byte for byte.
"""

from __future__ import annotations

import re
from pathlib import Path

SHARED = ("securityContext",)  # helpers every chart defines identically
REFERENCE = "rag"  # the copy the others must match
_ACTION = re.compile(r"\{\{-?\s*(if|range|with|define|block|end)\b")


def helper_text(helpers: str, chart: str, helper: str) -> str:
    """The `{{/* comment */}}` right above `define "<chart>.<helper>"` plus the definition through its `end`."""
    start = helpers.find(f'{{{{- define "{chart}.{helper}" -}}}}')
    if start < 0:
        raise LookupError(f"no define {chart}.{helper}")
    comment = helpers.rfind("{{/*", 0, start)
    if comment >= 0 and helpers[comment:start].rstrip().endswith("*/}}") and "{{-" not in helpers[comment:start]:
        start = comment
    depth = 0
    for match in _ACTION.finditer(helpers, start):
        depth += -1 if match.group(1) == "end" else 1
        if depth == 0:
            return helpers[start : helpers.index("}}", match.end()) + 2]
    raise LookupError(f"define {chart}.{helper} has no end")


def _copy(charts_dir: Path, chart: str, helper: str) -> str:
    """A chart's copy of `helper` with its own prefix replaced, for comparison."""
    path = charts_dir / chart / "templates" / "_helpers.tpl"
    return helper_text(path.read_text(), chart, helper).replace(f'"{chart}.', '"CHART.')


def drift(charts_dir: Path, charts: tuple[str, ...]) -> list[str]:
    """One line per chart whose copy of a shared helper differs from the reference chart's (or is missing)."""
    found: list[str] = []
    for helper in SHARED:
        reference = _copy(charts_dir, REFERENCE, helper)
        for chart in charts:
            try:
                copy = _copy(charts_dir, chart, helper)
            except LookupError as error:
                found.append(f"charts/{chart}: {error}")
                continue
            if copy != reference:
                where = f"charts/{chart}/templates/_helpers.tpl"
                found.append(f"{where}: {chart}.{helper} differs from {REFERENCE}.{helper}: make the copies equal")
    return found
