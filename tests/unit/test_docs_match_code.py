"""README.md and docs/architecture.md say what the code does, and cite nothing outside the repository."""

from __future__ import annotations

import argparse
import re
import subprocess
from pathlib import Path

from harness.cli import build_parser
from harness.paths import REPO_ROOT

ARCHITECTURE = REPO_ROOT / "docs" / "architecture.md"
README = REPO_ROOT / "README.md"


def cli_commands() -> set[str]:
    parser = build_parser()
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return set(subparsers.choices)


def referenced_paths(doc: Path) -> list[str]:
    """Relative paths in markdown links and in backticks that look like files (`x/y.md`, `../z`)."""
    text = doc.read_text()
    links = re.findall(r"\]\(([^)#\s]+)\)", text)
    ticked = re.findall(r"`(\.\./[^`\s]+|[\w./-]+\.(?:md|py|yaml|json|sh))`", text)
    return [p for p in links + ticked if "://" not in p and "<" not in p and "*" not in p]


def test_architecture_doc_cites_only_files_in_the_repository() -> None:
    # Tracked files only: a run folder under .cache must not make a dangling citation pass.
    listing = subprocess.run(["git", "ls-files"], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    tracked = listing.stdout.split()
    outside, missing = [], []
    for ref in referenced_paths(ARCHITECTURE):
        resolved = (ARCHITECTURE.parent / ref).resolve() if ref.startswith(".") else (REPO_ROOT / ref).resolve()
        if not resolved.is_relative_to(REPO_ROOT):
            outside.append(ref)
        elif not resolved.exists() and not any(Path(f).name == Path(ref).name for f in tracked):
            missing.append(ref)
    assert outside == [] and missing == [], f"outside the repo: {outside}; not found: {missing}"
    assert "DESIGN.md" not in ARCHITECTURE.read_text() or (REPO_ROOT / "DESIGN.md").exists()


def test_architecture_rules_are_numbered_in_order() -> None:
    text = ARCHITECTURE.read_text()
    section = text.split("## Rules", 1)[1].split("\n## ", 1)[0]
    numbers = [int(n) for n in re.findall(r"^(\d+)\. ", section, flags=re.MULTILINE)]
    assert numbers == list(range(1, len(numbers) + 1)), numbers


def test_architecture_lists_every_cli_command() -> None:
    listed = re.search(r"python -m harness \{([a-z,-]+)\}", ARCHITECTURE.read_text())
    assert listed is not None, "docs/architecture.md has no `python -m harness {...}` line"
    assert set(listed.group(1).split(",")) == cli_commands()


def test_readme_claims_only_benchmarks_that_exist() -> None:
    scripts = {p.stem for p in (REPO_ROOT / "benchmarks").glob("*.py")}
    claims = {"start-up": "local_startup", "wall time": "e2e_walltime", "overhead": "gateway",
              "throughput": "gateway", "accuracy": "gateway"}  # fmt: skip
    row = next(line for line in README.read_text().splitlines() if line.startswith("| `benchmarks/`"))
    claimed = {script for phrase, script in claims.items() if phrase in row}
    assert claimed and claimed <= scripts, f"README claims {claimed - scripts} without a benchmark"
    bench = next(line for line in (REPO_ROOT / "Makefile").read_text().splitlines() if line.startswith("bench:"))
    assert "overhead" not in bench or "gateway" in scripts


def test_readme_tells_a_newcomer_what_the_commands_need_and_cost() -> None:
    text = " ".join(README.read_text().split())
    assert "Kind needs a running Docker or Podman daemon" in text
    assert re.search(r"`\.cache/` [^.]*about \d+(\.\d+)? GB", text), "README must state the disk cost of .cache"
    assert "VALUES=" in text and "harness register" in text
