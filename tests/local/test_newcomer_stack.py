"""A newcomer's local stack, driven only through make, the scripts and `python -m harness`.

One stack, started by `make up VALUES=...` in its own runs folder, serves the tests in file
order; the last test takes it down with `make down` and `make clean` and checks that nothing
of the run is left, in the repository or under the system temp directory (the commands get a
temp directory of their own through TMPDIR, so other programs' files do not count).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import yaml
from harness import llama_stack_auth
from harness.endpoints import Endpoints
from harness.local import postgres
from harness.paths import REPO_ROOT

pytestmark = pytest.mark.local

COMMAND_TIMEOUT_S = 600  # `make up` bootstraps (idempotent) and starts seven programs
HTTP_TIMEOUT_S = 60.0  # a chat through llama-stack on a busy 2-core machine
RUN_NAME = "newcomer"
FREE_TOKENS = 50  # differs from values/local.yaml's 200: proves the overlay reached the gateway
OVERLAY = {
    "maas-gateway": {
        "tiers": {"free": {"tokens": {"limit": FREE_TOKENS, "window": "1m"}, "requests": {"limit": 5, "window": "2m"}}}
    },
    "global": {
        "models": {
            # Written as in a cluster overlay / values/local.yaml: the chart's default ports. A public id
            # names one entry (values/local.yaml's `maas` is simulated-model): each has its own and
            # reaches the simulator's simulated-model as its upstreamModel: through the gateway, which
            # renames it (llama-stack lists it by its public id), or called directly by llama-stack
            # (`external`: the gateway neither lists nor routes it).
            "second": {
                "id": "second-model", "upstreamModel": "simulated-model",
                "url": "http://127.0.0.1:8080/v1", "provider": "vllm",
            },
            "direct": {
                "id": "direct-model", "upstreamModel": "simulated-model",
                "url": "http://127.0.0.1:8000/v1", "provider": "vllm", "external": True,
            },
        }
    },
}  # fmt: skip


@dataclass
class Stack:
    env: dict[str, str]
    runs_dir: Path
    overlay: Path
    tmpdir: Path  # the commands' TMPDIR

    def run(self, *argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            list(argv), cwd=REPO_ROOT, env=self.env, capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S
        )

    def harness(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self.run(sys.executable, "-m", "harness", *args)

    def status(self) -> dict:
        result = self.harness("status")
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("newcomer")
    overlay = root / "newcomer.yaml"
    overlay.write_text(yaml.safe_dump(OVERLAY))
    # Not under pytest's 0700 basetemp: as root, PostgreSQL runs as `nobody` and must reach it.
    tmpdir = Path(tempfile.mkdtemp(prefix="rag-newcomer-tmp-"))
    tmpdir.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAG_", "PYTEST_"))}
    env |= {"RAG_RUNS_DIR": str(root / "runs"), "RAG_RUN_NAME": RUN_NAME, "TMPDIR": str(tmpdir)}
    env["MAAS_ENDPOINT"] = ""  # about the commands and values: no stand-in MaaS (`make e2e`'s default)
    started = Stack(env, root / "runs", overlay, tmpdir)
    try:
        result = started.run("make", "up", f"VALUES={overlay}")
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        yield started
    finally:
        started.run("make", "down")
        shutil.rmtree(tmpdir, ignore_errors=True)


def test_make_up_applies_the_values_overlay(stack: Stack) -> None:
    status = stack.status()
    free_key = status["keys"]["free"][0]
    response = httpx.post(
        f"{status['gateway_url']}/v1/chat/completions",
        headers={"Authorization": f"Bearer {free_key}"},
        json={"model": "simulated-model", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5},
        timeout=HTTP_TIMEOUT_S,
    )
    assert response.status_code == 200, response.text
    assert response.headers["x-ratelimit-limit-tokens"] == str(FREE_TOKENS)


@pytest.mark.parametrize("model", ["second/second-model", "direct/simulated-model"])
def test_a_model_added_by_overlay_answers_through_llama_stack(stack: Stack, model: str) -> None:
    status = stack.status()
    assert model in status["llama_stack_models"]
    # llama-stack authenticates every call: the harness's key, forwarded for the model call too.
    key = Endpoints.from_json(json.dumps(status)).llama_stack_key()
    response = httpx.post(
        f"{status['llama_stack_url']}/v1/chat/completions",
        json={"model": model, "messages": [{"role": "user", "content": "hello"}], "max_tokens": 5},
        headers=llama_stack_auth.caller_headers(key),
        timeout=HTTP_TIMEOUT_S,
    )
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"]


def test_e2e_refuses_a_stack_started_with_other_values(stack: Stack) -> None:
    result = stack.run("make", "e2e", "PYTEST_ARGS=-p no:cacheprovider")
    out = result.stdout + result.stderr
    assert result.returncode != 0, out
    lines = [line for line in out.splitlines() if "does not match this run" in line]
    assert len(lines) == 1, out
    assert str(stack.overlay) in lines[0] and "no extra values" in lines[0]
    assert "ERROR at setup" not in out and " passed" not in out, out


def test_e2e_with_the_same_values_reuses_the_stack(stack: Stack) -> None:
    before = stack.status()["llama_stack_url"]
    # One quick e2e test: what is claimed is the reuse, which any test shows.
    quick = "PYTEST_ARGS=-k test_gateway_lists_the_declared_models -p no:cacheprovider"
    result = stack.run("make", "e2e", f"VALUES={stack.overlay}", quick)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "deploying" not in result.stdout and " passed" in result.stdout
    assert stack.status()["llama_stack_url"] == before


def test_verify_without_target_checks_the_running_local_stack(stack: Stack) -> None:
    result = stack.run("scripts/verify-install.sh")
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"[harness] target local: a local stack named {RUN_NAME!r} is running" in result.stderr
    assert "checks OK" in result.stdout


def test_register_gives_llama_stack_no_gateway_key(stack: Stack) -> None:
    """No service key: a model of the stack's own gateway is called with each caller's key, so
    registration puts no key of the gateway into llama-stack (there is none to misuse elsewhere)."""
    keys = stack.status()["keys"]
    result = stack.harness("register", "--model", "simulated-model")
    assert result.returncode == 0, result.stdout + result.stderr
    applied = json.loads((stack.runs_dir / RUN_NAME / "values" / "models.yaml").read_text())
    entries = [entry for entry in applied["global"]["models"].values() if entry]
    # The values already declare the public id simulated-model: the registered entry has a public id
    # of its own and calls the server's simulated-model as its upstreamModel.
    served = [entry for entry in entries if (entry.get("upstreamModel") or entry.get("id")) == "simulated-model"]
    assert any(entry.get("provider") == "vllm" for entry in served), entries
    gateway_keys = {k for ks in keys.values() for k in ks}
    held = {entry.get("apiToken") for entry in entries} & gateway_keys
    assert not held, f"llama-stack was given {len(held)} gateway key(s) by registration"


def test_down_and_clean_leave_nothing_of_the_run(stack: Stack) -> None:
    staging = stack.tmpdir / postgres.staging_dir(stack.runs_dir / RUN_NAME).relative_to(tempfile.gettempdir())
    if os.geteuid() == 0:  # only root stages PostgreSQL under the temp dir (it runs as nobody)
        assert staging.is_dir(), f"the running stack's PostgreSQL staging folder {staging} was expected"
    down = stack.run("make", "down")
    assert down.returncode == 0, down.stderr
    assert not staging.exists(), f"make down left {staging}"
    clean = stack.run("make", "clean")
    assert clean.returncode == 0, clean.stderr
    assert "kept" not in clean.stdout + clean.stderr
    assert not stack.runs_dir.exists()
    # pytest-of-*: the basetemp of the nested `make e2e` runs above, not the stack's.
    left = [p.name for p in stack.tmpdir.iterdir() if not p.name.startswith("pytest-of-")]
    assert left == [], f"left under the temp dir: {left}"
