"""The gateway's accounting, privacy and fault tests fail when the mechanism they check breaks.

A local stack (run name `meta-gateway-broken`) is started from a copy of the charts whose
gateway has four mechanisms broken, independently:
  1. streams no longer get stream_options.include_usage -> streams that do not ask go uncharged
  2. the charge estimate is 0                           -> an aborted stream costs nothing
  3. Authorization is forwarded to the model server     -> the header-name test fails
  4. failureMode closed lets calls through              -> the closed fault test fails
The e2e modules run against it in a subprocess pytest, as a user runs them.
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

RUN_NAME = "meta-gateway-broken"
LUA = "maas-gateway/files/gateway.lua"
ENVOY = "maas-gateway/templates/envoy-configmap.yaml"
# (file, text the product has, what the broken copy has instead)
PATCHES = {
    "no include_usage": (
        LUA,
        'local USAGE_OPT_IN = { ["/v1/chat/completions"] = true, ["/v1/completions"] = true }',
        "local USAGE_OPT_IN = {}",
    ),
    "estimate 0": (LUA, "return body_bytes + completion * choices", "return 0"),
    "key forwarded": (LUA, '  headers:remove("authorization")\n\n', "\n"),
    "fails open": (ENVOY, "failure_mode_deny: {{ and $deny $f.enforced }}", "failure_mode_deny: false"),
}
ACCOUNTING = "test_accounting"
BREAKAGES = {
    "no include_usage": (
        {
            f"{ACCOUNTING}::test_streams_are_charged_whatever_the_client_asks[no stream_options]",
            f"{ACCOUNTING}::test_streams_are_charged_whatever_the_client_asks[include_usage false]",
            f"{ACCOUNTING}::test_streams_are_charged_whatever_the_client_asks[stream_options null]",
            f"{ACCOUNTING}::test_escaped_key_stream_is_charged",
            f"{ACCOUNTING}::test_non_json_content_type_is_charged_or_refused[text/plain]",
        },
        "without usage",
    ),
    "estimate 0": ({f"{ACCOUNTING}::test_aborted_stream_is_charged"}, "the charge never came"),
    "key forwarded": (
        {"test_auth::test_model_server_never_receives_the_key_or_client_identity"},
        "authorization",
    ),
    "fails open": ({"test_faults::test_limiter_down_fails_closed_fast[ratelimit]"}, "expected 503"),
}
UNAFFECTED = {
    f"{ACCOUNTING}::test_bodies_the_gateway_cannot_account_for_are_refused[not json]",
    f"{ACCOUNTING}::test_bodies_the_gateway_cannot_account_for_are_refused[stream as a string]",
    "test_auth::test_both_header_forms_are_accepted[Bearer]",
    "test_faults::test_model_server_down_answers_503_json",
}
SUITE = [
    "tests/e2e/test_accounting.py",
    "tests/e2e/test_auth.py",
    "tests/e2e/test_faults.py::test_model_server_down_answers_503_json",
    "tests/e2e/test_faults.py::test_limiter_down_fails_closed_fast",
]


def broken_charts(dest: Path) -> Path:
    shutil.copytree(CHARTS_DIR, dest, symlinks=True)  # rag's charts/<name> symlinks stay relative
    for name, (rel, good, bad) in PATCHES.items():
        path = dest / rel
        text = path.read_text()
        assert good in text, f"breakage {name!r}: {rel} no longer contains {good!r}; update this meta test"
        path.write_text(text.replace(good, bad, 1))
    return dest / "rag"


@pytest.fixture(scope="module")
def broken_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Endpoints]:
    chart = broken_charts(tmp_path_factory.mktemp("charts") / "charts")
    target = get_target("local", TargetOptions(run_name=RUN_NAME))
    target.run.chart = chart
    if target.run.alive_pids():
        target.down()  # a leftover may run other charts or carry spent keys
    endpoints = target.up()
    yield endpoints
    if os.environ.get("RAG_KEEP") != "1":
        target.down()


@pytest.fixture(scope="module")
def broken_run(broken_stack: Endpoints, tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[str, str]]:
    junit = tmp_path_factory.mktemp("gateway-broken-run") / "junit.xml"
    tests_dir = str(REPO_ROOT / "tests")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [tests_dir, os.environ.get("PYTHONPATH")]))}
    command = [sys.executable, "-m", "pytest", *SUITE, "-p", "no:cacheprovider", "-q", "--target", "local"]
    command += ["--run-name", RUN_NAME, f"--junitxml={junit}"]
    subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, env=env, timeout=600)
    return parse_junit(junit)


@pytest.mark.parametrize("breakage", list(BREAKAGES))
def test_gateway_breakage_fails_the_tests_that_check_it(broken_run: dict[str, tuple[str, str]], breakage: str) -> None:
    expected, phrase = BREAKAGES[breakage]
    outcomes = {name: broken_run.get(name, ("not run", "")) for name in expected}
    not_failed = {name: outcome for name, (outcome, _) in outcomes.items() if outcome != "failed"}
    assert not not_failed, f"{breakage}: these tests did not fail: {not_failed}"
    without_phrase = [name for name, (_, message) in outcomes.items() if phrase not in message]
    assert not without_phrase, f"{breakage}: failures of {without_phrase} do not mention {phrase!r}"


def test_gateway_breakages_leave_other_tests_passing(broken_run: dict[str, tuple[str, str]]) -> None:
    passed = {name for name, (outcome, _) in broken_run.items() if outcome == "passed"}
    assert passed >= UNAFFECTED, f"tests the breakages do not touch did not pass: {sorted(UNAFFECTED - passed)}"
