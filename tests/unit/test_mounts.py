"""Mount-path rewriting of the local runner."""

from __future__ import annotations

from pathlib import Path

from harness.local.mounts import materialise, rewrite
from harness.local.pods import ContainerSpec, Mount

MAPPING = {"/etc/envoy": Path("/tmp/clone/.cache/runs/x/etc_envoy"), "/tmp": Path("/tmp/clone/.cache/runs/x/tmp")}


def test_a_rewritten_path_is_not_rewritten_again():
    assert rewrite("/etc/envoy/envoy.yaml", MAPPING) == "/tmp/clone/.cache/runs/x/etc_envoy/envoy.yaml"


def test_flag_values_and_exact_paths_are_rewritten():
    assert rewrite("--config=/etc/envoy/a.yaml", MAPPING) == "--config=/tmp/clone/.cache/runs/x/etc_envoy/a.yaml"
    assert rewrite("/tmp", MAPPING) == "/tmp/clone/.cache/runs/x/tmp"


def test_quoted_paths_in_config_files_are_rewritten():
    """Envoy's config names a CA file quoted (`trusted_ca: {filename: "/etc/envoy/ca.crt"}`)."""
    local = "/tmp/clone/.cache/runs/x/etc_envoy/ca.crt"
    assert rewrite('{filename: "/etc/envoy/ca.crt"}', MAPPING) == f'{{filename: "{local}"}}'
    assert rewrite("path: '/etc/envoy/ca.crt'", MAPPING) == f"path: '{local}'"


def test_prefixes_that_are_not_path_segments_are_kept():
    assert rewrite("/etc/envoyx/a", MAPPING) == "/etc/envoyx/a"
    assert rewrite("http://example/tmp", MAPPING) == "http://example/tmp"


def _spec(mounts: list[Mount]) -> ContainerSpec:
    return ContainerSpec("llama-stack", "rag-llama-stack", "img", ["llama"], [], {"DATA": "/data"}, mounts)


def test_a_claim_lives_outside_the_container_folder_and_survives_a_fresh_pod(tmp_path: Path):
    claim = Mount("/data", {}, claim="rag-llama-stack-data")
    spec = materialise(_spec([claim]), tmp_path / "mounts", tmp_path / "volumes")
    data = tmp_path / "volumes" / "rag-llama-stack-data"
    assert spec.env["DATA"] == str(data) and data.is_dir()
    (data / "kvstore.db").write_text("user data")
    materialise(_spec([claim]), tmp_path / "mounts", tmp_path / "volumes")
    assert (data / "kvstore.db").read_text() == "user data"


def test_config_files_name_the_local_copy_of_other_mounts(tmp_path: Path):
    config = Mount("/etc/envoy", {"envoy.yaml": b"certificate_chain: {filename: /etc/envoy-tls/tls.crt}"}, config=True)
    secret = Mount("/etc/envoy-tls", {"tls.crt": b"PEM /etc/envoy-tls stays"})
    materialise(_spec([config, secret]), tmp_path)
    written = (tmp_path / "rag-llama-stack" / "etc_envoy" / "envoy.yaml").read_text()
    assert written == f"certificate_chain: {{filename: {tmp_path}/rag-llama-stack/etc_envoy-tls/tls.crt}}"
    assert (tmp_path / "rag-llama-stack" / "etc_envoy-tls" / "tls.crt").read_bytes() == b"PEM /etc/envoy-tls stays"


def test_init_containers_share_the_pods_claims(tmp_path: Path):
    claim = Mount("/data", {}, claim="rag-llama-stack-data")
    init = ContainerSpec("llama-stack", "rag-prune", "img", ["python", "/data/x"], [], {}, [claim])
    spec = _spec([claim])
    spec.init = [init]
    done = materialise(spec, tmp_path / "mounts", tmp_path / "volumes")
    assert done.init[0].command[1] == str(tmp_path / "volumes" / "rag-llama-stack-data" / "x")
