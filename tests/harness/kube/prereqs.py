"""What the kube lane needs from the machine: root and a few Debian packages.

`problems()` lists what is missing as one line each, naming the fix; `require()` raises with
them; `install_missing()` installs the packages with apt-get when running as root (the Debian
packages ship systemd units and init scripts for containerd and etcd: the cluster never uses
those daemons, it starts its own instances on their own sockets inside the lane's network
namespace, so a host daemon started by apt does not interfere).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from harness import apt
from harness.errors import ToolMissing


@dataclass(frozen=True)
class Package:
    name: str  # Debian package
    provides: str  # a file the lane uses from it
    why: str


PACKAGES = (
    Package("etcd-server", "/usr/bin/etcd", "the cluster's datastore"),
    Package("containerd", "/usr/bin/containerd", "the container runtime the kubelet drives (CRI)"),
    Package("runc", "/usr/sbin/runc", "the OCI runtime containerd starts containers with"),
    Package("containernetworking-plugins", "/usr/lib/cni/bridge", "pod networking (bridge, host-local, portmap)"),
    Package("buildah", "/usr/bin/buildah", "builds the images the charts deploy"),
    Package("iptables", "/usr/sbin/iptables", "kube-proxy's Service rules"),
    Package("ipset", "/usr/sbin/ipset", "kube-router's NetworkPolicy address sets"),
    Package("debootstrap", "/usr/sbin/debootstrap", "the Debian root filesystem of the Python images"),
    Package("gcc", "/usr/bin/gcc", "the static pause program of the pod sandbox image"),
    Package("libc6-dev", "/usr/lib/x86_64-linux-gnu/libc.a", "static linking of the pause program"),
    Package("locales", "/usr/bin/localedef", "the en_US.UTF-8 locale PostgreSQL's image needs"),
    Package("iproute2", "/usr/sbin/ip", "the lane's network namespace and veth"),
    Package("util-linux", "/usr/bin/nsenter", "starts the cluster's processes inside the namespace"),
)


class PrerequisiteMissing(ToolMissing):
    pass


def missing_packages(packages: tuple[Package, ...] = PACKAGES) -> list[Package]:
    return [p for p in packages if not Path(p.provides).exists()]


def problems(*, euid: int | None = None, packages: tuple[Package, ...] = PACKAGES) -> list[str]:
    """One line per missing prerequisite, each naming what to do; empty when the lane can run."""
    found: list[str] = []
    if (os.geteuid() if euid is None else euid) != 0:
        found.append("the kube lane needs root (network namespace, mounts, kubelet): run it as root (sudo make test)")
    if missing := missing_packages(packages):
        names = " ".join(p.name for p in missing)
        found.append(
            f"missing Debian packages {names} ({'; '.join(p.why for p in missing)}): "
            f"run `{apt.manual_command([p.name for p in missing])}`"
        )
    return found


def require() -> None:
    if found := problems():
        raise PrerequisiteMissing("; ".join(found))


def install_missing(
    say: Callable[[str], None] = print,
    *,
    packages: tuple[Package, ...] = PACKAGES,
    euid: int | None = None,
    has_apt: Callable[[], bool] = apt.available,
    runner: apt.Runner = apt.run,
) -> None:
    """apt-get install the missing packages (root only, never through sudo: the lane itself needs
    root; no-op when all are present or there is no apt-get). Raises apt.AptError when apt-get fails."""
    missing = missing_packages(packages)
    if not missing or (os.geteuid() if euid is None else euid) != 0 or not has_apt():
        return
    apt.install([p.name for p in missing], why="kube lane packages", say=say, runner=runner)
