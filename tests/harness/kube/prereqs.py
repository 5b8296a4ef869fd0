"""What the kube lane needs from the machine: root and a few Debian packages.

`problems()` lists what is missing as one line each, naming the fix; `require()` raises with
them; `install_missing()` installs the packages with apt-get when running as root (the Debian
packages ship systemd units and init scripts for containerd and etcd: the cluster never uses
those daemons, it starts its own instances on their own sockets inside the lane's network
namespace, so a host daemon started by apt does not interfere).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


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


class PrerequisiteMissing(RuntimeError):
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
            f"run `sudo apt-get install -y {names}`"
        )
    return found


def require() -> None:
    if found := problems():
        raise PrerequisiteMissing("; ".join(found))


def install_missing(say: Callable[[str], None] = print) -> None:
    """apt-get install the missing packages (root only; no-op when all are present)."""
    missing = missing_packages()
    if not missing or os.geteuid() != 0 or shutil.which("apt-get") is None:
        return
    names = [p.name for p in missing]
    say(f"kube lane packages: apt-get install {' '.join(names)} (about a minute)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], env=env, check=True, stdout=subprocess.DEVNULL)
    subprocess.run(["apt-get", "install", "-y", "-qq", *names], env=env, check=True, stdout=subprocess.DEVNULL)
