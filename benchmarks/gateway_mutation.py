"""Mutation pass over the gateway's Lua (charts/maas-gateway/files/gateway.lua).

Each mutant changes one thing in the script: a comparison flipped, an arithmetic operator or a
constant moved by one, a window or a limit swapped for the other budget's, a charge or a header
dropped, `and`/`or`, `max`/`min`, `floor`/`ceil` exchanged. The gateway's unit tests
(tests/unit/gateway) run against every mutant, in this process, stopping at the first failure; a
mutant they do not fail survives. Known equivalent mutants (the same behaviour, written
differently) are listed in gateway_mutation_equivalent.yaml with the reason; every other
survivor counts against the score, which must reach MIN_SCORE.

Run: `make mutation` (about 4 minutes of one core). Prints the score and each survivor;
`--report FILE` also writes them as Markdown (docs/gateway-mutation.md is such a report).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import lupa.luajit21 as lupa
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "charts" / "maas-gateway" / "files" / "gateway.lua"
TESTS = REPO / "tests" / "unit" / "gateway"
GATEWAY_LUA_ENV = "MAAS_GATEWAY_LUA"  # read by tests/unit/gateway/envoy_model.py
MIN_SCORE = 0.90

STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')

# (pattern outside string literals, replacement), each applied at one occurrence at a time.
CODE_OPERATORS: list[tuple[str, str]] = [
    (r"(?<![<>=~])<(?!=)", "<="),
    (r"<=", "<"),
    (r"(?<![<>=~-])>(?!=)", ">="),
    (r">=", ">"),
    (r"==", "~="),
    (r"~=", "=="),
    (r"(?<=[\w)\]] )\+(?= )", "-"),
    (r"(?<=[\w)\]] )-(?= )", "+"),
    (r"(?<=[\w)\]] )\* ", "/ "),
    (r" / ", " * "),
    (r"(?<=\w) % ", " / "),
    (r"\band\b", "or"),
    (r"\bor\b", "and"),
    (r"\bnot ", ""),
    (r"math\.max", "math.min"),
    (r"math\.min", "math.max"),
    (r"math\.floor", "math.ceil"),
    (r"\brequests_window\b", "tokens_window"),
    (r"\btokens_window\b", "requests_window"),
    (r"\brequests_limit\b", "tokens_limit"),
    (r"\btokens_limit\b", "requests_limit"),
    (r"(?<![\w.])0(?![\w.])", "1"),
    (r"(?<![\w.])1(?![\w.])", "0"),
    (r"(?<![\w.])1(?![\w.])", "2"),
    (r"(?<![\w.])200(?![\w.])", "201"),
    (r"(?<![\w.])300(?![\w.])", "299"),
    (r"\btrue\b", "false"),
    (r"\bfalse\b", "true"),
]
# Inside string literals: only the names and statuses the logic compares against.
STRING_OPERATORS: list[tuple[str, str]] = [
    (r'"requests"', '"tokens"'),
    (r'"tokens"', '"requests"'),
    (r'"429"', '"430"'),
    (r'"200"', '"201"'),
]
# Whole statements whose removal drops a charge, a header or a check.
DROPPED = re.compile(
    r"^\s*(headers:replace|headers:remove|md:set|handle:streamInfo\(\):dynamicMetadata\(\):set|reject|return)\b"
)

# (line as written, line as mutated) -> why the mutant behaves exactly like the original.
EQUIVALENT_FILE = Path(__file__).with_name("gateway_mutation_equivalent.yaml")


def equivalent() -> dict[tuple[int, str, str], str]:
    """(line number, line as written, line as mutated) -> why the mutant behaves exactly like the original."""
    items = yaml.safe_load(EQUIVALENT_FILE.read_text()) or []
    return {(item["at"], item["line"], item["mutant"]): item["why"] for item in items}


@dataclass(frozen=True)
class Mutant:
    line_no: int
    original: str
    mutated: str

    def key(self) -> tuple[int, str, str]:
        return (self.line_no, self.original.strip(), self.mutated.strip())

    def describe(self) -> str:
        return f"line {self.line_no}: `{self.original.strip()}` -> `{self.mutated.strip()}`"


def code_spans(line: str) -> list[tuple[int, int]]:
    """The parts of a line outside string literals and before a comment."""
    spans, pos = [], 0
    for m in STRING.finditer(line):
        spans.append((pos, m.start()))
        pos = m.end()
    spans.append((pos, len(line)))
    out = []
    for start, end in spans:
        comment = line.find("--", start, end)
        if comment != -1:
            out.append((start, comment))
            break
        out.append((start, end))
    return out


def mutants(lines: list[str]) -> list[Mutant]:
    found: list[Mutant] = []
    for i, line in enumerate(lines):
        if line.strip().startswith("--") or not line.strip():
            continue
        spans = code_spans(line)
        for pattern, replacement in CODE_OPERATORS:
            for m in re.finditer(pattern, line):
                if any(start <= m.start() and m.end() <= end for start, end in spans):
                    found.append(Mutant(i + 1, line, line[: m.start()] + replacement + line[m.end() :]))
        code_end = spans[-1][1]  # where a comment starts, if any
        for pattern, replacement in STRING_OPERATORS:
            for m in re.finditer(pattern, line):
                if m.start() < code_end:
                    found.append(Mutant(i + 1, line, line[: m.start()] + replacement + line[m.end() :]))
        if DROPPED.match(line) and not line.rstrip().endswith(("(", "{", ",")):
            indent = line[: len(line) - len(line.lstrip())]
            found.append(Mutant(i + 1, line, indent + "do end -- dropped\n"))
    unique: dict[tuple[int, str], Mutant] = {}
    lua = lupa.LuaRuntime()
    for mutant in found:
        if mutant.mutated == mutant.original or (mutant.line_no, mutant.mutated) in unique:
            continue
        try:  # a mutant that is not valid Lua proves nothing about the tests
            lua.compile(apply(mutant, lines))
        except lupa.LuaSyntaxError:
            continue
        unique[(mutant.line_no, mutant.mutated)] = mutant
    return list(unique.values())


def apply(mutant: Mutant, lines: list[str]) -> str:
    return "".join(lines[: mutant.line_no - 1] + [mutant.mutated] + lines[mutant.line_no :])


class Quiet:
    """A pytest plugin that records whether any test failed."""

    def __init__(self) -> None:
        self.failed = False

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.failed:
            self.failed = True


def killed(mutant: Mutant, lines: list[str], workdir: Path) -> bool:
    path = workdir / f"gateway-{mutant.line_no}.lua"
    path.write_text(apply(mutant, lines))
    os.environ[GATEWAY_LUA_ENV] = str(path)
    plugin = Quiet()
    code = pytest.main(
        [str(TESTS), "-x", "-q", "--no-header", "-p", "no:cacheprovider", "-p", "no:rag_harness", "-W", "ignore"],
        plugins=[plugin],
    )
    path.unlink()
    return plugin.failed or code not in (0, pytest.ExitCode.OK)


def main() -> int:
    parser = argparse.ArgumentParser(description="Mutation pass over the gateway's Lua with its unit tests.")
    parser.add_argument("--report", type=Path, help="also write the result as Markdown to this file")
    args = parser.parse_args()
    lines = SCRIPT.read_text().splitlines(keepends=True)
    found = mutants(lines)
    print(f"[mutation] {len(found)} mutants of {SCRIPT.relative_to(REPO)}; running the unit tests on each", flush=True)
    started = time.monotonic()
    survivors: list[Mutant] = []
    devnull = open(os.devnull, "w")  # noqa: SIM115 - held for the whole run
    with tempfile.TemporaryDirectory(prefix="gateway-mutants-") as tmp:
        for n, mutant in enumerate(found, 1):
            saved = sys.stdout
            sys.stdout = devnull
            try:
                dead = killed(mutant, lines, Path(tmp))
            finally:
                sys.stdout = saved
            if not dead:
                survivors.append(mutant)
            if n % 25 == 0:
                print(f"[mutation] {n}/{len(found)} run, {len(survivors)} survived", flush=True)
    os.environ.pop(GATEWAY_LUA_ENV, None)
    known = equivalent()
    equivalents = [m for m in survivors if m.key() in known]
    live = [m for m in survivors if m.key() not in known]
    counted = len(found) - len(equivalents)
    score = (counted - len(live)) / counted if counted else 1.0
    print(
        f"[mutation] {len(found)} mutants, {len(found) - len(survivors)} killed, {len(equivalents)} equivalent, "
        f"{len(live)} surviving; score {score:.1%} of non-equivalent mutants killed "
        f"({time.monotonic() - started:.0f}s)"
    )
    for mutant in equivalents:
        print(f"  equivalent  {mutant.describe()}: {known[mutant.key()]}")
    for mutant in live:
        print(f"  SURVIVED    {mutant.describe()}")
    if args.report:
        args.report.write_text(report(found, survivors, equivalents, live, known, score))
    if score < MIN_SCORE:
        print(f"error: mutation score {score:.1%} is below {MIN_SCORE:.0%}", file=sys.stderr)
        return 1
    return 0


def report(
    found: list[Mutant],
    survivors: list[Mutant],
    equivalents: list[Mutant],
    live: list[Mutant],
    known: dict[tuple[int, str, str], str],
    score: float,
) -> str:
    out = [
        "# Mutation pass over the gateway's Lua",
        "",
        f"Generated by `python benchmarks/gateway_mutation.py --report docs/gateway-mutation.md` (`make mutation`"
        f" prints the same). Script: `{SCRIPT.relative_to(REPO)}`; tests: `{TESTS.relative_to(REPO)}`.",
        "",
        "| mutants | killed | equivalent | surviving | score (killed / non-equivalent) |",
        "| --- | --- | --- | --- | --- |",
        f"| {len(found)} | {len(found) - len(survivors)} | {len(equivalents)} | {len(live)} | {score:.1%} |",
        "",
        "## Equivalent mutants",
        "",
        "| line | mutant | why it behaves like the original |",
        "| --- | --- | --- |",
    ]
    for m in equivalents:
        out.append(f"| {m.line_no} | `{m.mutated.strip()}` | {known[m.key()]} |")
    out += ["", "## Surviving mutants", ""]
    out += [f"- line {m.line_no}: `{m.mutated.strip()}`" for m in live] or ["None."]
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    sys.exit(main())
