"""A local process is probed as the kubelet would: the readinessProbe's scheme, port and path."""

from __future__ import annotations

from harness import http
from harness.local import pods, processes
from harness.local.pods import Probe


def test_an_https_readiness_probe_is_probed_over_https(monkeypatch) -> None:
    probe = pods._probe({"httpGet": {"port": "http", "path": "/v1/health", "scheme": "HTTPS"}}, {"http": 8321})
    assert probe == Probe("http", 8321, "/v1/health", "https")
    asked: list[str] = []

    def answers_ok(url: str, **_: object) -> bool:
        asked.append(url)
        return True

    monkeypatch.setattr(http, "answers_ok", answers_ok)
    assert processes.probe_ok(probe)
    assert asked == ["https://127.0.0.1:8321/v1/health"]


def test_a_probe_without_a_scheme_is_plain_http() -> None:
    assert pods._probe({"httpGet": {"port": 8080, "path": "/ready"}}, {}) == Probe("http", 8080, "/ready", "http")
