"""Mount-path rewriting of the local runner."""

from __future__ import annotations

from pathlib import Path

from harness.local.mounts import rewrite

MAPPING = {"/etc/envoy": Path("/tmp/clone/.cache/runs/x/etc_envoy"), "/tmp": Path("/tmp/clone/.cache/runs/x/tmp")}


def test_a_rewritten_path_is_not_rewritten_again():
    assert rewrite("/etc/envoy/envoy.yaml", MAPPING) == "/tmp/clone/.cache/runs/x/etc_envoy/envoy.yaml"


def test_flag_values_and_exact_paths_are_rewritten():
    assert rewrite("--config=/etc/envoy/a.yaml", MAPPING) == "--config=/tmp/clone/.cache/runs/x/etc_envoy/a.yaml"
    assert rewrite("/tmp", MAPPING) == "/tmp/clone/.cache/runs/x/tmp"


def test_prefixes_that_are_not_path_segments_are_kept():
    assert rewrite("/etc/envoyx/a", MAPPING) == "/etc/envoyx/a"
    assert rewrite("http://example/tmp", MAPPING) == "http://example/tmp"
