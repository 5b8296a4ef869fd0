"""Acceptance 5: vllm-gpu presets. T4 carries every known workaround; every GPU preset requests
nvidia.com/gpu and tolerates the GPU taint; simulator mode requests no GPU."""

from __future__ import annotations

import pytest

from charts.cases import render_ok
from charts.helm import HelmBinary, Renderer
from charts.manifests import Container, Obj, containers, parse_flags, pod_spec, ref, workloads

pytestmark = pytest.mark.charts

GPU = "nvidia.com/gpu"
GPU_PRESETS = ("t4", "a100", "h100")
# Flag -> value the T4 preset must pass to vLLM (Turing: no bf16, no FlashAttention 2, 16 GB).
T4_FLAGS = {"enforce-eager": "", "dtype": "float16", "max-model-len": "4096", "max-num-seqs": "32"}


def render(renderer: Renderer, helm: HelmBinary, **values: str) -> list[Obj]:
    return render_ok(renderer, helm, "vllm-gpu", values=dict(values))


def server(docs: list[Obj]) -> Container:
    """The long-running server container of the chart's Deployment."""
    found = [c for c in containers(docs) if c.section == "containers" and not c.owner.startswith("Pod/")]
    assert len(found) == 1, f"expected one server container, got {[c.where for c in found]}"
    return found[0]


def env_value(c: Container, name: str) -> str | None:
    entry = c.env().get(name)
    return None if entry is None else str(entry.get("value", ""))


def test_t4_preset_renders_every_workaround(helm: HelmBinary, renderer: Renderer) -> None:
    c = server(render(renderer, helm, mode="gpu", preset="t4"))
    repo, _, tag = c.spec["image"].rpartition(":")
    assert (repo.endswith("vllm-openai") and tag and tag != "latest") or "@sha256:" in c.spec["image"], (
        f"T4 image must be a pinned vllm-openai tag or digest: {c.spec['image']}"
    )
    # What selects attention on NVIDIA: the V0 engine with xFormers (vllm/platforms/cuda.py).
    assert env_value(c, "VLLM_USE_V1") == "0", "T4 needs the V0 engine"
    assert env_value(c, "VLLM_ATTENTION_BACKEND") == "XFORMERS"
    # Only vLLM's ROCm backends read this variable; on NVIDIA it would only mislead.
    assert env_value(c, "VLLM_USE_TRITON_FLASH_ATTN") is None, "T4 preset sets the ROCm-only VLLM_USE_TRITON_FLASH_ATTN"
    flags = parse_flags(c.argv)
    for flag, value in T4_FLAGS.items():
        assert flag in flags, f"--{flag} missing from {c.argv}"
        assert flags[flag] == value, f"--{flag}={flags[flag]!r}, want {value!r}"


def test_t4_pins_an_image_other_presets_do_not_share(helm: HelmBinary, renderer: Renderer) -> None:
    """The T4 workarounds need an older vLLM than the other presets (xFormers/V0 paths)."""
    t4 = server(render(renderer, helm, mode="gpu", preset="t4")).spec["image"]
    a100 = server(render(renderer, helm, mode="gpu", preset="a100")).spec["image"]
    assert t4 != a100, f"t4 and a100 use the same image {t4}"


@pytest.mark.parametrize("preset", GPU_PRESETS)
def test_gpu_preset_requests_and_tolerates_gpu(helm: HelmBinary, renderer: Renderer, preset: str) -> None:
    docs = render(renderer, helm, mode="gpu", preset=preset)
    c = server(docs)
    limits = (c.spec.get("resources") or {}).get("limits") or {}
    requests = (c.spec.get("resources") or {}).get("requests") or {}
    assert int(limits.get(GPU, 0)) >= 1, f"{c.where}: no {GPU} limit: {c.spec.get('resources')}"
    assert requests.get(GPU, limits[GPU]) == limits[GPU], "GPU request must equal the limit"
    owner = next(w for w in workloads(docs) if ref(w) == c.owner)
    tolerations = (pod_spec(owner) or {}).get("tolerations") or []
    assert any(
        t.get("key") == GPU
        and (t.get("operator") == "Exists" or t.get("value"))
        and t.get("effect") in (None, "", "NoSchedule")
        for t in tolerations
    ), f"{c.owner}: no toleration for the {GPU} taint: {tolerations}"


@pytest.mark.parametrize("preset", GPU_PRESETS)
def test_gpu_preset_probes_allow_slow_model_loads(helm: HelmBinary, renderer: Renderer, preset: str) -> None:
    """Weights download before the server listens: the startup probe must allow at least 10 minutes."""
    c = server(render(renderer, helm, mode="gpu", preset=preset))
    startup = c.spec.get("startupProbe") or {}
    period, failures = startup.get("periodSeconds", 10), startup.get("failureThreshold", 3)
    budget = period * failures + startup.get("initialDelaySeconds", 0)
    assert startup and budget >= 600, f"startupProbe allows only {budget}s: {startup}"
    assert c.spec.get("readinessProbe"), "no readinessProbe"


def test_simulator_requests_no_gpu(helm: HelmBinary, renderer: Renderer) -> None:
    docs = render(renderer, helm, mode="simulator")
    c = server(docs)
    assert "llm-d-inference-sim" in c.spec["image"], f"simulator mode runs {c.spec['image']}"
    for each in containers(docs):
        resources = each.spec.get("resources") or {}
        for section in ("requests", "limits"):
            assert GPU not in (resources.get(section) or {}), f"{each.where} {section} {GPU} in simulator mode"
