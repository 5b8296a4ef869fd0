"""Loopback ports are picked below the kernel's ephemeral range, so no client socket can take one."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from harness import loopback
from harness.errors import HarnessError


def test_free_port_is_below_the_ephemeral_range_and_bindable() -> None:
    low = int(loopback.EPHEMERAL_RANGE.read_text().split()[0])
    port = loopback.free_port()
    assert port in loopback.listen_range() and port < low
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


def test_range_follows_the_kernel_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    setting = tmp_path / "ip_local_port_range"
    setting.write_text("40000\t60999\n")
    monkeypatch.setattr(loopback, "EPHEMERAL_RANGE", setting)
    assert loopback.listen_range() == range(40000 - loopback.SPAN, 40000)


def test_no_free_port_names_what_to_do(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(loopback, "listen_range", lambda: range(0, 0))
    with pytest.raises(HarnessError, match="make clean"):
        loopback.free_port()
