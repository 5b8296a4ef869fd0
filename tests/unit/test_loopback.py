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


def _free_block(size: int) -> range:
    """`size` consecutive ports of the listen range that are free now."""
    ports = loopback.listen_range()
    for start in range(ports.start, ports.stop - size, size):
        block = range(start, start + size)
        if all(_bindable(port) for port in block):
            return block
    pytest.fail(f"no {size} consecutive free ports in {ports}")


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def test_free_ports_are_distinct(monkeypatch: pytest.MonkeyPatch) -> None:
    block = _free_block(6)
    monkeypatch.setattr(loopback, "listen_range", lambda: block)
    monkeypatch.setattr(loopback, "_handed_out", set())
    assert sorted(loopback.free_ports(6)) == list(block)


def test_a_port_is_handed_out_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing listens on a handed-out port yet, so binding it proves nothing: the second
    caller must get another one."""
    block = _free_block(2)
    monkeypatch.setattr(loopback, "listen_range", lambda: block)
    monkeypatch.setattr(loopback, "_handed_out", set())
    assert {loopback.free_port(), loopback.free_port()} == set(block)
    with pytest.raises(HarnessError, match="only 0 of 1"):
        loopback.free_port()
    assert loopback.free_ports(0) == []


def test_a_stack_never_gets_one_port_twice(monkeypatch: pytest.MonkeyPatch) -> None:
    """Eleven components picked from eleven ports: independent picks would repeat one (CI saw
    "address already in use" from the second program on a port)."""
    from harness.local.ports import Ports

    wanted = len(Ports().as_dict())
    block = _free_block(wanted)
    monkeypatch.setattr(loopback, "listen_range", lambda: block)
    monkeypatch.setattr(loopback, "_handed_out", set())
    chosen = Ports(redis=block[0]).fill_free().as_dict()
    assert chosen["redis"] == block[0]
    assert sorted(chosen.values()) == list(block)
