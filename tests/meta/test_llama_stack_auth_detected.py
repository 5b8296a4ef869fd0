"""The llama-stack authentication and budget tests fail when the mechanisms they check break.

One local stack (run name `meta-auth-broken`) runs a copy of the charts whose llama-stack run
config has no `server.auth` (authentication off), with the overlay giving llama-stack a model key
of its own (the service key every caller used to spend). tests/e2e/test_llama_stack_auth.py then
runs twice, as a user runs it:
  1. as shipped                                   -> the 401 tests and the no-own-key test fail
  2. with clients that forward no key (a plugin drops X-LlamaStack-Provider-Data)
                                                  -> the budget tests fail: calls spend the service key
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness.endpoints import Endpoints
from harness.paths import CHARTS_DIR, REPO_ROOT
from harness.targets import TargetOptions, get_target

from meta.runs import parse_junit

pytestmark = pytest.mark.meta

RUN_NAME = "meta-auth-broken"
CONFIG = "llama-stack/templates/configmap.yaml"
AUTH_ON = "{{- if .Values.auth.enabled }}"
# The key llama-stack would spend for every caller: the harness's own large tier.
OVERLAY = "global:\n  models:\n    maas:\n      apiToken: dev-internal-01-llama-stack\n"
NO_FORWARD_PLUGIN = """\
from harness import llama_stack_auth

_caller_headers = llama_stack_auth.caller_headers


def _without_provider_data(key):
    headers = _caller_headers(key)
    headers.pop(llama_stack_auth.PROVIDER_DATA_HEADER, None)
    return headers


llama_stack_auth.caller_headers = _without_provider_data
"""
SUITE = "tests/e2e/test_llama_stack_auth.py"
MODULE = "test_llama_stack_auth"
SUITE_TIMEOUT_S = 600
AUTH_OFF_FAILS = {
    *(
        f"{MODULE}::test_missing_or_bad_key_gets_json_401[{call}]"
        for call in ("POST /v1/chat/completions", "GET /v1/files", "GET /v1/vector_stores", "POST /v1/responses")
    ),
    f"{MODULE}::test_missing_or_bad_key_gets_json_401[GET /v1/models]",
    f"{MODULE}::test_provider_data_must_carry_the_callers_own_key",
    f"{MODULE}::test_a_call_without_a_forwarded_key_reaches_no_model",
}
NOT_FORWARDED_FAILS = {
    f"{MODULE}::test_free_key_spent_through_llama_stack_gets_429_there_and_at_the_gateway",
    f"{MODULE}::test_free_key_spent_is_refused_by_responses_file_search",
    f"{MODULE}::test_enterprise_key_through_llama_stack_is_charged_on_enterprise_counters",
}
# Untouched by either breakage: the failures above are specific.
UNAFFECTED = {f"{MODULE}::test_probes_need_no_key[/v1/health]", f"{MODULE}::test_valid_key_is_accepted"}


@pytest.fixture(scope="module")
def broken_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Endpoints]:
    charts = tmp_path_factory.mktemp("charts") / "charts"
    shutil.copytree(CHARTS_DIR, charts, symlinks=True)  # rag's charts/<name> symlinks stay relative
    config = charts / CONFIG
    text = config.read_text()
    assert AUTH_ON in text, f"{CONFIG} no longer contains {AUTH_ON!r}; update this meta test"
    config.write_text(text.replace(AUTH_ON, "{{- if false }}", 1))
    overlay = tmp_path_factory.mktemp("overlay") / "service-key.yaml"
    overlay.write_text(OVERLAY)
    target = get_target("local", TargetOptions(run_name=RUN_NAME, values=[overlay]))
    target.run.chart = charts / "rag"
    if target.run.alive_pids():
        target.down()  # a leftover may run other charts or carry spent keys
    endpoints = target.up()
    yield endpoints
    if os.environ.get("RAG_KEEP") != "1":
        target.down()


def run_suite(stack: Endpoints, tmp: Path, *, plugin: str = "") -> tuple[str, dict[str, tuple[str, str]]]:
    junit = tmp / "junit.xml"
    paths = [str(REPO_ROOT / "tests"), os.environ.get("PYTHONPATH")]
    command = [sys.executable, "-m", "pytest", SUITE, "-p", "no:cacheprovider", "-q", "--target", "local"]
    command += ["--run-name", RUN_NAME, f"--junitxml={junit}"]
    # The stack's own overlays: the harness refuses a run that asks for other values.
    command += [arg for fp in stack.values or [] for arg in ("--values", fp.rsplit(" sha256:", 1)[0])]
    if plugin:
        (tmp / "meta_no_forward.py").write_text(plugin)
        paths.insert(0, str(tmp))
        command += ["-p", "meta_no_forward"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, paths)), "RAG_DIAGNOSTICS_DIR": str(tmp / "diag")}
    done = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, env=env, timeout=SUITE_TIMEOUT_S)
    return done.stdout + done.stderr, parse_junit(junit)


def failed(outcomes: dict[str, tuple[str, str]]) -> set[str]:
    return {name for name, (outcome, _) in outcomes.items() if outcome in ("failed", "error")}


def passed(outcomes: dict[str, tuple[str, str]]) -> set[str]:
    return {name for name, (outcome, _) in outcomes.items() if outcome == "passed"}


def test_auth_off_and_an_own_model_key_fail_the_auth_tests(broken_stack: Endpoints, tmp_path: Path) -> None:
    output, outcomes = run_suite(broken_stack, tmp_path)
    assert failed(outcomes) == AUTH_OFF_FAILS, (
        f"failed {sorted(failed(outcomes))}, want {sorted(AUTH_OFF_FAILS)}:\n{output[-3000:]}"
    )
    assert passed(outcomes) >= UNAFFECTED | NOT_FORWARDED_FAILS, output[-3000:]


def test_an_unforwarded_key_fails_the_budget_tests(broken_stack: Endpoints, tmp_path: Path) -> None:
    output, outcomes = run_suite(broken_stack, tmp_path, plugin=NO_FORWARD_PLUGIN)
    assert failed(outcomes) >= NOT_FORWARDED_FAILS, (
        f"failed {sorted(failed(outcomes))}, want at least {sorted(NOT_FORWARDED_FAILS)}:\n{output[-3000:]}"
    )
    assert passed(outcomes) >= UNAFFECTED, output[-3000:]
