"""The lane's network namespace `rag-kube`: the only network the cluster and its clients see.

Layout (all inside the namespace; nothing links it to the machine's own network):
- `lo` up (etcd, the API server's loopback clients, port-forwards bind 127.0.0.1);
- a veth pair `rk-node` <-> `rk-peer` with BOTH ends inside: `rk-node` carries NODE_IP, the
  node's InternalIP (this kernel has no `dummy` link type, a veth works the same here);
- one route for the Service CIDR on `rk-node`, so a Service IP is routed to where kube-proxy's
  rules rewrite it; no default route, so anything else is unreachable rather than sent out.
Pod addresses live on the CNI bridge that containerd's bridge plugin creates in this namespace.

Processes enter with `nsenter --net=PATH` (not `ip netns exec`, which remounts /sys and hides
the cgroup mounts the kubelet needs). `enter()` moves the calling process itself in, so every
later socket and subprocess (helm, kubectl, port-forwards, the httpx test client) is inside.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

NAME = "rag-kube"
PATH = Path("/var/run/netns") / NAME
NODE_IF, PEER_IF = "rk-node", "rk-peer"
NODE_IP, PEER_IP, PREFIX = "10.213.0.2", "10.213.0.1", 24
SERVICE_CIDR = "10.213.128.0/20"
POD_CIDR = "10.213.64.0/20"


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check)


def exists() -> bool:
    return PATH.exists() and NAME in ip("netns", "list", check=False).stdout.split()


def nsenter(argv: list[str]) -> list[str]:
    """`argv` run inside the namespace."""
    return ["nsenter", f"--net={PATH}", "--", *argv]


def create() -> None:
    """Create the namespace and its links (idempotent: an existing namespace is reused as is)."""
    if exists():
        return
    ip("netns", "add", NAME)
    inside = ("-n", NAME)
    ip(*inside, "link", "set", "lo", "up")
    ip(*inside, "link", "add", NODE_IF, "type", "veth", "peer", "name", PEER_IF)
    ip(*inside, "addr", "add", f"{NODE_IP}/{PREFIX}", "dev", NODE_IF)
    ip(*inside, "addr", "add", f"{PEER_IP}/{PREFIX}", "dev", PEER_IF)
    ip(*inside, "link", "set", NODE_IF, "up")
    ip(*inside, "link", "set", PEER_IF, "up")
    ip(*inside, "route", "add", SERVICE_CIDR, "dev", NODE_IF, "src", NODE_IP)
    # Pods reach Services and each other through this namespace's bridge: routing and the
    # bridge's netfilter hook must be on here (they are per namespace, the machine's stay as they are).
    for key, value in (("net/ipv4/ip_forward", "1"), ("net/bridge/bridge-nf-call-iptables", "1")):
        subprocess.run(nsenter(["sh", "-c", f"echo {value} > /proc/sys/{key}"]), check=False, capture_output=True)


def delete() -> None:
    """Remove the namespace (its links, routes and iptables rules go with it). Idempotent."""
    if exists() or PATH.exists():
        ip("netns", "delete", NAME, check=False)


def current_is_inside() -> bool:
    """True when this process already runs in the lane's namespace."""
    try:
        return os.stat("/proc/self/ns/net").st_ino == os.stat(PATH).st_ino
    except FileNotFoundError:
        return False


_original: int | None = None  # fd of the namespace this process started in, kept open by enter()


def original() -> str:
    """A path to the network namespace this process started in (the machine's side, after enter())."""
    if _original is None:
        return f"/proc/{os.getpid()}/ns/net"
    return f"/proc/{os.getpid()}/fd/{_original}"


def enter() -> None:
    """Move this process (its calling thread; call from the main thread before starting others) inside."""
    global _original
    if current_is_inside():
        return
    if _original is None:
        _original = os.open("/proc/self/ns/net", os.O_RDONLY)
    fd = os.open(PATH, os.O_RDONLY)
    try:
        os.setns(fd, os.CLONE_NEWNET)
    finally:
        os.close(fd)
