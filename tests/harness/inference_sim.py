"""The real llm-d inference simulator, built from its Go module at a pinned version.

The Go module proxy serves `github.com/llm-d/llm-d-inference-sim` at exact versions only
(listing its versions answers 403), so `go install ...@version` cannot resolve it. Instead
`go mod download -json` fetches the pinned version (and reports its go.sum hash, checked
against the pin), the module source is copied out of the read-only module cache, and
`go build ./cmd/llm-d-inference-sim` runs there, with the module's own go.mod and go.sum,
CGO off: a static binary, as upstream's Dockerfile builds it.

One change is made to the copied source: the simulator listens on every interface (it has
no host flag), and the local target binds loopback only. The build reads the listen host
from the environment variable `LISTEN_HOST_ENV`; unset, the binary listens exactly as
upstream's does (the kube lane's image leaves it unset).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

from harness.errors import BuildError
from harness.paths import BIN_DIR

NAME = "llm-d-inference-sim"  # the binary under .cache/bin and in the image (/app/llm-d-inference-sim)
MODULE = "github.com/llm-d/llm-d-inference-sim"
VERSION = "v0.10.2"
MODULE_SUM = "h1:LzeQsvnsNwgtAIl1tVp/jrC+jI0a+0mjRH8tHo1mTI0="  # go.sum hash of the module zip
PACKAGE = "./cmd/llm-d-inference-sim"
LISTEN_HOST_ENV = "LLM_D_SIM_LISTEN_HOST"

# The listener line in pkg/communication/http.go at VERSION, and what the build puts in its place.
_LISTEN_FILE = "pkg/communication/http.go"
_LISTEN_UPSTREAM = 'net.Listen("tcp4", fmt.Sprintf(":%d", c.simulator.Context.Config().Port))'
_LISTEN_PATCHED = 'net.Listen("tcp4", fmt.Sprintf("%s:%d", listenHost(), c.simulator.Context.Config().Port))'
_LISTEN_HELPER = f"""package communication

import "os"

// listenHost is the address the simulator binds: {LISTEN_HOST_ENV}, or every interface when unset.
// Added by the rag-maas bootstrap build; upstream listens on every interface.
func listenHost() string {{
\treturn os.Getenv("{LISTEN_HOST_ENV}")
}}
"""


class SimulatorBuildError(BuildError):
    pass


def binary() -> Path:
    return BIN_DIR / NAME


def identity() -> str:
    """What the cached binary was built from: a change of pin or patch rebuilds it."""
    patch = hashlib.sha256((_LISTEN_PATCHED + _LISTEN_HELPER).encode()).hexdigest()[:16]
    return f"{MODULE}@{VERSION} {MODULE_SUM} CGO_ENABLED=0 listen-host-patch:{patch}"


def _stamp() -> Path:
    return BIN_DIR / f".{NAME}.version"


def is_built() -> bool:
    return binary().is_file() and _stamp().is_file() and _stamp().read_text() == identity()


def download(run: Callable[..., subprocess.CompletedProcess[str]] = subprocess.run) -> Path:
    """`go mod download` the pinned version; returns its (read-only) source folder in the module cache.

    Raises SimulatorBuildError when the proxy refuses it or its hash differs from the pin.
    """
    try:
        result = run(
            ["go", "mod", "download", "-json", f"{MODULE}@{VERSION}"],
            capture_output=True,
            text=True,
            check=False,
            cwd=tempfile.gettempdir(),  # outside any module: the pinned version alone decides
            env={**os.environ, "GOFLAGS": "-mod=mod"},
        )
    except FileNotFoundError as exc:
        raise SimulatorBuildError("go is not installed; it builds the inference simulator (install Go 1.25+)") from exc
    try:
        info = json.loads(result.stdout or "{}")
    except json.JSONDecodeError:
        info = {}
    if result.returncode != 0 or info.get("Error"):
        detail = info.get("Error") or result.stderr.strip() or f"exit {result.returncode}"
        raise SimulatorBuildError(f"go mod download {MODULE}@{VERSION} failed: {detail}")
    if info.get("Sum") != MODULE_SUM:
        raise SimulatorBuildError(
            f"{MODULE}@{VERSION} has hash {info.get('Sum')!r}, the pin says {MODULE_SUM!r}: "
            "the module is not the one pinned"
        )
    return Path(info["Dir"])


def patch_listen_host(source: Path) -> None:
    """Make the listen host come from LISTEN_HOST_ENV (see the module docstring)."""
    target = source / _LISTEN_FILE
    text = target.read_text()
    if text.count(_LISTEN_UPSTREAM) != 1:
        raise SimulatorBuildError(f"{_LISTEN_FILE} of {MODULE}@{VERSION} has no single listener line to patch")
    target.write_text(text.replace(_LISTEN_UPSTREAM, _LISTEN_PATCHED))
    (target.parent / "listen_host_rag_maas.go").write_text(_LISTEN_HELPER)


def build(say: Callable[[str], None]) -> Path:
    """Build the pinned simulator into .cache/bin (skipped when the same pin is already built)."""
    if is_built():
        say(f"{NAME}: cached ({VERSION})")
        return binary()
    say(f"{NAME}: downloading {MODULE}@{VERSION} from the Go module proxy, checking its hash")
    module_dir = download()
    say(f"{NAME}: go build {PACKAGE} in the module's source, CGO off (first time only, a few minutes)")
    with tempfile.TemporaryDirectory(prefix="llm-d-inference-sim-") as tmp:
        source = Path(tmp) / "src"
        shutil.copytree(module_dir, source)
        for path in [source, *source.rglob("*")]:  # the module cache is read-only
            path.chmod(path.stat().st_mode | 0o200)
        patch_listen_host(source)
        output = Path(tmp) / NAME
        env = {**os.environ, "CGO_ENABLED": "0", "GOFLAGS": "-mod=readonly -buildvcs=false"}
        try:
            subprocess.run(["go", "build", "-trimpath", "-o", str(output), PACKAGE], cwd=source, env=env, check=True)
        except subprocess.CalledProcessError as exc:
            raise SimulatorBuildError(f"go build {PACKAGE} of {MODULE}@{VERSION} failed ({exc.returncode})") from exc
        BIN_DIR.mkdir(parents=True, exist_ok=True)
        shutil.move(str(output), binary())
    _stamp().write_text(identity())
    say(f"{NAME}: built {binary()}")
    return binary()
