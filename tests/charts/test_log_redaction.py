"""Credentials a client sends stay out of the access logs, as rendered for every overlay: Envoy logs
the path without its query string, and llama-stack runs through the chart's serve.py, which
masks credentials in every log record (uvicorn's access log prints query strings). llama-stack
binds what `listenHost` says: every interface in a pod, loopback on the local target."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest
from harness.paths import CHARTS_DIR

from charts.cases import render_ok
from charts.helm import HelmBinary, Renderer
from charts.manifests import Obj, config_map_files, containers
from charts.test_models_contract import run_config
from charts.test_no_back_doors import GATEWAY_OVERLAYS, STACK_OVERLAYS, envoy_config

pytestmark = pytest.mark.charts

SECRET = "sk-client-key-123"
# Envoy's ways to log a path; only the query-free one may appear in an access log format.
PATH_WITH_QUERY = ("%REQ(:PATH)%", "X-ENVOY-ORIGINAL-PATH", "%PATH%", "%PATH(WQ")


def access_logs(config: dict) -> list[dict]:
    return [
        log
        for listener in config["static_resources"]["listeners"]
        for chain in listener.get("filter_chains", [])
        for flt in chain.get("filters", [])
        for log in flt.get("typed_config", {}).get("access_log", [])
    ]


def access_log_formats(config: dict) -> list[str]:
    """The formats of the logs written as lines (the stats loggers write none: see below)."""
    return [
        str(log["typed_config"]["log_format"]) for log in access_logs(config) if "log_format" in log["typed_config"]
    ]


def stats_logger_formats(config: dict) -> list[str]:
    """Every command operator string of the stats access loggers (the usage metrics' labels and values)."""
    return [str(log["typed_config"]) for log in access_logs(config) if log["name"] == "envoy.access_loggers.stats"]


@pytest.mark.parametrize("overlay", GATEWAY_OVERLAYS, ids=lambda p: p.stem)
def test_envoy_access_logs_leave_out_the_query_string(renderer: Renderer, helm: HelmBinary, overlay: Path):
    formats = access_log_formats(envoy_config(render_ok(renderer, helm, "rag", overlay=overlay)))
    assert formats, "the gateway writes no access log"
    for fmt in formats:
        assert "%PATH(NQ" in fmt, fmt
        assert not [p for p in PATH_WITH_QUERY if p in fmt], fmt


@pytest.mark.parametrize("overlay", GATEWAY_OVERLAYS, ids=lambda p: p.stem)
def test_usage_metrics_take_no_request_data(renderer: Renderer, helm: HelmBinary, overlay: Path):
    """The usage metrics' labels come from what the gateway decided (user, tier, catalog model, budget),
    never from what a client sent: no header, path, query or body operator (a key could be in any)."""
    config = envoy_config(render_ok(renderer, helm, "rag", overlay=overlay))
    loggers = stats_logger_formats(config)
    assert loggers, "the gateway writes no usage metrics"
    client_data = ("%REQ(", "%PATH", "%QUERY_PARAM", "%DOWNSTREAM_PEER", "%REQUEST_HEADERS", "%CEL(")
    for fmt in loggers:
        assert not [op for op in client_data if op in fmt], fmt


def _llama_stack_container(docs: list[Obj]) -> Obj:
    for container in containers(docs):
        if container.section == "containers" and container.spec["name"] == "llama-stack":
            return container.spec
    pytest.fail("no llama-stack container was rendered", pytrace=False)
    raise AssertionError


@pytest.mark.parametrize("overlay", STACK_OVERLAYS, ids=lambda p: p.stem)
def test_llama_stack_runs_through_the_masking_launcher(renderer: Renderer, helm: HelmBinary, overlay: Path):
    docs = render_ok(renderer, helm, "rag", overlay=overlay)
    command = _llama_stack_container(docs)["command"]
    assert command[:2] == ["python", "/etc/llama-stack/serve.py"], command
    cm, config = run_config(docs)
    assert "logging.setLogRecordFactory(_record)" in config_map_files(cm)["serve.py"]
    expected = "127.0.0.1" if overlay.stem == "local" else None
    assert config["server"].get("host") == expected, config["server"]


@pytest.mark.parametrize(
    "line",
    [
        f'127.0.0.1:1 - "GET /v1/models?api_key={SECRET}&limit=2 HTTP/1.1" 401',
        f'"GET /v1/models?key={SECRET};token={SECRET}&access_token={SECRET} HTTP/1.1"',
        f"Authorization: Bearer {SECRET}",
        f"authorization: APIKEY {SECRET}",
        f'{{"api_key": "{SECRET}", "model": "m"}}',
        f"{{'vllm_api_token': '{SECRET}'}}",
    ],
)
def test_the_launcher_masks_credentials(line: str):
    mask = runpy.run_path(str(CHARTS_DIR / "llama-stack" / "files" / "serve.py"))["mask"]
    masked = mask(line)
    assert SECRET not in masked and "****" in masked, masked
