"""The gateway's internals answer only the gateway: Redis refuses commands without the password,
and the readiness listener the kubelet probes exposes nothing but /ready.

Reachability from other pods (NetworkPolicies) needs a real cluster: the `kube` target proves it;
the chart tests check the rendered policies and bind addresses (tests/charts/test_no_back_doors.py).
"""

from __future__ import annotations

import socket
from typing import Any

import httpx
import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.auth]

SOCKET_TIMEOUT_S = 5.0


def local_port(target: Any, name: str) -> int:
    """A loopback port reaching the internal `name` (the target forwards it where it runs in a cluster)."""
    return int(target.internal_port(name))


def redis_says(port: int, command: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=SOCKET_TIMEOUT_S) as conn:
        conn.sendall(command)
        return conn.recv(256)


@pytest.mark.usefixtures("endpoints")
@pytest.mark.parametrize("command", [b"PING\r\n", b"FLUSHALL\r\n", b"KEYS *\r\n"])
def test_redis_refuses_unauthenticated_commands(target: Any, command: bytes) -> None:
    answer = redis_says(local_port(target, "redis"), command)
    assert answer.startswith(b"-NOAUTH"), f"Redis answered {command!r} without a password: {answer!r}"


@pytest.mark.usefixtures("endpoints")
def test_redis_refuses_a_wrong_password(target: Any) -> None:
    answer = redis_says(local_port(target, "redis"), b"AUTH not-the-password\r\nPING\r\n")
    assert answer.startswith(b"-WRONGPASS") or answer.startswith(b"-ERR"), answer


@pytest.mark.usefixtures("endpoints")
def test_readiness_listener_exposes_only_ready(target: Any) -> None:
    base = f"http://127.0.0.1:{local_port(target, 'gateway_health')}"
    assert httpx.get(f"{base}/ready", timeout=SOCKET_TIMEOUT_S).status_code == 200
    for path in ("/quitquitquit", "/config_dump", "/stats", "/clusters"):
        for method in ("GET", "POST"):
            status = httpx.request(method, f"{base}{path}", timeout=SOCKET_TIMEOUT_S).status_code
            assert status == 404, f"{method} {path} on the readiness listener answered {status}"
