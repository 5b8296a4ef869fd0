"""Materialise a container's volume mounts under the run folder and point its args and env at them."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

from harness.local.pods import ContainerSpec


def materialise(spec: ContainerSpec, root: Path, volumes: Path | None = None) -> ContainerSpec:
    """Write mounted files below root/<container>/ and return the spec with paths rewritten.

    A PersistentVolumeClaim mount maps to volumes/<claim>/ instead (default root/../volumes):
    like a bound volume, it is shared by the pod's containers and kept across restarts.
    """
    volumes = volumes or root.parent / "volumes"
    mapping: dict[str, Path] = {}
    for mount in spec.mounts:
        if mount.claim:
            mapping[mount.path] = volumes / mount.claim
        else:
            mapping[mount.path] = root / spec.name / mount.path.strip("/").replace("/", "_")
    for mount in spec.mounts:
        local = mapping[mount.path]
        # A config file naming a mounted path (Envoy's certificate files) must name the local copy.
        files = {name: _rewrite_text(data, mapping) if mount.config else data for name, data in mount.files.items()}
        if mount.claim:
            local.mkdir(parents=True, exist_ok=True)
        elif mount.sub_path:
            _write(local, files[mount.sub_path])
        else:
            local.mkdir(parents=True, exist_ok=True)
            for name, content in files.items():
                _write(local / name, content)
    return replace(
        spec,
        init=[materialise(init, root, volumes) for init in spec.init],
        command=[rewrite(a, mapping) for a in spec.command],
        args=[rewrite(a, mapping) for a in spec.args],
        env={k: rewrite(v, mapping) for k, v in spec.env.items()},
    )


def rewrite(value: str, mapping: dict[str, Path]) -> str:
    """Replace a mount path where it starts a path inside value (`/etc/x/y`, `--c=/etc/x`, a
    quoted `"/etc/x/y"` in a config file).

    One pass over all mount paths (longest first), so a replacement is never rewritten again
    (a run folder under /tmp must survive a container that also mounts /tmp).
    """
    if not mapping:
        return value
    paths = {p.rstrip("/") or "/": local for p, local in mapping.items()}
    alternatives = "|".join(re.escape(p) for p in sorted(paths, key=len, reverse=True))
    pattern = rf"(^|[=:,\s\"'])({alternatives})(?=/|$|[\s,:\"'])"
    return re.sub(pattern, lambda m: m.group(1) + str(paths[m.group(2)]), value)


def _rewrite_text(data: bytes, mapping: dict[str, Path]) -> bytes:
    try:
        return rewrite(data.decode(), mapping).encode()
    except UnicodeDecodeError:
        return data


def _write(path: Path, content: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    path.chmod(0o600)  # mounted Secrets (API keys) land here too
