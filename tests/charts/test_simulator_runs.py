"""The real llm-d-inference-sim accepts what the vllm-gpu chart renders for it.

For every render that deploys the simulator (each values/ overlay that enables it, and the
vllm-gpu chart's own simulator mode), the binary `make bootstrap` built from the pinned Go
module is started with exactly the container's rendered command and args (the port value set
to a free one, through the chart's own `port` value). It must stay up and serve `/v1/models`
on loopback with the model names the args give it: a flag the simulator rejects makes it exit.
"""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from harness import inference_sim
from harness.paths import CHARTS_DIR
from harness.tools import require

from charts.cases import CASES, Case, render_ok
from charts.helm import HelmBinary, Renderer
from charts.layout import UMBRELLA
from charts.manifests import Container, containers, parse_flags

pytestmark = pytest.mark.charts

SIMULATOR_IMAGE = "ghcr.io/llm-d/llm-d-inference-sim"
STARTUP_TIMEOUT_S = 30.0  # a 77 MB static binary; the two cores are shared with other test runs
STAY_UP_S = 1.0  # after the first answer: a late fatal config check would end it by then
REQUEST_TIMEOUT_S = 5.0
STOP_TIMEOUT_S = 10.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def simulator_containers(renderer: Renderer, helm: HelmBinary, case: Case, port: int | None = None) -> list[Container]:
    """The simulator containers of the case's render (with the model-server port set when given)."""
    key = "vllm-gpu.port" if case.chart == UMBRELLA else "port"
    sets = (f"{key}={port}",) if port is not None else ()
    docs = render_ok(renderer, helm, case.chart, case.overlay, case.values, sets=sets)
    # The umbrella's second model server (vllm-gpu-2) is the same chart and template with its own
    # values; the case checks the first one, whose port it set.
    return [
        c
        for c in containers(docs)
        if str(c.spec.get("image", "")).startswith(SIMULATOR_IMAGE + ":") and not c.owner.endswith("-vllm-gpu-2")
    ]


def _deploys_simulator(case: Case) -> bool:
    """Whether the case enables simulator mode: the chart's defaults, then the case's values
    (decided from values files, so collecting the tests renders nothing)."""
    values = dict(case.values or {})
    if case.overlay is not None:
        values = yaml.safe_load(case.overlay.read_text()) or {}
    if case.chart == UMBRELLA:
        model_server = _defaults(UMBRELLA).get("vllm-gpu", {}) | (values.get("vllm-gpu") or {})
        return model_server.get("enabled", True) is not False and model_server.get("mode") == "simulator"
    return case.chart == "vllm-gpu" and (_defaults("vllm-gpu") | values).get("mode") == "simulator"


def _defaults(chart: str) -> dict[str, Any]:
    return yaml.safe_load((CHARTS_DIR / chart / "values.yaml").read_text()) or {}


SIMULATOR_CASES = [c for c in CASES if _deploys_simulator(c)]


def served_names(argv: list[str]) -> set[str]:
    """The model names the simulator serves for these args: --served-model-name's list, else --model."""
    if "--served-model-name" in argv:
        names: list[str] = []
        for arg in argv[argv.index("--served-model-name") + 1 :]:
            if arg.startswith("--"):
                break
            names.append(arg)
        return set(names)
    return {parse_flags(argv)["model"]}


def run_rendered(argv: list[str], env: dict[str, str], port: int, log: Path) -> set[str]:
    """Start the simulator with `argv` (the image's entrypoint swapped for the built binary); return the
    model ids /v1/models lists once it answers, after checking it is still running. Fails the test,
    quoting the simulator's own output, when it exits or never answers."""
    binary = require(inference_sim.NAME)
    full_env = {"PATH": "/usr/bin:/bin", **env, inference_sim.LISTEN_HOST_ENV: "127.0.0.1"}
    with log.open("wb") as out:
        proc = subprocess.Popen([str(binary), *argv[1:]], stdout=out, stderr=subprocess.STDOUT, env=full_env)
    try:
        listed = _wait_for_models(proc, port, log)
        time.sleep(STAY_UP_S)
        assert proc.poll() is None, f"the simulator exited ({proc.returncode}) after answering:\n{_tail(log)}"
        return listed
    finally:
        proc.terminate()
        try:
            proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _wait_for_models(proc: subprocess.Popen[bytes], port: int, log: Path) -> set[str]:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    url = f"http://127.0.0.1:{port}/v1/models"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(
                f"the simulator exited ({proc.returncode}) with the rendered args:\n{_tail(log)}", pytrace=False
            )
        try:
            response = httpx.get(url, timeout=REQUEST_TIMEOUT_S)
        except httpx.TransportError:
            time.sleep(0.2)
            continue
        assert response.status_code == 200, f"GET {url}: HTTP {response.status_code} {response.text[:300]}"
        return {m["id"] for m in response.json()["data"]}
    pytest.fail(f"the simulator did not answer {url} within {STARTUP_TIMEOUT_S:.0f}s:\n{_tail(log)}", pytrace=False)


def _tail(log: Path) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-15:])


def test_every_overlay_that_enables_the_simulator_is_checked() -> None:
    ids = {c.id for c in SIMULATOR_CASES}
    assert {f"{UMBRELLA}-local", f"{UMBRELLA}-kind", f"{UMBRELLA}-maas-standin", "vllm-gpu-simulator"} <= ids, ids
    assert not ids & {f"{UMBRELLA}-gpu-t4", f"{UMBRELLA}-kind-maas", "vllm-gpu-defaults"}, ids


@pytest.mark.parametrize("case", SIMULATOR_CASES, ids=[c.id for c in SIMULATOR_CASES])
def test_simulator_runs_with_the_rendered_args(
    helm4: HelmBinary, renderer: Renderer, case: Case, tmp_path: Path
) -> None:
    port = free_port()
    found = simulator_containers(renderer, helm4, case, port)
    assert len(found) == 1, f"{case.id}: expected one simulator container, got {[c.where for c in found]}"
    container = found[0]
    argv = container.argv
    assert parse_flags(argv).get("port") == str(port), f"{case.id}: the port value does not reach --port: {argv}"
    env = {e["name"]: str(e["value"]) for e in container.spec.get("env") or [] if "value" in e}
    listed = run_rendered(argv, env, port, tmp_path / "simulator.log")
    assert listed == served_names(argv), f"{case.id}: /v1/models lists {sorted(listed)} for {argv}"
