"""Remove everything the lane's cluster created; safe to run any number of times.

What the cluster leaves on the machine, and how each is found (so a crashed run with a lost
pids file is cleaned up too):
- processes: the recorded pids; any process whose command line names the run folder or the
  kube binaries; containerd's shims (their `-address` is our containerd socket); every process
  in a pod cgroup (`kubepods`); every process still inside the `rag-kube` netns (except the caller);
- cgroups: the kubelet's `kubepods` hierarchy under each cgroup v1 controller and cgroup v2;
- mounts: everything mounted under the run folder (overlay rootfs, pod netns bind mounts,
  Secret/ConfigMap tmpfs, shm), deepest first;
- the netns (and with it its veths, bridge, routes, iptables rules and ipsets, kube-router's too), and /run/netns's own
  bind mount when `ip netns add` created it and nothing else uses it;
- files: the run folder, CNI result caches of the lane's network, shim sockets of killed shims.
containerd's root (its images) is a cache next to the run folder: its containers are deleted
while containerd still runs, the images stay for the next start.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

from harness.kube import netns
from harness.kube.config import CNI_NETWORK, Layout
from harness.paths import KUBE_BIN_DIR
from harness.waiting import Waiter, WaitPolicy

CGROUP_ROOT = Path("/sys/fs/cgroup")
CNI_RESULTS = Path("/var/lib/cni/results")
SHIM_SOCKET_DIR = Path("/run/containerd/s")  # containerd 1.6 puts shim sockets here whatever its state dir
STOP_ORDER = (
    "kubelet",
    "coredns",
    "kube-router",
    "kube-proxy",
    "kube-scheduler",
    "kube-controller-manager",
    "kube-apiserver",
)
GRACE_S = 10.0
# Waits for the lane's processes to end: after SIGTERM every 0.2 s (daemons shut down gracefully in
# a few seconds), after SIGKILL every 0.1 s (the kernel ends them within moments). The timeout is
# the caller's grace.
TERM_POLL = WaitPolicy.fixed(GRACE_S, 0.2)
KILL_POLL = WaitPolicy.fixed(GRACE_S, 0.1)


def _pids() -> Iterator[int]:
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            yield int(entry.name)


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _net_inode(pid: int) -> int | None:
    try:
        return os.stat(f"/proc/{pid}/ns/net").st_ino
    except OSError:
        return None


def lane_processes(layout: Layout, *, spare: set[int] | None = None) -> list[int]:
    """Pids belonging to the lane (see the module docstring), never the caller or its parents."""
    spare = spare if spare is not None else ancestors()
    markers = (str(layout.run), str(KUBE_BIN_DIR))
    try:
        ns_inode: int | None = os.stat(netns.PATH).st_ino
    except OSError:
        ns_inode = None
    found = set(pod_processes())
    for pid in _pids():
        text = cmdline(pid)
        if any(m in text for m in markers) or (ns_inode is not None and _net_inode(pid) == ns_inode):
            found.add(pid)
    return sorted(found - spare)


def ancestors() -> set[int]:
    """This process and its parent, grandparent, ... (pids, read from /proc/PID/stat)."""
    pid, seen = os.getpid(), set()
    while pid > 1 and pid not in seen:
        seen.add(pid)
        try:
            pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            break
    return seen


def kubepods_dirs() -> list[Path]:
    """Every `kubepods` cgroup folder (v1 controllers and v2), deepest first."""
    dirs: list[Path] = []
    if not CGROUP_ROOT.is_dir():
        return dirs
    for top in [CGROUP_ROOT, *(p for p in CGROUP_ROOT.iterdir() if p.is_dir())]:
        base = top / "kubepods"
        if base.is_dir():
            dirs += [Path(root) for root, _, _ in os.walk(base)]
    return sorted(dirs, key=lambda p: len(p.parts), reverse=True)


def pod_processes() -> list[int]:
    found: set[int] = set()
    for folder in kubepods_dirs():
        with contextlib.suppress(OSError):
            found.update(int(line) for line in (folder / "cgroup.procs").read_text().split())
    return sorted(found)


def kill(pids: list[int], sig: signal.Signals) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    if state == "Z":
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(pid, os.WNOHANG)  # reap our own zombies
        return False
    return True


def terminate(pids: list[int], grace_s: float = GRACE_S) -> None:
    """SIGTERM, wait up to grace_s, then SIGKILL the rest."""
    def all_gone() -> bool:
        return not any(_alive(p) for p in pids)

    kill(pids, signal.SIGTERM)
    Waiter().retrying(TERM_POLL.within(grace_s), on_result=lambda gone: not gone)(all_gone)
    kill([p for p in pids if _alive(p)], signal.SIGKILL)
    Waiter().retrying(KILL_POLL.within(grace_s), on_result=lambda gone: not gone)(all_gone)


def shim_socket(containerd_address: str, namespace: str, container_id: str) -> Path:
    """Where containerd 1.6 puts a shim's socket (runtime/v2/shim SocketAddress)."""
    digest = hashlib.sha256(os.path.join(containerd_address, namespace, container_id).encode()).hexdigest()
    return SHIM_SOCKET_DIR / digest


