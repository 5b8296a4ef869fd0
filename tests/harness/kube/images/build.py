"""Build one image with buildah (vfs storage, no daemon) into an OCI archive, or reuse it.

An archive is reused when its stamp holds the image's fingerprint: the spec (metadata,
paths, labels), the assembly code and files, and the identities of the programs copied in.
Buildah keeps its working containers under .cache/kube/buildah; images are committed straight
into the archives, since pods get them from there (`ctr images import`). Buildah stages every
layer, and the archive, in its TMPDIR first (/var/tmp unless set): a small /var/tmp cuts a
commit off with "io: read/write on closed pipe". So its TMPDIR is .cache/kube/buildah/tmp, on
the disk that holds the archives, cleared before each build and checked for room.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

from harness.errors import BuildError
from harness.kube.images import assemble
from harness.kube.images.specs import Base, ImageSpec
from harness.paths import CACHE_DIR

IMAGES_DIR = CACHE_DIR / "kube" / "images"
BUILDAH_ROOT = CACHE_DIR / "kube" / "buildah"
BUILDAH_TMP = BUILDAH_ROOT / "tmp"
# Room one build needs at its TMPDIR: the largest image (llama-stack, ~0.7 GB uncompressed) is
# staged there as a layer and then as the archive, with room to spare.
MIN_FREE_BYTES = 4 * 1024**3
# Bump when the archive layout changes (2: references normalized as containerd's CRI names images).
ARCHIVE_FORMAT = 2
BUILDAH_TIMEOUT_S = 900  # one commit of the largest image (llama-stack, ~0.7 GB) on a busy 2-core machine
# A rough cost per image on 2 cores (measured: 1-15 s each, llama-stack ~75 s with its 1 GB of
# packages), said before each build so a long wait is expected.
EXPECTED_SECONDS = {
    Base.SCRATCH: 2,
    Base.BOOKWORM: 15,
    Base.BOOKWORM_PY312: 45,
    Base.TRIXIE_PY: 15,
}

Say = Callable[[str], None]


class ImageBuildError(BuildError):
    pass


def archive_path(spec: ImageSpec) -> Path:
    return IMAGES_DIR / f"{spec.safe_name}.tar"


def fingerprint(spec: ImageSpec, inputs: str) -> str:
    """Changes whenever the spec, the assembly code or its files, or the program inputs change."""
    digest = hashlib.sha256()
    digest.update(json.dumps(asdict(spec), sort_keys=True, default=str).encode())
    digest.update(inputs.encode())
    digest.update(f"archive format {ARCHIVE_FORMAT}".encode())
    digest.update(assemble.sources(spec))
    return digest.hexdigest()


def is_current(spec: ImageSpec, print_: str) -> bool:
    archive = archive_path(spec)
    stamp = archive.with_suffix(".stamp")
    return archive.is_file() and stamp.is_file() and stamp.read_text() == print_


def build(spec: ImageSpec, *, base: Path | None, print_: str, say: Say) -> Path:
    """Build `spec` on top of a copy of `base` (None: empty) and commit it to its OCI archive."""
    archive = archive_path(spec)
    archive.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    _fresh_tmp()
    name = f"rag-kube-{spec.safe_name}"
    _buildah("rm", name, check=False)  # left behind by a build that was stopped (make interrupted)
    container = _buildah("from", "--name", name, "scratch").strip()
    try:
        mount = Path(_buildah("mount", container).strip())
        if base is not None:
            _run(["cp", "-a", "--reflink=auto", f"{base}/.", f"{mount}/"])
        assemble.assemble(spec, mount)
        _buildah("umount", container)
        _buildah(*_config_args(spec), container)
        tmp = archive.with_suffix(".tar.tmp")
        tmp.unlink(missing_ok=True)
        # Straight into the archive: no image is kept in buildah's storage, nothing is written twice.
        try:
            _buildah(
                "commit",
                "--quiet",
                "--rm",
                "--disable-compression",
                container,
                f"oci-archive:{tmp}:{spec.normalized_ref}",
            )
        except ImageBuildError as exc:
            raise ImageBuildError(f"{exc}\n({_free_space(BUILDAH_TMP)} at buildah's TMPDIR {BUILDAH_TMP})") from exc
        container = ""
        tmp.rename(archive)
        archive.with_suffix(".stamp").write_text(print_)
    finally:
        if container:
            _buildah("rm", container, check=False)
    size_mb = archive.stat().st_size / 1e6
    say(f"image {spec.ref}: built in {time.monotonic() - started:.0f} s ({size_mb:.0f} MB)")
    return archive


def _fresh_tmp() -> None:
    """Buildah's TMPDIR, emptied of what an earlier (stopped) build left, with room for one build."""
    shutil.rmtree(BUILDAH_TMP, ignore_errors=True)
    BUILDAH_TMP.mkdir(parents=True)
    _require_room(BUILDAH_TMP)


def _require_room(path: Path, need: int = MIN_FREE_BYTES) -> None:
    free = shutil.disk_usage(path).free
    if free < need:
        raise ImageBuildError(
            f"only {_free_space(path)} at {path}, and building an image needs {need / 1024**3:.0f} GB "
            "there (buildah stages its layers and the archive in it): free disk space on that "
            "filesystem, or move .cache/ to a larger one"
        )


def _free_space(path: Path) -> str:
    try:
        return f"{shutil.disk_usage(path).free / 1024**3:.1f} GB free"
    except OSError as exc:
        return f"free space unknown ({exc.strerror})"


def _config_args(spec: ImageSpec) -> list[str]:
    meta = spec.metadata
    args = ["config", "--os", "linux", "--arch", "amd64", "--workingdir", meta.workdir]
    if meta.user is not None:  # no USER upstream: leave it unset (root), as upstream's config has it
        args += ["--user", meta.user]
    # JSON forms: exec form, no shell; an empty list clears the field.
    args += ["--entrypoint", json.dumps(list(meta.entrypoint)), "--cmd", json.dumps(list(meta.cmd))]
    for name, value in meta.env.items():
        args += ["--env", f"{name}={value}"]
    for name, value in spec.labels().items():
        args += ["--label", f"{name}={value}"]
    return args


def _buildah(*args: str, check: bool = True) -> str:
    argv = [
        "buildah",
        "--storage-driver",
        "vfs",
        "--root",
        str(BUILDAH_ROOT / "root"),
        "--runroot",
        str(BUILDAH_ROOT / "run"),
        *args,
    ]
    return _run(argv, check=check, env={**os.environ, "TMPDIR": str(BUILDAH_TMP)})


def _run(argv: list[str], *, check: bool = True, env: dict[str, str] | None = None) -> str:
    if shutil.which(argv[0]) is None:
        raise ImageBuildError(f"{argv[0]} is not installed: run `apt-get install -y {argv[0]}`")
    result = subprocess.run(argv, capture_output=True, text=True, timeout=BUILDAH_TIMEOUT_S, env=env)
    if check and result.returncode != 0:
        raise ImageBuildError(
            f"{' '.join(argv[5:8] if argv[0] == 'buildah' else argv[:3])} failed:\n"
            f"{(result.stderr or result.stdout)[-2000:]}"
        )
    return result.stdout
