"""`python -m harness models check|sync`, run as a user runs it (a subprocess), on any target.

- On the e2e stack the check exits 0.
- A model removed from llama-stack only (the registration path's removal: llama-stack 0.7 has no
  unregister route, and the values still declare the model) makes it exit 1, naming the model and
  llama-stack; `models sync` registers it again and the check passes.
- A model added to the gateway only makes it exit 1, naming the model and the gateway. The gateway
  gets it the way a gateway-only catalog change reaches a release: an entry under the maas-gateway
  subchart's own `global.models` (Helm gives a subchart's globals to that subchart alone), with
  routing by model on so the gateway lists its catalog; the gateway alone restarts, and the
  fixture restores it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from harness import model_drift, registration
from harness.capabilities import Capability
from harness.cluster.target import ClusterTarget
from harness.models_cli import stack_of
from harness.paths import REPO_ROOT
from harness.targets import Target

pytestmark = pytest.mark.e2e

CLI_TIMEOUT_S = 300  # `models sync` restarts llama-stack (local) or runs helm upgrade (cluster) and waits
# How the tests run the CLI; a meta test's plugin replaces it to run the CLI with a mechanism broken.
HARNESS = [sys.executable, "-m", "harness"]
PROBE_ID = "drift-probe-model"
# A catalog entry only the gateway sees (see the module docstring); served by the stack's default model server.
GATEWAY_ONLY = {
    "maas-gateway": {
        "routing": {"byModel": True},
        "global": {"models": {"drift-probe": {"id": PROBE_ID, "url": "http://127.0.0.1:8080/v1"}}},
    }
}


def deployed_values(harness_state: Any, target: Target) -> list[Path]:
    """The values files this session deployed with, beyond those the CLI finds itself: a local
    run's overlays (the CLI reads them from the run folder too), a cluster target's whole list
    (the session may add values/kind-maas.yaml)."""
    if isinstance(target, ClusterTarget):
        return target.values()
    return list(harness_state.options.values)


def models_cli(harness_state: Any, target: Target, *args: str) -> subprocess.CompletedProcess[str]:
    """`python -m harness models ARGS` for this session's stack, without MaaS settings."""
    where = ["--target", harness_state.target_name, "--run-name", harness_state.options.run_name]
    for path in deployed_values(harness_state, target):
        where += ["--values", str(path)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAAS_")}
    done = subprocess.run(
        [*HARNESS, "models", *args, *where],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=CLI_TIMEOUT_S,
    )  # fmt: skip
    if isinstance(target, ClusterTarget) and args[0] == "sync" and "--dry-run" not in args:
        # The CLI's helm upgrade rolled pods this process's port-forwards still point at.
        for component in ("gateway", "llama-stack"):
            target.reconnect(component)
    return done


def output(done: subprocess.CompletedProcess[str]) -> str:
    return f"exit {done.returncode}\n--- stdout\n{done.stdout}\n--- stderr\n{done.stderr[-3000:]}"


def drift_lines(done: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in done.stdout.splitlines() if line.startswith("DRIFT ")]


def stack_now(harness_state: Any, target: Target) -> model_drift.Stack:
    return stack_of(target, harness_state.target_name, deployed_values(harness_state, target))


def test_models_check_passes_on_a_consistent_install(harness_state: Any, target: Target, endpoints: Any) -> None:
    done = models_cli(harness_state, target, "check")
    assert done.returncode == 0, f"models check found drift on the e2e stack:\n{output(done)}"
    assert "no drift" in done.stdout and not drift_lines(done), output(done)
    # One table: the catalog, each tier's gateway listing, llama-stack; and where each came from.
    header = done.stdout.splitlines()[0].split()
    assert header[:2] == ["MODEL", "values"] and "llama-stack" in header, output(done)
    tiers = sorted(t for t, keys in endpoints.keys.items() if keys)
    assert [c for c in header if c.startswith("gateway[")] == [f"gateway[{t}]" for t in tiers], output(done)
    for source in ("values:", "gateway:", "llama-stack:"):
        assert any(line.startswith(source) for line in done.stdout.splitlines()), f"no {source} line:\n{output(done)}"


def test_models_check_json_lists_every_catalog_model(harness_state: Any, target: Target, endpoints: Any) -> None:
    done = models_cli(harness_state, target, "check", "--format", "json")
    assert done.returncode == 0, output(done)
    report = json.loads(done.stdout)
    catalog = {e.public_id: e for e in stack_now(harness_state, target).entries()}
    rows = {row["model"]: row["cells"] for row in report["rows"]}
    assert set(catalog) <= set(rows), f"catalog models {sorted(catalog)} not all in the table {sorted(rows)}"
    for public_id in catalog:
        assert rows[public_id]["llama-stack"] == "ok", f"{public_id}: {rows[public_id]}"


@pytest.fixture
def removed_from_llama_stack(harness_state: Any, target: Target, endpoints: Any) -> Iterator[model_drift.CatalogEntry]:
    """A model the values declare, removed from llama-stack only, through the registration path's
    removal (llama-stack 0.7 has no unregister route). Registered again afterwards, in-process,
    whatever the test's CLI did."""
    entries = [e for e in stack_now(harness_state, target).entries() if e.via_gateway]
    if not entries:
        pytest.skip("the values declare no model behind the stack's gateway")
    entry = entries[0]
    report = registration.register(target, endpoints.llama_stack_url, {}, remove=[entry.key])
    assert report.ok and entry.llama_stack_id in report.removed, f"removal of {entry.key}: {report.render()}"
    try:
        yield entry
    finally:
        stack = stack_now(harness_state, target)
        model_drift.sync(target, stack, model_drift.check(stack))


def test_a_model_removed_from_llama_stack_is_drift_and_sync_repairs_it(
    harness_state: Any, target: Target, removed_from_llama_stack: model_drift.CatalogEntry
) -> None:
    entry = removed_from_llama_stack
    done = models_cli(harness_state, target, "check")
    assert done.returncode == 1, (
        f"models check passed with {entry.llama_stack_id} gone from llama-stack:\n{output(done)}"
    )
    named = [line for line in drift_lines(done) if entry.public_id in line and "[llama-stack]" in line]
    assert named, f"no drift line names {entry.public_id} and llama-stack:\n{output(done)}"

    dry = models_cli(harness_state, target, "sync", "--dry-run")
    assert dry.returncode == 0 and entry.llama_stack_id in dry.stdout, output(dry)

    done = models_cli(harness_state, target, "sync")
    assert done.returncode == 0, f"models sync failed:\n{output(done)}"
    assert f"registered  {entry.llama_stack_id}" in done.stdout, (
        f"sync did not report the registration:\n{output(done)}"
    )
    target.reconnect("llama-stack")  # the CLI restarted (or upgraded) it: follow it

    done = models_cli(harness_state, target, "check")
    assert done.returncode == 0, f"models check still finds drift after sync:\n{output(done)}"


@pytest.fixture
def gateway_only_model(target: Target, endpoints: Any) -> Iterator[str]:
    if Capability.FAULTS not in target.capabilities:
        pytest.skip(f"target {target.name!r} cannot override the gateway's values (no {Capability.FAULTS} capability)")
    target.override_values(GATEWAY_ONLY, restart="gateway")
    try:
        yield PROBE_ID
    finally:
        target.override_values(None, restart="gateway")


def test_a_model_only_the_gateway_lists_is_drift(harness_state: Any, target: Target, gateway_only_model: str) -> None:
    done = models_cli(harness_state, target, "check")
    assert done.returncode == 1, f"models check passed with {gateway_only_model} at the gateway only:\n{output(done)}"
    named = [line for line in drift_lines(done) if gateway_only_model in line and "[gateway]" in line]
    assert named, f"no drift line names {gateway_only_model} and the gateway:\n{output(done)}"
    assert not [line for line in drift_lines(done) if "[llama-stack]" in line], output(done)
