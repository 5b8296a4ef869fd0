"""What every target offers; tests see only this and `Endpoints`."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from harness.endpoints import Endpoints


class Target(Protocol):
    name: str

    def up(self) -> Endpoints:
        """Deploy (or reuse) the stack and return its endpoints once healthy."""
        ...

    def down(self) -> None:
        """Remove everything `up` created."""
        ...

    def status(self) -> Endpoints:
        """Endpoints of the running stack; raises if nothing runs."""
        ...

    def apply_models(self, models: dict[str, dict[str, Any]]) -> None:
        """Render `models` as `global.models` and apply them (restart or helm upgrade)."""
        ...

    def diagnose(self, dest: Path) -> Path:
        """Write logs, events and rendered configs (secrets redacted) under dest; return it."""
        ...
