"""Meta: the lane catches a chart that renders fine but cannot run, and its diagnostics say why.

The model server's readiness probe is pointed at a path the simulator answers with 404: helm
renders and installs it, the pod runs, and it never becomes Ready. The same install, rollout
wait and diagnostics code the lane uses must then fail, and the bundle must name the pod and
the probe's 404.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from harness.cluster.deploy import ClusterDeployment
from harness.cluster.runner import SubprocessRunner
from harness.kube.config import CONTEXT
from harness.paths import chart, values_file
from harness.targets.kube import restricted_namespace
from harness.waiting import Waiter, WaitPolicy, WaitTimeout

pytestmark = [pytest.mark.kube, pytest.mark.meta]

NAMESPACE = "rag-kube-meta"
RELEASE = "broken"
BROKEN_PATH = "/health-broken-on-purpose"
ROLLOUT_TIMEOUT_S = 90  # the probe fails within 15 s (3 x 5 s); the rest is slack for a busy machine


def broken_model_server_chart(dest: Path) -> Path:
    """A copy of charts/vllm-gpu whose simulator readiness probe asks a path that answers 404."""
    copy = dest / "vllm-gpu"
    shutil.copytree(chart("vllm-gpu"), copy)
    template = copy / "templates" / "deployment.yaml"
    text = template.read_text()
    probe = "          readinessProbe:\n            httpGet:\n              path: /health\n"
    assert probe in text, "the simulator's readiness probe moved: update this meta test"
    template.write_text(text.replace(probe, probe.replace("/health", BROKEN_PATH)))
    return copy


def test_unready_pod_fails_the_lane_and_diagnostics_name_pod_and_reason(endpoints, target, tmp_path) -> None:
    kind_values = yaml.safe_load(values_file("kind").read_text())
    values = tmp_path / "values.yaml"
    values.write_text(yaml.safe_dump(kind_values["vllm-gpu"]))
    runner = SubprocessRunner()
    restricted_namespace(runner, NAMESPACE)
    deployment = ClusterDeployment(
        runner, Waiter(), NAMESPACE, CONTEXT, RELEASE, chart_dir=broken_model_server_chart(tmp_path),
        rollout_policy=WaitPolicy(timeout=ROLLOUT_TIMEOUT_S, initial=2, cap=10),
    )  # fmt: skip
    try:
        deployment.install([values])
        with pytest.raises(WaitTimeout):
            deployment.wait()
        bundle = deployment.diagnose(tmp_path / "diagnostics")
        described = sorted((bundle / "pods").glob(f"{RELEASE}-*.describe.txt"))
        assert described, f"no describe output for the unready pod in {bundle}"
        story = described[0].read_text()
        assert "Readiness probe failed" in story and "404" in story, story[-2000:]
        pod = described[0].name.removesuffix(".describe.txt")
        assert "Name:" in story and pod in story, f"describe output does not name pod {pod}"
    finally:
        deployment.uninstall(delete_namespace=True)
