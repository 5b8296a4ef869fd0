"""Stale subchart archives: `helm dependency build` output that shadows the linked subcharts.

The rag chart's subcharts are symlinks in `charts/rag/charts/` to the chart directories next
to it, so Helm needs no `helm dependency build`. When someone runs it anyway, Helm leaves
`charts/rag/Chart.lock` and `charts/rag/charts/<subchart>-<version>.tgz`; from then on
`helm template` takes the values from the directory but the templated files (the gateway's
Lua) from the archive, and a chart edit silently stops reaching the render. Every command
that renders the charts calls `refuse_stale_archives` first.
"""

from __future__ import annotations

from pathlib import Path

from harness.errors import HarnessError

CLEAN_COMMAND = "make clean-charts"


class StaleArchives(HarnessError):
    pass


def _charts_with_links(charts_dir: Path) -> list[Path]:
    """The charts under `charts_dir` (or `charts_dir` itself) that link subchart directories."""
    candidates = [charts_dir, *sorted(p for p in charts_dir.iterdir() if p.is_dir())] if charts_dir.is_dir() else []
    return [c for c in candidates if (c / "Chart.yaml").is_file() and _subchart_dirs(c)]


def _subchart_dirs(chart: Path) -> set[str]:
    sub = chart / "charts"
    return {p.name for p in sub.iterdir() if p.is_dir()} if sub.is_dir() else set()


def stale_archives(charts_dir: Path) -> list[Path]:
    """`Chart.lock` and `charts/*.tgz` of every chart in `charts_dir` (a folder of charts, or one
    chart) whose `charts/` folder links subchart directories."""
    found: list[Path] = []
    for chart in _charts_with_links(charts_dir):
        lock = chart / "Chart.lock"
        if lock.exists():
            found.append(lock)
        found += sorted((chart / "charts").glob("*.tgz"))
    return found


def refuse_stale_archives(charts_dir: Path) -> None:
    """Raise StaleArchives (one line: the files, the command that removes them) when any is present."""
    found = stale_archives(charts_dir)
    if found:
        raise StaleArchives(
            f"stale subchart archives would shadow the linked subchart directories: {', '.join(map(str, found))}; "
            f"remove them with `{CLEAN_COMMAND}` (the subcharts are linked: no `helm dependency build` is needed)"
        )


def remove_stale_archives(charts_dir: Path) -> list[Path]:
    """Delete what `stale_archives` finds; returns the removed paths."""
    found = stale_archives(charts_dir)
    for path in found:
        path.unlink()
    return found
