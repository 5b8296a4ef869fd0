"""The run folder of one local stack: values it was rendered with, logs, pids, mounts."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness import paths
from harness.local import processes

# Values a test applies for a while (e.g. another failureMode); the last values file.
OVERRIDES_FILE = "overrides.yaml"


@dataclass
class RunFolder:
    name: str
    root: Path
    release: str = "rag"
    chart: Path = paths.chart("rag")

    @classmethod
    def named(cls, name: str) -> RunFolder:
        return cls(name, paths.RUNS_DIR / name)

    # Layout ---------------------------------------------------------------
    @property
    def values_dir(self) -> Path:
        return self.root / "values"

    @property
    def logs_dir(self) -> Path:
        return self.root / "logs"

    @property
    def mounts_dir(self) -> Path:
        return self.root / "mounts"

    @property
    def volumes_dir(self) -> Path:
        return self.root / "volumes"  # PersistentVolumeClaims: kept across restarts, cleared by `up`

    @property
    def rendered_file(self) -> Path:
        return self.root / "rendered.yaml"  # secrets redacted

    @property
    def state_file(self) -> Path:
        return self.root / "state.json"

    def log(self, container: str) -> Path:
        return self.logs_dir / f"{container}.log"

    def work_dir(self, container: str) -> Path:
        path = self.root / "work" / container
        path.mkdir(parents=True, exist_ok=True)
        return path

    # Values, applied in this order (later wins) ----------------------------
    def values_files(self) -> list[Path]:
        names = ("ports.yaml", "secrets.yaml", "models.yaml", OVERRIDES_FILE)
        generated = [self.values_dir / n for n in names]
        return [paths.values_file("local"), *self.overlays(), *(p for p in generated if p.exists())]

    def overlays(self) -> list[Path]:
        return [Path(p) for p in self._state().get("overlays", [])]

    def overlay_fingerprints(self) -> list[str]:
        """The overlays as they were when the stack started (a file edited since then differs)."""
        return list(self._state().get("overlay_fingerprints", []))

    def write_values(self, name: str, values: dict[str, Any], secret: bool = False) -> Path:
        self.values_dir.mkdir(parents=True, exist_ok=True)
        path = self.values_dir / name
        path.write_text(json.dumps(values, indent=2))  # JSON is YAML
        if secret:
            path.chmod(0o600)
        return path

    # Lifecycle --------------------------------------------------------------
    def reset(self, overlays: list[Path] | None = None) -> None:
        """Clear the previous run's files (its logs are replaced by this run's)."""
        for sub in ("logs", "mounts", "work", "values", "volumes"):
            shutil.rmtree(self.root / sub, ignore_errors=True)
        self.root.mkdir(parents=True, exist_ok=True)
        overlays = [p.resolve() for p in overlays or []]
        self._save({"overlays": [str(p) for p in overlays], "overlay_fingerprints": fingerprints(overlays), "pids": {}})

    def record_pid(self, container: str, pid: int) -> None:
        state = self._state()
        state.setdefault("pids", {})[container] = pid
        self._save(state)

    def recorded_pids(self) -> dict[str, int]:
        return dict(self._state().get("pids", {}))

    def alive_pids(self) -> dict[str, int]:
        return {n: p for n, p in self.recorded_pids().items() if processes.alive(p)}

    def component_states(self) -> dict[str, str]:
        """Each container the last start planned (or recorded): `running (pid N)`, `exited (pid N)`
        or `not started`."""
        recorded = self.recorded_pids()
        planned = [str(n) for n in self._state().get("containers", [])]
        states = {}
        for name in [*planned, *(n for n in recorded if n not in planned)]:
            pid = recorded.get(name)
            if pid is None:
                states[name] = "not started"
            else:
                states[name] = f"{'running' if processes.alive(pid) else 'exited'} (pid {pid})"
        return states

    def forget_pids(self) -> None:
        state = self._state()
        state["pids"] = {}
        state.pop("containers", None)
        self._save(state)

    def get(self, key: str, default: Any = None) -> Any:
        return self._state().get(key, default)

    def put(self, key: str, value: object) -> None:
        state = self._state()
        state[key] = value
        self._save(state)

    def _state(self) -> dict[str, Any]:
        if not self.state_file.exists():
            return {}
        state: dict[str, Any] = json.loads(self.state_file.read_text())
        return state

    def _save(self, state: dict[str, Any]) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=2))
        os.replace(tmp, self.state_file)


def fingerprints(overlays: list[Path]) -> list[str]:
    """`<absolute path> sha256:<first 12 hex of its content>` per overlay, in order."""
    return [f"{p.resolve()} sha256:{hashlib.sha256(p.read_bytes()).hexdigest()[:12]}" for p in overlays]
