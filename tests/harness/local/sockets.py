"""The listening sockets of a set of processes and their descendants (psutil)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import psutil

LOOPBACK = frozenset({"127.0.0.1", "::1"})


@dataclass(frozen=True)
class Listener:
    name: str  # the recorded process it belongs to (a container name)
    pid: int  # the process that holds the socket (the recorded one or a descendant)
    command: str
    address: str
    port: int

    def describe(self) -> str:
        return f"{self.name} (pid {self.pid}, {self.command}) listens on {self.address}:{self.port}"


def _tree(pid: int) -> list[psutil.Process]:
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def listeners(processes: Iterable[tuple[str, int]]) -> list[Listener]:
    """Every TCP socket in LISTEN state (and every bound UDP socket) held by each named process
    or any of its descendants."""
    found: list[Listener] = []
    for name, pid in processes:
        for proc in _tree(pid):
            try:
                conns = proc.net_connections(kind="inet")
                command = proc.name()
            except (psutil.NoSuchProcess, psutil.ZombieProcess):
                continue
            for conn in conns:
                listening = conn.status == psutil.CONN_LISTEN or (conn.status == psutil.CONN_NONE and not conn.raddr)
                if listening and conn.laddr:
                    found.append(Listener(name, proc.pid, command, conn.laddr.ip, conn.laddr.port))
    return found


def off_loopback(found: Iterable[Listener]) -> list[Listener]:
    """The listeners reachable from another machine: any address but 127.0.0.1 and ::1."""
    return [listener for listener in found if listener.address not in LOOPBACK]
