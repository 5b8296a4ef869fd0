"""install/cleanup/verify commands and the shell wrappers: help, dry run, masking, verify checks."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml
from harness import cluster_cli
from harness.cluster.verify import Verifier
from harness.endpoints import Endpoints
from harness.http import Response
from harness.paths import REPO_ROOT
from harness.registration import listed_id

INSTALL_FLAGS = (
    "--simulator", "--qwen3", "--check-gpu", "--gpu-timeout", "--token-rate-limit", "--openshift-routes",
    "--namespace", "--values", "--dry-run", "--help",
)  # fmt: skip


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    try:
        code = cluster_cli.main(argv)
    except SystemExit as exc:
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_install_help_documents_every_flag(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run_cli(["install", "--help"], capsys)
    assert code == 0
    missing = [flag for flag in INSTALL_FLAGS if flag not in out]
    assert missing == []
    flat = " ".join(out.split())  # argparse wraps help to the terminal width
    assert "nvidia.com/gpu.present=true" in flat and "GPU operator initializing" in flat


def test_install_dry_run_prints_helm_commands_with_the_key_masked(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "sk-dry-run-secret-9f8e7d"
    monkeypatch.setenv("MAAS_API_KEY", secret)
    monkeypatch.setenv("MAAS_ENDPOINT", "https://maas.example.com")
    monkeypatch.setenv("MAAS_MODEL", "llama-3")
    argv = ["install", "--target", "kind", "--maas", "--simulator", "--token-rate-limit", "free=300", "--dry-run"]
    code, out = run_cli(argv, capsys)
    assert code == 0
    assert secret not in out
    assert "helm dependency" not in out  # the subcharts are symlinked: nothing is built into charts/
    assert "+ helm upgrade --install rag charts/rag -n rag-e2e --kube-context kind-rag-e2e " \
           "-f values/kind.yaml -f values/kind-maas.yaml" in out  # fmt: skip
    assert '"token": ****' in out  # the Secret on stdin is shown, masked
    assert "limit: 300" in out and "mode: simulator" in out  # generated values explained
    assert "rollout status" not in out and "port-forward" not in out  # a dry run changes and waits for nothing


def test_install_dry_run_on_existing_adds_routes_and_gpu_overlays(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run_cli(
        ["install", "--target", "existing", "--qwen3", "--gpu-preset", "a100", "--openshift-routes",
         "--check-gpu", "--namespace", "rag", "--dry-run"], capsys,
    )  # fmt: skip
    assert code == 0
    assert "+ kubectl get nodes -o json" in out  # the GPU check is part of the plan
    assert "+ helm upgrade --install rag charts/rag -n rag -f values/openshift.yaml -f values/gpu-a100.yaml" in out


@pytest.mark.parametrize(
    "argv",
    [
        ["install", "--simulator", "--qwen3", "--dry-run"],
        ["install", "--token-rate-limit", "free", "--dry-run"],
        ["install", "--token-rate-limit", "free=-1", "--dry-run"],
        ["install", "--values", "/nonexistent/values.yaml", "--dry-run"],
        ["install", "--gpu-preset", "v100", "--dry-run"],
    ],
)
def test_install_rejects_bad_flags(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run_cli(argv, capsys)
    assert code == 2, out
    assert "error:" in out


def test_install_wrapper_names_the_fix_when_the_venv_is_missing(tmp_path: Path) -> None:
    bash = shutil.which("bash")
    if bash is None:
        pytest.skip("bash not found")
    for name in ("install.sh", "cleanup.sh", "verify-install.sh"):
        (tmp_path / "scripts").mkdir(exist_ok=True)
        shutil.copy(REPO_ROOT / "scripts" / name, tmp_path / "scripts" / name)
        shutil.copy(REPO_ROOT / "scripts" / "lib.sh", tmp_path / "scripts" / "lib.sh")
        proc = subprocess.run([bash, str(tmp_path / "scripts" / name), "--help"], capture_output=True, text=True)
        assert proc.returncode == 2
        assert "make bootstrap" in proc.stderr


# verify checks ----------------------------------------------------------------------------------


def endpoints() -> Endpoints:
    return Endpoints(
        gateway_url="http://127.0.0.1:1",
        llama_stack_url="http://127.0.0.1:2",
        keys={"free": ["dev-free-01"], "enterprise": ["dev-ent-01", "dev-ent-02"]},
        gateway_models=["simulated-model"],
    )


class FakeStack:
    """Answers like a healthy stack; flags make one behaviour break."""

    def __init__(
        self, *, open_gateway: bool = False, no_usage: bool = False, no_headers: bool = False, broken_auth: bool = False
    ) -> None:
        self.open_gateway, self.no_usage, self.no_headers = open_gateway, no_usage, no_headers
        self.broken_auth = broken_auth  # llama-stack refuses keyless calls with 500 instead of 401
        self.keys_used: list[str] = []

    def __call__(
        self,
        method: str,
        url: str,
        *,
        key: str = "",
        body: dict | None = None,
        timeout: float = 0,
        headers: dict[str, str] | None = None,
    ) -> Response:
        bearer = (headers or {}).get("Authorization", "").removeprefix("Bearer ")
        self.keys_used.append(key or bearer)
        if url.startswith("http://127.0.0.1:1"):
            if not key and not self.open_gateway:
                return Response(401, {}, '{"error": {"type": "authentication_error"}}')
            if url.endswith("/v1/models"):
                return Response(200, {}, '{"data": [{"id": "simulated-model"}]}')
            usage = (
                "" if self.no_usage else ', "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}'
            )
            headers = (
                {} if self.no_headers else {"x-ratelimit-limit-tokens": "5000", "x-ratelimit-remaining-tokens": "4995"}
            )
            return Response(200, headers, '{"choices": [{"message": {"content": "hi"}}]' + usage + "}")
        if url.endswith("/v1/health"):
            return Response(200, {}, '{"status": "OK"}')
        if not bearer:
            return Response(500 if self.broken_auth else 401, {}, '{"error": {"message": "Authentication required"}}')
        assert "X-LlamaStack-Provider-Data" in (headers or {}), "llama-stack calls must forward the key"
        return Response(
            200,
            {},
            '{"data": [{"id": "maas/simulated-model", "custom_metadata": {"model_type": "llm"}},'
            ' {"id": "e5/e5-small", "custom_metadata": {"model_type": "embedding"}}]}',
        )


def test_verify_passes_every_check_on_a_healthy_stack() -> None:
    stack = FakeStack()
    checks = Verifier(endpoints(), http=stack).run()
    assert [c.name for c in checks] == [
        "gateway without a key", "gateway with a key", "chat through the gateway", "llama-stack health",
        "llama-stack without a key", "llama-stack models",
    ]  # fmt: skip
    assert all(c.ok for c in checks), [c.line() for c in checks]
    assert "dev-ent-02" in stack.keys_used  # the roomiest tier's last key spends the budget
    assert "maas/simulated-model" in checks[5].detail and "e5" not in checks[5].detail


@pytest.mark.parametrize(
    ("broken", "failing"),
    [
        ({"open_gateway": True}, "gateway without a key"),
        ({"no_usage": True}, "chat through the gateway"),
        ({"no_headers": True}, "chat through the gateway"),
        ({"broken_auth": True}, "llama-stack without a key"),
    ],
)
def test_verify_reports_the_broken_behaviour(broken: dict, failing: str) -> None:
    checks = Verifier(endpoints(), http=FakeStack(**broken)).run()
    assert [c.name for c in checks if not c.ok] == [failing]


def test_verify_reports_an_unreachable_stack_per_check() -> None:
    def refused(*args: object, **kwargs: object) -> Response:
        raise ConnectionRefusedError("refused")

    checks = Verifier(endpoints(), http=refused).run()
    assert len(checks) == 6 and not any(c.ok for c in checks)
    assert all(c.line().startswith("FAIL") for c in checks)


def _local_catalog() -> dict[str, dict]:
    """values/local.yaml's catalog, so the stand-in lists what the declared values declare."""
    values = yaml.safe_load((REPO_ROOT / "values" / "local.yaml").read_text())
    return {name: entry for name, entry in values["global"]["models"].items() if entry.get("enabled", True)}


