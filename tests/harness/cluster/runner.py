"""Running commands: the protocol the cluster code uses, a real runner, and two test/dry-run runners.

Plans name tools by their bare name (`helm`, `kubectl`, `kind`); the real runner resolves them
with `harness.tools.require` at execution time, so plans stay readable and printable.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol, TextIO

from harness.errors import ClusterError
from harness.paths import REPO_ROOT
from harness.redact import redact
from harness.tools import require


@dataclass
class CommandResult:
    argv: list[str]
    returncode: int = 0
    stdout: str = ""
    stderr: str = ""

    @property
    def ok(self) -> bool:
        return self.returncode == 0


class CommandError(ClusterError):
    """A checked command failed; the message carries the (redacted) command and its stderr."""

    def __init__(self, result: CommandResult, secrets: Sequence[str] = ()) -> None:
        self.result = result
        tail = (result.stderr or result.stdout).strip().splitlines()[-15:]
        cmd = redact(shlex.join(result.argv), secrets)
        body = redact("\n".join(tail), secrets)
        super().__init__(f"`{cmd}` exited with {result.returncode}: see its output above", detail=body)


class Process(Protocol):
    """A long-running child (port-forward): the subset of Popen the harness uses."""

    def poll(self) -> int | None: ...

    def terminate(self) -> None: ...

    def wait(self, timeout: float | None = None) -> int: ...


class CommandRunner(Protocol):
    def run(
        self, argv: Sequence[str], *, check: bool = True, capture: bool = True, input: str | None = None
    ) -> CommandResult: ...

    def start(self, argv: Sequence[str]) -> Process: ...


def resolve(argv: Sequence[str]) -> list[str]:
    """Replace a bare tool name by the pinned binary from .cache/bin (or PATH)."""
    first, rest = argv[0], list(argv[1:])
    if "/" in first:
        return [first, *rest]
    return [str(require(first)), *rest]


@dataclass
class SubprocessRunner:
    """Runs commands for real. `secrets` are masked in error messages."""

    secrets: list[str] = field(default_factory=list)
    timeout: float | None = 900.0

    def run(
        self, argv: Sequence[str], *, check: bool = True, capture: bool = True, input: str | None = None
    ) -> CommandResult:
        proc = subprocess.run(
            resolve(argv),
            input=input,
            text=True,
            stdout=subprocess.PIPE if capture else None,
            stderr=subprocess.PIPE if capture else None,
            timeout=self.timeout,
            check=False,
            cwd=REPO_ROOT,  # plans name repository paths relative to the root
        )
        result = CommandResult(list(argv), proc.returncode, proc.stdout or "", proc.stderr or "")
        if check and not result.ok:
            raise CommandError(result, self.secrets)
        return result

    def start(self, argv: Sequence[str]) -> Process:
        # Output is discarded: port-forward chatter ("Handling connection for ...") is noise.
        return subprocess.Popen(
            resolve(argv), cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL
        )


@dataclass
class FakeProcess:
    """A stand-in child for the recording runner; `exit()` simulates a dropped port-forward."""

    argv: list[str]
    returncode: int | None = None

    def poll(self) -> int | None:
        return self.returncode

    def terminate(self) -> None:
        if self.returncode is None:
            self.returncode = -15

    def wait(self, timeout: float | None = None) -> int:
        self.terminate()
        return self.returncode if self.returncode is not None else 0

    def exit(self, code: int = 1) -> None:
        self.returncode = code


Responder = Callable[[list[str]], CommandResult | None]


@dataclass
class RecordingRunner:
    """Records every command; answers from `responses` (argv prefix -> result or callable).

    The longest matching prefix wins; unmatched commands succeed with empty output. Used by unit
    tests to assert the exact plan without any binary or cluster.
    """

    responses: dict[tuple[str, ...], CommandResult | Responder] = field(default_factory=dict)
    calls: list[list[str]] = field(default_factory=list)
    started: list[FakeProcess] = field(default_factory=list)
    inputs: list[str | None] = field(default_factory=list)

    def run(
        self, argv: Sequence[str], *, check: bool = True, capture: bool = True, input: str | None = None
    ) -> CommandResult:
        args = list(argv)
        self.calls.append(args)
        self.inputs.append(input)
        result = self._answer(args)
        if check and not result.ok:
            raise CommandError(result)
        return result

    def start(self, argv: Sequence[str]) -> Process:
        args = list(argv)
        self.calls.append(args)
        proc = FakeProcess(args)
        self.started.append(proc)
        return proc

    def _answer(self, args: list[str]) -> CommandResult:
        best: tuple[str, ...] | None = None
        for prefix in self.responses:
            if tuple(args[: len(prefix)]) == prefix and (best is None or len(prefix) > len(best)):
                best = prefix
        if best is None:
            return CommandResult(args)
        answer = self.responses[best]
        result = answer(args) if callable(answer) else answer
        if result is None:
            return CommandResult(args)
        return CommandResult(args, result.returncode, result.stdout, result.stderr)


@dataclass
class DryRunRunner:
    """Prints each command (secrets masked) instead of running it; every command 'succeeds' empty."""

    secrets: list[str] = field(default_factory=list)
    out: TextIO = field(default_factory=lambda: sys.stdout)

    def run(
        self, argv: Sequence[str], *, check: bool = True, capture: bool = True, input: str | None = None
    ) -> CommandResult:
        print("+ " + redact(shlex.join(argv), self.secrets), file=self.out)
        if input is not None:
            print("  stdin: " + redact(input, self.secrets), file=self.out)
        return CommandResult(list(argv))

    def start(self, argv: Sequence[str]) -> Process:
        print("+ " + redact(shlex.join(argv), self.secrets) + " &", file=self.out)
        return FakeProcess(list(argv))
