"""The local key store keeps what `harness keys` wrote for a gateway that restarts (its mounts are
rendered from the values again), as the chart keeps a managed key Secret across upgrades."""

from __future__ import annotations

from pathlib import Path

from harness.gateway_keys import KeyRecord
from harness.local.key_files import KEYS_MOUNT, LocalKeyFiles, carry_over, managed_copy
from harness.local.state import RunFolder


def gateway_mounts(tmp_path: Path) -> tuple[RunFolder, Path, Path]:
    """A run folder whose gateway container has the key file the values render (a dev key)."""
    run = RunFolder("unit", tmp_path / "run")
    container = run.mounts_dir / "rag-maas-gateway-envoy"
    key_file = container / KEYS_MOUNT / "api-keys"
    key_file.parent.mkdir(parents=True)
    key_file.write_text("free dev dev-key\n")
    return run, container, key_file


def test_a_restarted_gateway_gets_the_key_file_harness_keys_wrote(tmp_path: Path) -> None:
    run, container, key_file = gateway_mounts(tmp_path)
    store = LocalKeyFiles(key_file, tmp_path / "hmac", managed_copy(run), ["free"], 5)
    store.write([KeyRecord("free", "alice", hash="a" * 64)])
    key_file.write_text("free dev dev-key\n")  # the restart renders the values' key file again
    carry_over(run, container)
    assert "alice hmac-sha256:" + "a" * 64 in key_file.read_text()
    assert key_file.stat().st_mode & 0o777 == 0o600 and managed_copy(run).stat().st_mode & 0o777 == 0o600


def test_without_a_managed_copy_or_a_key_mount_nothing_changes(tmp_path: Path) -> None:
    run, container, key_file = gateway_mounts(tmp_path)
    carry_over(run, container)
    assert key_file.read_text() == "free dev dev-key\n"
    managed_copy(run).parent.mkdir(parents=True)
    managed_copy(run).write_text("free alice k\n")
    carry_over(run, run.mounts_dir / "rag-pgvector")
    assert not (run.mounts_dir / "rag-pgvector").exists()