def shims(layout: Layout) -> list[tuple[int, Path]]:
    """(pid, socket) of every shim serving our containerd."""
    address = str(layout.containerd_socket)
    found = []
    for pid in _pids():
        args = cmdline(pid).split()
        if not args or "containerd-shim" not in args[0] or address not in args:
            continue
        opts = dict(zip(args[1::2], args[2::2], strict=False))
        found.append((pid, shim_socket(address, opts.get("-namespace", "k8s.io"), opts.get("-id", ""))))
    return found


def mounts_under(root: Path) -> list[str]:
    """Mount points at or below root, deepest first (from /proc/self/mountinfo)."""
    prefix = str(root.resolve())
    points = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].replace("\\040", " ")
        if point == prefix or point.startswith(prefix + "/"):
            points.append(point)
    return sorted(set(points), key=lambda p: p.count("/"), reverse=True)


def unmount_all(root: Path) -> None:
    for _ in range(5):  # stacked mounts (a bind on a bind) need more than one pass
        points = mounts_under(root)
        if not points:
            return
        for point in points:
            subprocess.run(["umount", "-l", point], capture_output=True, check=False)


def _run_netns_is_own_mount() -> bool:
    return "/run/netns" in mounts_under(Path("/run/netns")) and not any(Path("/run/netns").iterdir())


def remove_cgroups() -> None:
    for folder in kubepods_dirs():
        with contextlib.suppress(OSError):
            folder.rmdir()


def teardown(run: Path, *, say: Callable[[str], None] = print) -> None:
    """Stop and remove everything of the cluster under `run` (idempotent)."""
    layout = Layout(run)
    pids = _recorded(layout)
    if "kubelet" in pids:  # first, so it restarts nothing we stop below
        say("stopping kubelet")
        terminate([pids["kubelet"]])
    if pods := pod_processes():
        say(f"stopping {len(pods)} pod processes")
        terminate(pods, grace_s=5.0)
    if "containerd" in pids and _alive(pids["containerd"]):
        forget_containers(layout, say)
    shim_list = shims(layout)
    if shim_list:
        say(f"stopping {len(shim_list)} containerd shims")
        terminate([pid for pid, _ in shim_list], grace_s=5.0)
    for name in (n for n in STOP_ORDER if n in pids and n != "kubelet"):
        terminate([pids[name]])
    for name in ("containerd", "etcd"):
        if name in pids:
            terminate([pids[name]])
    # The CRI plugin's per-container folders (containerd is stopped now); images are listed
    # from containerd's own store on the next start.
    for name in ("containers", "sandboxes"):
        shutil.rmtree(layout.image_store / "io.containerd.grpc.v1.cri" / name, ignore_errors=True)
    if leftovers := lane_processes(layout):
        say(f"stopping {len(leftovers)} other processes of the lane: {leftovers}")
        terminate(leftovers)
    remove_cgroups()
    for root in (run, layout.image_store):
        if root.exists():
            unmount_all(root)
    if netns.exists() or netns.PATH.exists():
        say(f"deleting network namespace {netns.NAME} (its veth, bridge, routes and iptables rules go with it)")
        netns.delete()
    if _run_netns_is_own_mount():
        subprocess.run(["umount", "/run/netns"], capture_output=True, check=False)
    for _, socket in shim_list:
        socket.unlink(missing_ok=True)
    for folder in (SHIM_SOCKET_DIR, SHIM_SOCKET_DIR.parent):  # created by our containerd; kept if in use
        with contextlib.suppress(OSError):
            folder.rmdir()
    if CNI_RESULTS.is_dir():
        for cached in CNI_RESULTS.glob(f"{CNI_NETWORK}-*"):
            cached.unlink(missing_ok=True)
    if run.exists():
        say(f"removing {run}")
        shutil.rmtree(run, ignore_errors=True)
        if run.exists():
            raise RuntimeError(f"could not remove {run}: something still holds it (see `findmnt -R {run}`)")


def _ctr(layout: Layout, *args: str) -> subprocess.CompletedProcess[str]:
    argv = ["ctr", "--address", str(layout.containerd_socket), "-n", "k8s.io", *args]
    return subprocess.run(argv, capture_output=True, text=True, check=False, timeout=60)


def forget_containers(layout: Layout, say: Callable[[str], None]) -> None:
    """Delete every task and container (pods' and sandboxes') from containerd, keeping its images.

    containerd's root outlives the cluster as the image cache; without this its metadata would
    hand the next cluster's kubelet containers of pods that no longer exist. Deleting a task
    also lets its shim unmount the rootfs and exit cleanly.
    """
    tasks = _ctr(layout, "tasks", "ls", "-q").stdout.split()
    for task in tasks:
        _ctr(layout, "tasks", "delete", "--force", task)
    containers = _ctr(layout, "containers", "ls", "-q").stdout.split()
    if containers:
        say(f"removing {len(containers)} containers from containerd (its images stay cached)")
        _ctr(layout, "containers", "delete", *containers)


def _recorded(layout: Layout) -> dict[str, int]:
    if not layout.pids.is_file():
        return {}
    return {name: int(pid) for name, pid in json.loads(layout.pids.read_text()).items()}