def _listed_for(tier: str) -> list[str]:
    """The public ids the gateway lists to a key of this tier: entries without tiers are for every tier."""
    return [e["id"] for e in _local_catalog().values() if tier in e.get("tiers", [tier])]


class _StackHandler(BaseHTTPRequestHandler):
    """A real HTTP server playing gateway (/gw) and llama-stack (/ls) for the verify command."""

    def log_message(self, *args: object) -> None:  # keep test output clean
        return

    def _send(self, status: int, body: dict, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        for name, value in {"Content-Type": "application/json", **(headers or {})}.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path == "/gw/v1/models":
            listing = {"Bearer dev-free-01": _listed_for("free"), "Bearer dev-ent-02": _listed_for("enterprise")}
            ids = listing.get(self.headers.get("Authorization", ""))
            if ids is None:
                self._send(401, {"error": {"type": "authentication_error"}})
            else:
                self._send(200, {"data": [{"id": i} for i in ids]})
        elif self.path == "/ls/v1/health":
            self._send(200, {"status": "OK"})
        elif self.path == "/ls/v1/models":
            if not self.headers.get("Authorization", "").startswith("Bearer "):
                self._send(401, {"error": {"message": "Authentication required"}})
            else:
                ids = [listed_id(name, entry) for name, entry in _local_catalog().items()]
                self._send(200, {"data": [{"id": i, "custom_metadata": {"model_type": "llm"}} for i in ids]})
        else:
            self._send(404, {})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", 0))
        self.rfile.read(length)
        usage = {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}
        headers = {"X-RateLimit-Limit-Tokens": "5000", "X-RateLimit-Remaining-Tokens": "4995"}
        self._send(200, {"choices": [{"message": {"content": "hello"}}], "usage": usage}, headers)


def test_verify_command_over_real_http(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _StackHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    found = Endpoints(
        gateway_url=f"{base}/gw", llama_stack_url=f"{base}/ls",
        keys={"free": ["dev-free-01"], "enterprise": ["dev-ent-01", "dev-ent-02"]}, gateway_models=["simulated-model"],
    )  # fmt: skip

    class LocalStub:
        def status(self) -> Endpoints:
            return found

        def close(self) -> None:  # every target has close() (the Target protocol)
            pass

        def applied_models(self) -> dict[str, dict[str, object]]:
            return {}  # no registrations: the catalog is values/local.yaml's

    monkeypatch.setattr(cluster_cli, "get_target", lambda name, options: LocalStub())
    try:
        code, out = run_cli(["verify", "--target", "local"], capsys)
    finally:
        server.shutdown()
    assert code == 0, out
    assert out.count("PASS") == 7 and "FAIL" not in out
    assert "x-ratelimit-remaining-tokens=4995" in out
    assert "PASS  models agree across registries: values, gateway, llama-stack agree" in out
    assert "dev-ent-02" not in out and "dev-free-01" not in out  # keys are never printed
    assert "verify: all 7 checks OK" in out
