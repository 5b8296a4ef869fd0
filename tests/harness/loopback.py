"""Loopback ports the harness listens on (local stacks, port-forwards).

A port is picked below the kernel's ephemeral range (net.ipv4.ip_local_port_range, on Linux
32768-60999 by default): the kernel hands ports of that range to every outgoing connection and
to bind(0), so a port picked there can be taken by any client socket opened between picking it
and listening on it ("port already in use"). Below the range, only another listener can.
"""

from __future__ import annotations

import random
import socket
from collections.abc import Collection
from pathlib import Path

from harness.errors import HarnessError

EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
LINUX_EPHEMERAL_LOW = 32768  # when the range cannot be read
SPAN = 12000  # how many ports below the ephemeral range to pick from
TRIES = 200
# Ports this process handed out: a program may not listen on one yet, so a bind check alone
# would hand it out again (two stacks or port-forwards started one after the other).
_handed_out: set[int] = set()


def listen_range() -> range:
    """The ports `free_port` picks from: the SPAN ports just below the ephemeral range."""
    try:
        low = int(EPHEMERAL_RANGE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = LINUX_EPHEMERAL_LOW
    return range(max(1024, low - SPAN), low)


def free_ports(count: int, host: str = "127.0.0.1", *, exclude: Collection[int] = ()) -> list[int]:
    """`count` distinct TCP ports on `host` that nothing listens on now, outside the ephemeral
    range, and not in `exclude`.

    Distinct, and never a port this process handed out before: the ports are picked before
    anything listens on them, so two picks could return one port, and the second program to bind
    it would fail ("address already in use").
    Raises HarnessError when fewer than `count` of TRIES random ports of `listen_range()` are free.
    """
    ports = listen_range()
    chosen: list[int] = []
    for port in random.sample(ports, min(max(TRIES, count), len(ports))):
        if len(chosen) == count:
            break
        if port in _handed_out or port in exclude:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((host, port))
            except OSError:
                continue
        chosen.append(port)
    if len(chosen) < count:
        raise HarnessError(
            f"only {len(chosen)} of {count} free loopback ports in {ports.start}-{ports.stop - 1}: stop some local "
            "stacks (`make clean`) or port-forwards"
        )
    _handed_out.update(chosen)
    return chosen


def free_port(host: str = "127.0.0.1") -> int:
    """One port of `free_ports`."""
    return free_ports(1, host)[0]
