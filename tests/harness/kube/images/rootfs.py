"""Root filesystems the images start from, each built once into .cache/kube/rootfs and reused.

- Debian 12 and 13 `minbase` trees come from debootstrap against the Debian mirror apt already
  uses on this machine (the only package source reachable here).
- The Python 3.12 tree is Debian 12 plus a copy of the pyenv 3.12 build in /usr/local (where
  python:3.12-slim has it) and the shared libraries its modules link that minbase lacks.

A tree is complete when its stamp file holds the tree's identity; otherwise it is rebuilt
from scratch in a temporary folder and renamed into place, so an interrupted build is never
taken for a finished one.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from harness.errors import BuildError
from harness.kube.images.specs import Base
from harness.paths import CACHE_DIR

ROOTFS_DIR = CACHE_DIR / "kube" / "rootfs"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
APT_SOURCES = Path("/etc/apt/sources.list.d")
# Parts of the pyenv build no container needs: the test suite, GUI toolkits, headers, static libs.
PYTHON_SKIP = ("test", "idlelib", "tkinter", "turtledemo", "lib2to3", "ensurepip", "__phello__")
# Debian 13 packages that make up distroless python3 (python3/config.bzl), as far as minbase lacks them.
TRIXIE_PYTHON_PACKAGES = ("python3.13-minimal", "libpython3.13-stdlib", "ca-certificates")

Say = Callable[[str], None]


class RootfsError(BuildError):
    pass


def ensure(base: Base, *, say: Say) -> Path:
    """The finished tree for `base` under ROOTFS_DIR (built on first use). Raises RootfsError."""
    if base is Base.BOOKWORM:
        return _debootstrap("bookworm", (), say=say)
    if base is Base.TRIXIE_PY:
        return _debootstrap("trixie", TRIXIE_PYTHON_PACKAGES, say=say)
    if base is Base.BOOKWORM_PY312:
        return _bookworm_py312(say=say)
    raise RootfsError(f"no root filesystem is built for {base}")


def mirror() -> str:
    """The Debian mirror apt uses here (deb822 `URIs:` of a sources file naming `debian`)."""
    for path in sorted(APT_SOURCES.glob("*.sources")):
        for match in re.finditer(r"^URIs:\s*(\S+)", path.read_text(), re.MULTILINE):
            if match.group(1).rstrip("/").endswith("/debian"):
                return match.group(1)
    return DEFAULT_MIRROR


def _finished(tree: Path, identity: str) -> bool:
    stamp = tree.with_name(tree.name + ".stamp")
    return tree.is_dir() and stamp.is_file() and stamp.read_text() == identity


def _publish(tmp: Path, tree: Path, identity: str) -> Path:
    shutil.rmtree(tree, ignore_errors=True)
    tmp.rename(tree)
    tree.with_name(tree.name + ".stamp").write_text(identity)
    return tree


def _fresh_tmp(tree: Path) -> Path:
    tmp = tree.with_name(tree.name + ".tmp")
    _unmount_below(tmp)
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.parent.mkdir(parents=True, exist_ok=True)
    return tmp


def _debootstrap(suite: str, include: tuple[str, ...], *, say: Say) -> Path:
    name = suite if not include else f"{suite}-python"
    tree = ROOTFS_DIR / name
    source = mirror()
    identity = f"debootstrap --variant=minbase {suite} {source} include={','.join(include)}"
    if _finished(tree, identity):
        return tree
    tmp = _fresh_tmp(tree)
    say(f"rootfs {name}: debootstrap Debian {suite} minbase from {source} (first time only, ~1.5 min)")
    started = time.monotonic()
    argv = ["nice", "-n", "10", "debootstrap", "--variant=minbase"]
    if include:
        argv.append(f"--include={','.join(include)}")
    argv += [suite, str(tmp), source]
    try:
        _run(argv)
    finally:
        _unmount_below(tmp)  # debootstrap mounts /proc and /sys inside the tree
    _clean_apt(tmp)
    say(f"rootfs {name}: done in {time.monotonic() - started:.0f} s")
    return _publish(tmp, tree, identity)


def _bookworm_py312(*, say: Say) -> Path:
    base = _debootstrap("bookworm", (), say=say)
    python = python_home()
    tree = ROOTFS_DIR / "bookworm-py312"
    identity = f"{base.with_name(base.name + '.stamp').read_text()} + {python} {sys.version.split()[0]}"
    if _finished(tree, identity):
        return tree
    tmp = _fresh_tmp(tree)
    say(f"rootfs bookworm-py312: Debian 12 + Python {sys.version.split()[0]} from {python} (~30 s)")
    _run(["cp", "-a", "--reflink=auto", f"{base}/.", str(tmp)])
    install_python(python, tmp)
    return _publish(tmp, tree, identity)


def python_home() -> Path:
    """The Python 3.12 installation the harness runs on (pyenv's build: the venv's base prefix)."""
    home = Path(sys.base_prefix)
    if not (home / "bin" / "python3.12").is_file():
        raise RootfsError(f"no python3.12 under {home}: run the harness from the Python 3.12 venv (make bootstrap)")
    return home


def install_python(home: Path, root: Path) -> None:
    """Copy the interpreter and standard library into root/usr/local, where python:3.12-slim has them."""
    local = root / "usr" / "local"
    (local / "bin").mkdir(parents=True, exist_ok=True)
    shutil.copy2(home / "bin" / "python3.12", local / "bin" / "python3.12")
    for alias in ("python3", "python"):
        (local / "bin" / alias).unlink(missing_ok=True)
        (local / "bin" / alias).symlink_to("python3.12")
    for lib in (home / "lib").glob("libpython3*.so*"):
        shutil.copy2(lib, local / "lib" / lib.name, follow_symlinks=False)
    shutil.copytree(
        home / "lib" / "python3.12",
        local / "lib" / "python3.12",
        symlinks=True,
        ignore=_skip_python_parts,
        dirs_exist_ok=True,
    )
    binaries = [local / "bin" / "python3.12", *(local / "lib" / "python3.12" / "lib-dynload").glob("*.so")]
    copy_libraries(binaries, root)


def _skip_python_parts(directory: str, names: list[str]) -> set[str]:
    skipped = {n for n in names if n in PYTHON_SKIP or n.startswith("config-3.12")}
    if Path(directory).name == "site-packages":
        skipped |= set(names)  # pyenv's own pip and setuptools; images bring their packages
    return skipped


def copy_libraries(binaries: Iterable[Path], root: Path) -> None:
    """Copy into `root` every shared library the binaries load on this host that `root` lacks.

    The host is Debian 12, like the images' base, so its libraries fit. Runs ldconfig on
    `root` afterwards so the dynamic linker finds libraries copied to /usr/local/lib.
    """
    for library in sorted({lib for binary in binaries for lib in _ldd(binary)}):
        target = root / library.relative_to("/")
        if not target.exists() and not _in_root(root, library.name):
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(library.resolve(), target)
    _run(["ldconfig", "-r", str(root)])


def _in_root(root: Path, soname: str) -> bool:
    return any((root / d / soname).exists() for d in ("usr/lib/x86_64-linux-gnu", "usr/lib", "usr/local/lib"))


def _ldd(binary: Path) -> set[Path]:
    env = {**os.environ, "LD_LIBRARY_PATH": str(binary.parent)}
    result = subprocess.run(["ldd", str(binary)], capture_output=True, text=True, env=env)
    if result.returncode != 0:  # a static program: nothing to copy
        return set()
    found = set()
    for line in result.stdout.splitlines():
        match = re.search(r"=>\s+(/\S+)", line)
        if match and "/.pyenv/" not in match.group(1) and str(binary.parent) not in match.group(1):
            found.add(Path(match.group(1)))
    return found


def _clean_apt(tree: Path) -> None:
    for junk in ("var/cache/apt/archives", "var/lib/apt/lists"):
        for item in (tree / junk).glob("*"):
            if item.is_file():
                item.unlink()


def _unmount_below(tree: Path) -> None:
    """Unmount anything mounted inside `tree` (deepest first), e.g. after an interrupted debootstrap."""
    if not tree.exists():
        return
    prefix = str(tree.resolve()) + "/"
    mounts = [line.split()[1] for line in Path("/proc/self/mounts").read_text().splitlines()]
    for point in sorted((m for m in mounts if m.startswith(prefix)), key=len, reverse=True):
        subprocess.run(["umount", "-l", point], check=False)


def _run(argv: list[str]) -> None:
    result = subprocess.run(argv, capture_output=True, text=True)
    if result.returncode != 0:
        tail = (result.stderr or result.stdout)[-2000:]
        raise RootfsError(f"{' '.join(argv[:4])}... failed ({result.returncode}):\n{tail}")
