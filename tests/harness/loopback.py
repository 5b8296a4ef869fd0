"""Loopback ports the harness listens on (local stacks, port-forwards).

A port is picked below the kernel's ephemeral range (net.ipv4.ip_local_port_range, on Linux
32768-60999 by default): the kernel hands ports of that range to every outgoing connection and
to bind(0), so a port picked there can be taken by any client socket opened between picking it
and listening on it ("port already in use"). Below the range, only another listener can.
"""

from __future__ import annotations

import random
import socket
from pathlib import Path

from harness.errors import HarnessError

EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
LINUX_EPHEMERAL_LOW = 32768  # when the range cannot be read
SPAN = 12000  # how many ports below the ephemeral range to pick from
TRIES = 200


def listen_range() -> range:
    """The ports `free_port` picks from: the SPAN ports just below the ephemeral range."""
    try:
        low = int(EPHEMERAL_RANGE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = LINUX_EPHEMERAL_LOW
    return range(max(1024, low - SPAN), low)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on `host` that nothing listens on now, outside the ephemeral range.

    Raises HarnessError when TRIES random ports of `listen_range()` are all taken.
    """
    ports = listen_range()
    for port in random.sample(ports, min(TRIES, len(ports))):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((host, port))
            except OSError:
                continue
            return port
    raise HarnessError(
        f"no free loopback port in {ports.start}-{ports.stop - 1} after {TRIES} tries: stop some local stacks "
        "(`make clean`) or port-forwards"
    )
