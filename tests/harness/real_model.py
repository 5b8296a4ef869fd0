"""The real-model lane's model server: a small instruction model served by llama.cpp.

`make test-model` installs it (scripts/install-model.sh: hash-pinned wheels into
.cache/model/, the GGUF joined from its parts and checked against MODEL_SHA256). The lane runs
`python -m harness.real_model PORT` as one process on 127.0.0.1: llama.cpp's own server
(the xllamacpp wheel), OpenAI-compatible, with `usage` in every answer, so the gateway in front
of it charges it like any model.
"""

from __future__ import annotations

import hashlib
import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from harness.errors import HarnessError, StackNotReady
from harness.http import HEALTH_TIMEOUT_S, TransportError, json_request
from harness.local import processes
from harness.paths import CACHE_DIR
from harness.waiting import Waiter, WaitPolicy

MODEL_DIR = CACHE_DIR / "model"
SITE_DIR = MODEL_DIR / "site"  # the lane's wheels (xllamacpp, the weight parts), pip --target
MODEL_FILE = MODEL_DIR / "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"
# sha256 of the joined GGUF; scripts/install-model.sh checks the same value before use.
MODEL_SHA256 = "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"
MODEL_ID = "qwen2.5-coder-0.5b-instruct"  # the id it serves; tests/model/real-model.yaml registers it
CONTEXT_TOKENS = 4096  # the retrieved chunks plus the question and a short answer
# One thread per phase: llama.cpp's spin-waiting threads starve when the other core is busy.
THREADS = 1
LOAD_TIMEOUT_S = 120.0  # loading 491 MB of weights on a busy 2-core machine
LOAD = WaitPolicy(LOAD_TIMEOUT_S, initial=0.5, cap=1.0)


class ModelNotInstalled(HarnessError):
    pass


class ModelNotReady(StackNotReady):
    pass


def check_installed() -> None:
    """Raises, saying what to run, unless the wheels and the checked model file are in place."""
    if not (SITE_DIR / "xllamacpp").is_dir() or not MODEL_FILE.is_file():
        raise ModelNotInstalled("the real model is not installed: run `make test-model` (into .cache/model)")
    digest = hashlib.sha256()
    with MODEL_FILE.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    if digest.hexdigest() != MODEL_SHA256:
        raise ModelNotInstalled(
            f"{MODEL_FILE} has sha256 {digest.hexdigest()}, expected {MODEL_SHA256}: "
            "delete .cache/model and run `make test-model` again"
        )


@dataclass
class RealModel:
    """One running model server: its port, process id and log."""

    port: int
    pid: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def stop(self) -> None:
        processes.stop(self.pid)


def start(port: int, log: Path) -> RealModel:
    """Start the model server on 127.0.0.1:`port`; returns once it lists its model."""
    check_installed()
    print(f"[model] starting llama.cpp with {MODEL_FILE.name} on 127.0.0.1:{port}", flush=True)
    env = {"OMP_WAIT_POLICY": "PASSIVE", "PYTHONPATH": os.pathsep.join([str(SITE_DIR), *sys.path[1:]])}
    argv = [sys.executable, "-m", "harness.real_model", str(port)]
    running = processes.start("real-model", argv, env, log, log.parent, None)
    model = RealModel(port, running.pid, log)
    try:
        ready = Waiter().retrying(LOAD, on_result=lambda ok: not ok)(_ready, model)
    except BaseException:
        model.stop()
        raise
    if not ready:
        model.stop()
        raise ModelNotReady(
            f"the real model did not answer on 127.0.0.1:{port} within {LOAD_TIMEOUT_S:.0f}s",
            detail=processes.log_tail(log),
        )
    return model


def _ready(model: RealModel) -> bool:
    if not processes.alive(model.pid):
        raise ModelNotReady("the real model's server exited", detail=processes.log_tail(model.log))
    try:
        status, _ = json_request("GET", f"{model.url}/models", timeout=HEALTH_TIMEOUT_S)
    except TransportError:
        return False
    return status == 200


def serve(port: int) -> None:
    """Run llama.cpp's server in this process until SIGTERM."""
    import xllamacpp as xlc  # from SITE_DIR, installed only for this lane

    params = xlc.CommonParams()
    params.model.path = str(MODEL_FILE)
    params.model_alias = {MODEL_ID}  # a set: xllamacpp rejects a plain string
    params.hostnames = ["127.0.0.1"]
    params.port = port
    params.n_ctx = CONTEXT_TOKENS
    params.n_parallel = 1
    params.cpuparams.n_threads = THREADS
    params.cpuparams_batch.n_threads = THREADS
    params.use_jinja = True
    server = xlc.Server(params)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"[model] serving {MODEL_ID} on 127.0.0.1:{port}", flush=True)
    try:
        while True:
            time.sleep(3600)
    finally:
        del server


if __name__ == "__main__":
    serve(int(sys.argv[1]))
