"""`down` leaves nothing of the lane behind, and `up`, `down`, `up`, `down` works.

Runs last (it tears the session's cluster down). Each cycle starts the cluster with only the
pause image and runs one pod, so there really are pod mounts, a pod netns, shims, CNI rules
and kubepods cgroups for `down` to remove; the checks look for them from the machine's side.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from harness.kube import binaries, netns, teardown
from harness.kube import cluster as cluster_module
from harness.kube.cluster import RUN_DIR, Cluster
from harness.kube.config import SANDBOX_IMAGE, Layout
from harness.paths import REPO_ROOT

pytestmark = [pytest.mark.kube, pytest.mark.lane_teardown]

POD = """apiVersion: v1
kind: Pod
metadata: {name: cleanup-probe, namespace: default}
spec:
  securityContext: {runAsNonRoot: true, runAsUser: 65535, seccompProfile: {type: RuntimeDefault}}
  containers:
    - name: pause
      image: %s
      imagePullPolicy: Never
      securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}
"""


def leftovers() -> list[str]:
    """Everything of the lane still on the machine, one line each."""
    layout = Layout(RUN_DIR)
    found = [f"process {pid}: {teardown.cmdline(pid)[:120]}" for pid in teardown.lane_processes(layout)]
    found += [f"mount {point}" for point in teardown.mounts_under(RUN_DIR) + teardown.mounts_under(layout.image_store)]
    found += [f"cgroup {folder}" for folder in teardown.kubepods_dirs()]
    found += [f"shim socket {sock}" for _, sock in teardown.shims(layout)]
    if netns.NAME in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout:
        found.append(f"netns {netns.NAME}")
    host_links = _in_host_net(["ip", "-o", "link"])
    found += [f"host link {line.split(':')[1].strip()}" for line in host_links.splitlines() if "rk-" in line]
    rules = _in_host_net(["iptables-save"])
    found += [f"host iptables {line}" for line in rules.splitlines() if "KUBE-" in line or "CNI-" in line]
    if RUN_DIR.exists():
        found.append(f"run folder {RUN_DIR}")
    return found


def _in_host_net(argv: list[str]) -> str:
    """Run argv in the network namespace this test process started in (the machine's own)."""
    proc = subprocess.run(
        ["nsenter", f"--net={netns.original()}", "--", *argv], capture_output=True, text=True, check=True
    )
    return proc.stdout


def cli_down() -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT / "tests")}
    proc = subprocess.run(
        [sys.executable, "-m", "harness", "down", "--target", "kube"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, f"`python -m harness down --target kube` failed:\n{proc.stdout}\n{proc.stderr}"


def start_cluster_with_a_pod(pause: Path) -> Cluster:
    cluster = Cluster(RUN_DIR)
    cluster.up([pause])
    cluster.kubectl("apply", "-f", "-", input=POD % SANDBOX_IMAGE)
    cluster.kubectl("wait", "pod/cleanup-probe", "--for=condition=Ready", "--timeout=120s")
    return cluster


def test_down_leaves_nothing_and_up_down_repeats(harness_state) -> None:
    from harness.kube.images import ensure_images

    if harness_state.target is not None:
        harness_state.target.close()
    # The stand-in MaaS (MAAS_ENDPOINT=standin) runs in the lane's namespace: stop it as its session would.
    harness_state.stop_standin_now()
    cli_down()
    assert leftovers() == [], "after the session's down"
    pause = next(p for p in ensure_images(say=print) if "pause" in p.name)
    binaries.ensure_binaries(print)
    for cycle in (1, 2):
        start_cluster_with_a_pod(pause)
        running = leftovers()
        assert any(line.startswith("mount ") for line in running), f"cycle {cycle}: no pod mounts to clean up?"
        assert any(line.startswith("process ") for line in running), f"cycle {cycle}: no processes to clean up?"
        assert cluster_module.network_policy_chains_exist(), f"cycle {cycle}: no NetworkPolicy chains to clean up?"
        cli_down()
        assert leftovers() == [], f"cycle {cycle}: after down"
