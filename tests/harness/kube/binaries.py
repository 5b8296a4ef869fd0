"""Kubernetes and CoreDNS, built from their Go modules into .cache/kube/bin (cached, version-stamped).

Kubernetes: a small wrapper module requires `k8s.io/kubernetes` at KUBERNETES_VERSION. That
module's own go.mod maps 31 `k8s.io/*` staging modules to `./staging/...`, which only works
inside its repository, so the wrapper replaces each with the published module of the same
minor (v0.34.x for 1.34.x), read from that go.mod (`go mod download -json` gives its path).
All five commands build in ONE `go build -o DIR` so they share compiled packages; CGO is off
(static binaries, no C toolchain). The ldflags set what `hack/lib/version.sh` sets in a
release build; without them the binaries report v0.0.0 and clients see no server version.

CoreDNS: the same approach for `github.com/coredns/coredns`, importing only the plugins the
cluster's Corefile uses (CoreDNS documents compile-time plugin selection this way), which
keeps the build to about a minute instead of pulling every cloud SDK.

kube-router: its NetworkPolicy controller (iptables + ipset) enforces the charts' policies, which
the lane's CNI bridge ignores. Built from its own main package with CGO off and the version
ldflags of its Makefile. (kube-network-policies, the enforcer kind ships, needs the nftables
`queue` expression, and this machine's kernel is built without it: CONFIG_NFT_QUEUE is not set.)

A stamp file next to the binaries records what they were built from; a second run with the
same stamp reuses them. The Go build cache (shared machine-wide) makes a rebuild fast too.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from harness.errors import BuildError
from harness.kube import lock
from harness.paths import KUBE_BIN_DIR, KUBE_CACHE_DIR

KUBE_CACHE = KUBE_CACHE_DIR
BIN = KUBE_BIN_DIR
SRC = KUBE_CACHE / "src"

KUBERNETES_VERSION = "v1.34.1"
STAGING_VERSION = "v0.34.1"  # the staging modules are tagged v0.<minor>.<patch>
KUBE_COMMANDS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet", "kube-proxy")
COREDNS_VERSION = "v1.14.7"
# Plugins the Corefile (harness.kube.cluster) uses; the rest of CoreDNS's plugins are left out.
COREDNS_PLUGINS = ("cache", "errors", "health", "hosts", "kubernetes", "loadbalance", "log", "ready")
KUBE_ROUTER_VERSION = "v2.1.0"
HEARTBEAT_S = 30.0  # how often a long build says it is still working


@dataclass(frozen=True)
class GoBuild:
    """One `go build` of a wrapper module: what it makes, from what, and how long it takes cold."""

    name: str  # wrapper folder under .cache/kube/src and stamp name
    module: str  # the upstream module@version
    packages: tuple[str, ...]  # import paths to build (main packages)
    outputs: tuple[str, ...]  # binary names they produce in BIN
    ldflags: str
    cold: str  # expected cold duration, for the progress message
    why: str

    @property
    def stamp(self) -> Path:
        return BIN / f".{self.name}.version"

    @property
    def identity(self) -> str:
        return json.dumps({"module": self.module, "packages": self.packages, "ldflags": self.ldflags}, sort_keys=True)

    def cached(self) -> bool:
        have_all = all((BIN / name).is_file() for name in self.outputs)
        return have_all and self.stamp.is_file() and self.stamp.read_text() == self.identity


def _version_ldflags(version: str) -> str:
    major, minor = version.removeprefix("v").split(".")[:2]
    flags = []
    for pkg in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        flags += [f"-X {pkg}.gitVersion={version}", f"-X {pkg}.gitMajor={major}", f"-X {pkg}.gitMinor={minor}"]
    flags.append("-X k8s.io/component-base/version.gitTreeState=clean")
    return " ".join(["-s", "-w", *flags])


KUBERNETES = GoBuild(
    name="kubernetes",
    module=f"k8s.io/kubernetes@{KUBERNETES_VERSION}",
    packages=tuple(f"k8s.io/kubernetes/cmd/{cmd}" for cmd in KUBE_COMMANDS),
    outputs=KUBE_COMMANDS,
    ldflags=_version_ldflags(KUBERNETES_VERSION),
    cold="about 6 minutes on 2 idle cores (longer when the machine is busy)",
    why="the control plane, kubelet and kube-proxy of the kube lane's single-node cluster",
)
COREDNS = GoBuild(
    name="coredns",
    module=f"github.com/coredns/coredns@{COREDNS_VERSION}",
    packages=("rag.local/coredns",),
    outputs=("coredns",),
    ldflags="-s -w",
    cold="about 2 minutes",
    why="cluster DNS: Service names resolve inside the cluster",
)

KUBE_ROUTER = GoBuild(
    name="kube-router",
    module=f"github.com/cloudnativelabs/kube-router/v2@{KUBE_ROUTER_VERSION}",
    packages=("github.com/cloudnativelabs/kube-router/v2/cmd/kube-router",),
    outputs=("kube-router",),
    ldflags=f"-s -w -X github.com/cloudnativelabs/kube-router/v2/pkg/version.Version={KUBE_ROUTER_VERSION}",
    cold="about 5 minutes",
    why="NetworkPolicy enforcement (iptables + ipset), which the CNI bridge does not do",
)
BUILDS = (KUBERNETES, COREDNS, KUBE_ROUTER)


class BinaryBuildError(BuildError):
    pass


def go(args: list[str], *, cwd: Path, env: dict[str, str] | None = None) -> str:
    go_bin = shutil.which("go")
    if go_bin is None:
        raise BinaryBuildError("go not found on PATH: install Go >= 1.25 (https://go.dev/dl) to build Kubernetes")
    proc = subprocess.run([go_bin, *args], cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise BinaryBuildError(f"`go {' '.join(args)}` failed in {cwd}:\n{proc.stderr.strip()[-3000:]}")
    return proc.stdout


def staging_replaces(kubernetes_gomod: str, version: str = STAGING_VERSION) -> list[str]:
    """`replace` lines for every module k8s.io/kubernetes's go.mod maps to ./staging/...

    Input: the text of that go.mod. Output: lines like `k8s.io/api => k8s.io/api v0.34.1`.
    """
    lines = []
    for raw in kubernetes_gomod.splitlines():
        parts = raw.replace("replace", "").split()
        if len(parts) == 3 and parts[1] == "=>" and parts[2].startswith("./staging/"):
            lines.append(f"{parts[0]} => {parts[0]} {version}")
    return lines


def kubernetes_gomod(module: str, version: str) -> str:
    """go.mod of the wrapper module that builds k8s.io/kubernetes at `version`."""
    info = json.loads(go(["mod", "download", "-json", f"{module}@{version}"], cwd=KUBE_CACHE))
    replaces = staging_replaces(Path(info["GoMod"]).read_text())
    if not replaces:
        raise BinaryBuildError(f"no ./staging replaces found in {info['GoMod']}: has {module}'s layout changed?")
    body = "\n".join(f"\t{line}" for line in replaces)
    return f"module rag.local/kubebuild\n\ngo 1.24.0\n\nrequire {module} {version}\n\nreplace (\n{body}\n)\n"


def kubernetes_tools_go(packages: tuple[str, ...]) -> str:
    """A build-tagged file importing the commands, so `go mod tidy` records their dependencies."""
    imports = "\n".join(f'\t_ "{pkg}"' for pkg in packages)
    return f"//go:build tools\n\npackage kubebuild\n\nimport (\n{imports}\n)\n"


def coredns_main(plugins: tuple[str, ...]) -> str:
    imports = "\n".join(f'\t_ "github.com/coredns/coredns/plugin/{p}"' for p in plugins)
    return (
        "// CoreDNS with only the plugins the kube lane's Corefile uses.\npackage main\n\nimport (\n"
        '\t_ "github.com/coredns/coredns/core/dnsserver"\n\t"github.com/coredns/coredns/coremain"\n'
        f"{imports}\n)\n\nfunc main() {{ coremain.Run() }}\n"
    )


def wrapper_gomod(name: str, module: str, version: str) -> str:
    """go.mod of a wrapper module `rag.local/<name>` that requires only `module` at `version`."""
    return f"module rag.local/{name}\n\ngo 1.25.0\n\nrequire {module} {version}\n"


def write_wrapper(build: GoBuild) -> Path:
    """Create the wrapper module for `build` under .cache/kube/src and resolve its go.sum."""
    src = KUBE_CACHE / ("src" if build is KUBERNETES else f"src-{build.name}")
    src.mkdir(parents=True, exist_ok=True)
    module, version = build.module.split("@")
    if build is KUBERNETES:
        (src / "go.mod").write_text(kubernetes_gomod(module, version))
        (src / "tools.go").write_text(kubernetes_tools_go(build.packages))
    elif build is KUBE_ROUTER:
        # Its upstream main, unchanged: the wrapper only pins the version (MVS then picks exactly
        # the dependency versions of the module's own go.mod, as nothing else is required).
        (src / "go.mod").write_text(wrapper_gomod(build.name, module, version))
        (src / "tools.go").write_text(kubernetes_tools_go(build.packages))
    else:
        (src / "go.mod").write_text(wrapper_gomod(build.name, module, version))
        (src / "main.go").write_text(coredns_main(COREDNS_PLUGINS))
    go(["mod", "tidy"], cwd=src)
    return src


def build_argv(build: GoBuild) -> list[str]:
    """`nice -n 10 go build ...` for `build`: one package is written to its output's name (a main
    package is named after its folder otherwise), several into BIN under their own names."""
    out = f"{BIN}/{build.outputs[0]}" if len(build.packages) == 1 else f"{BIN}/"
    return ["nice", "-n", "10", "go", "build", "-trimpath", "-ldflags", build.ldflags, "-o", out, *build.packages]


def run_build(build: GoBuild, src: Path, say: Callable[[str], None]) -> None:
    """Run `build_argv(build)` in `src`, saying every HEARTBEAT_S that it is still running."""
    env = {**os.environ, "CGO_ENABLED": "0"}
    argv = build_argv(build)
    log = KUBE_CACHE / f"build-{build.name}.log"
    started = time.monotonic()
    with log.open("w") as out:
        proc = subprocess.Popen(argv, cwd=src, env=env, stdout=out, stderr=subprocess.STDOUT)
        while True:
            try:
                proc.wait(timeout=HEARTBEAT_S)
                break
            except subprocess.TimeoutExpired:
                say(f"  still building {build.name} ({time.monotonic() - started:.0f}s so far; cold: {build.cold})")
    if proc.returncode != 0:
        raise BinaryBuildError(
            f"building {build.module} failed (exit {proc.returncode}); log: {log}\n{log.read_text()[-3000:]}"
        )
    say(f"built {', '.join(build.outputs)} in {time.monotonic() - started:.0f}s")


def ensure(build: GoBuild, say: Callable[[str], None]) -> None:
    if build.cached():
        say(f"{', '.join(build.outputs)}: cached ({build.module})")
        return
    BIN.mkdir(parents=True, exist_ok=True)
    say(f"building {', '.join(build.outputs)} from {build.module} for {build.why}; {build.cold} the first time")
    src = write_wrapper(build)
    run_build(build, src, say)
    build.stamp.write_text(build.identity)


@dataclass(frozen=True)
class Binaries:
    bin_dir: Path

    def __getitem__(self, name: str) -> str:
        return str(self.bin_dir / name)


def ensure_binaries(say: Callable[[str], None] = print) -> Binaries:
    """Build (or reuse) the five Kubernetes commands, CoreDNS and kube-router; returns where they are."""
    KUBE_CACHE.mkdir(parents=True, exist_ok=True)
    with lock.exclusive(KUBE_CACHE / ".binaries.lock", "the kube lane's binaries", say=say):
        for build in BUILDS:
            ensure(build, say)
    return Binaries(BIN)
