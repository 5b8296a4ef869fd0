"""Start the lane's single-node cluster as processes inside the `rag-kube` network namespace.

Order and why: etcd (the API's store) -> containerd (the CRI the kubelet needs) -> images
imported into containerd -> kube-apiserver -> kube-controller-manager (ALL controllers, so the
node lifecycle controller clears the node's not-ready taint by itself) -> kube-scheduler ->
kubelet -> kube-proxy (iptables) -> kube-router's firewall (NetworkPolicy enforcement: the CNI
bridge enforces none) -> CoreDNS. Each is started with `nsenter --net=...`, logs to
`<run>/logs/<name>.log`, and is health-waited before the next one starts. Then the node must be
Ready without taints, and storage (default StorageClass + hostPath PVs) is created.

`up()` reuses a cluster whose processes all still run and whose API answers.
"""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import tarfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from harness import http
from harness.errors import ClusterError
from harness.kube import binaries, config, netns, pki, storage, teardown
from harness.kube.config import NODE_NAME, Layout
from harness.local import processes
from harness.tools import require
from harness.waiting import Waiter, WaitPolicy, WaitTimeout

RUN_DIR = binaries.KUBE_CACHE / "run"
COMPONENT_TIMEOUT_S = 120.0  # one component from start to healthy (the API server takes ~20 s on a busy machine)
NODE_READY_TIMEOUT_S = 180.0  # kubelet registration -> Ready and untainted
# A component's health endpoint answers within moments of being up: poll every 0.5 s.
COMPONENT_HEALTHY = WaitPolicy.fixed(COMPONENT_TIMEOUT_S, 0.5)
# Each check of the node runs kubectl (a process start): once a second is often enough.
NODE_READY = WaitPolicy.fixed(NODE_READY_TIMEOUT_S, 1.0)
IMPORT_TIMEOUT_S = 600.0  # one `ctr images import` of a large archive
CLIENTS = [
    pki.Client("admin", "rag-kube:admin", "system:masters"),
    pki.Client("controller-manager", "system:kube-controller-manager"),
    pki.Client("scheduler", "system:kube-scheduler"),
    pki.Client("kube-proxy", "system:kube-proxy"),
    pki.Client("kubelet", f"system:node:{NODE_NAME}", "system:nodes"),
    pki.Client("apiserver-kubelet-client", "kube-apiserver-kubelet-client", "system:masters"),
    pki.Client("coredns", "rag-kube:coredns"),
    pki.Client("kube-router", config.KUBE_ROUTER_USER),
]


class KubeClusterError(ClusterError):
    pass


def archive_manifest(archive: Path) -> tuple[str, str]:
    """(image ref, manifest digest) of an OCI archive, from its index.json.

    buildah writes the ref as the `org.opencontainers.image.ref.name` annotation; an image
    named `registry.k8s.io/pause:3.10.1` is imported by `ctr` under that exact name.
    """
    with tarfile.open(archive) as tar:
        member = tar.extractfile("index.json")
        if member is None:
            raise KubeClusterError(f"{archive} has no index.json: not an OCI archive")
        index = json.load(member)
    (manifest,) = index["manifests"]
    ref = manifest.get("annotations", {}).get("org.opencontainers.image.ref.name", "")
    return _full_ref(ref), manifest["digest"]


def _full_ref(ref: str) -> str:
    """What ctr lists for a ref: docker.io/library/ added to short names, as it does on import."""
    first = ref.split("/", 1)[0]
    if "/" not in ref:
        return f"docker.io/library/{ref}"
    if "." not in first and ":" not in first and first != "localhost":
        return f"docker.io/{ref}"
    return ref


@dataclass(frozen=True)
class Component:
    name: str
    argv: list[str]
    healthy: Callable[[], bool]
    why: str


def _get_ok(url: str, *, tls: ssl.SSLContext | None = None) -> bool:
    """GET answers 200. Without `tls`, a component's self-signed serving cert is not verified
    (only its /healthz is read, from inside the namespace)."""
    return http.answers_ok(url, verify=tls or False)


def iptables(*args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
    """An iptables command (`iptables`, `iptables-save`, `iptables-restore` as args[0]) inside the lane's namespace."""
    return subprocess.run(netns.nsenter(list(args)), input=input, capture_output=True, text=True, check=False)


def network_policy_chains_exist() -> bool:
    """kube-router's top-level firewall chains are in the namespace's filter table (it adds them once synced)."""
    return all(iptables("iptables", "-S", chain).returncode == 0 for chain in config.KUBE_ROUTER_CHAINS)


def client_tls(pki_dir: Path, client: str) -> ssl.SSLContext:
    """Verify the API server against the cluster CA and present `client`'s certificate."""
    context = ssl.create_default_context(cafile=str(pki_dir / "ca.crt"))
    context.load_cert_chain(str(pki_dir / f"{client}.crt"), str(pki_dir / f"{client}.key"))
    return context


class Cluster:
    """The processes and files of one cluster under `run` (default .cache/kube/run)."""

    def __init__(self, run: Path = RUN_DIR, *, say: Callable[[str], None] = print) -> None:
        self.layout = Layout(run)
        self.say = say
        self.bins = binaries.Binaries(binaries.BIN)

    # paths clients need --------------------------------------------------------------------

    @property
    def admin_kubeconfig(self) -> Path:
        return self.layout.pki / "admin.kubeconfig"

    def kubectl(self, *args: str, input: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        argv = [str(require("kubectl")), "--kubeconfig", str(self.admin_kubeconfig), *args]
        proc = subprocess.run(argv, input=input, capture_output=True, text=True, check=False)
        if check and proc.returncode != 0:
            raise KubeClusterError(f"kubectl {' '.join(args)} failed: {proc.stderr.strip()}")
        return proc

    # lifecycle -----------------------------------------------------------------------------

    def running(self) -> bool:
        """All recorded processes alive and the API server ready."""
        pids = self._pids()
        if not pids or not netns.exists() or not all(processes.alive(pid) for pid in pids.values()):
            return False
        netns.enter()
        return self._apiserver_ready()

    def up(self, images: list[Path]) -> None:
        """Start every component (or reuse a running cluster); the caller's process ends up inside the netns."""
        if self.running():
            self.say(f"reusing the running kube cluster (run folder {self.layout.run})")
            self._import_images(images)  # only what changed since it started
            return
        if self.layout.run.exists() or netns.exists():
            self.say(f"a stopped or half-started kube cluster left state behind ({self.layout.run}): removing it first")
            teardown.teardown(self.layout.run, say=self.say)
        started = time.monotonic()
        self._prepare_files()
        netns.create()
        netns.enter()  # health checks below and every later client run inside the namespace
        self._start(self._etcd())
        self._start(self._containerd())
        self._import_images(images)
        for component in (self._apiserver(), self._controller_manager(), self._scheduler()):
            self._start(component)
        self._apply_coredns_rbac()
        for component in (self._kubelet(), self._kube_proxy()):
            self._start(component)
        self.start_network_policies()
        self._start(self._coredns())
        self._wait_node_ready()
        storage.create(self.kubectl, self.layout.volumes, say=self.say)
        self.say(f"kube cluster ready in {time.monotonic() - started:.0f}s (logs in {self.layout.logs})")

    # files ---------------------------------------------------------------------------------

    def _prepare_files(self) -> None:
        lay = self.layout
        for folder in (lay.logs, lay.etcd_data, lay.containerd, lay.kubelet_root, lay.cni_conf_dir, lay.volumes):
            folder.mkdir(parents=True, exist_ok=True)
        lay.etcd_data.chmod(0o700)
        self.say("generating the cluster's CA, certificates and kubeconfigs")
        names = [
            config.kubernetes_service_ip(),
            netns.NODE_IP,
            "127.0.0.1",
            NODE_NAME,
            "localhost",
            "kubernetes",
            "kubernetes.default",
            "kubernetes.default.svc",
            f"kubernetes.default.svc.{config.CLUSTER_DOMAIN}",
        ]
        pki.create(lay.pki, clients=CLIENTS, apiserver_names=names, server=self.server, context=config.CONTEXT)
        lay.file("x").parent.mkdir(parents=True, exist_ok=True)
        lay.file("containerd.toml").write_text(config.containerd_toml(lay))
        (lay.cni_conf_dir / "10-rag-kube.conflist").write_text(config.cni_conflist(lay))
        lay.file("kubelet.yaml").write_text(config.kubelet_config(lay))
        lay.file("kube-proxy.yaml").write_text(config.kube_proxy_config(lay, lay.pki / "kube-proxy.kubeconfig"))
        lay.file("Corefile").write_text(config.corefile(lay.pki / "coredns.kubeconfig"))

    @property
    def server(self) -> str:
        return f"https://{netns.NODE_IP}:{config.APISERVER_PORT}"

    # components ----------------------------------------------------------------------------

    def _etcd(self) -> Component:
        return Component(
            "etcd",
            ["etcd", "--name", "rag-kube", "--data-dir", str(self.layout.etcd_data),
             "--listen-client-urls", config.ETCD_CLIENT, "--advertise-client-urls", config.ETCD_CLIENT,
             "--listen-peer-urls", config.ETCD_PEER, "--initial-advertise-peer-urls", config.ETCD_PEER,
             "--initial-cluster", f"rag-kube={config.ETCD_PEER}", "--log-level", "warn"],
            lambda: _get_ok(f"{config.ETCD_CLIENT}/health"),
            "the API server's datastore",
        )  # fmt: skip

    def _containerd(self) -> Component:
        sock = self.layout.containerd_socket
        return Component(
            "containerd",
            ["containerd", "--config", str(self.layout.file("containerd.toml"))],
            lambda: sock.exists() and self._ctr("version", check=False).returncode == 0,
            "the container runtime (CRI) the kubelet drives",
        )

    def _apiserver(self) -> Component:
        p = self.layout.pki
        return Component(
            "kube-apiserver",
            [self.bins["kube-apiserver"], f"--etcd-servers={config.ETCD_CLIENT}",
             f"--advertise-address={netns.NODE_IP}", f"--secure-port={config.APISERVER_PORT}",
             f"--service-cluster-ip-range={netns.SERVICE_CIDR}",
             f"--client-ca-file={p / 'ca.crt'}", f"--tls-cert-file={p / 'apiserver.crt'}",
             f"--tls-private-key-file={p / 'apiserver.key'}",
             f"--service-account-key-file={p / 'sa.pub'}", f"--service-account-signing-key-file={p / 'sa.key'}",
             f"--service-account-issuer=https://kubernetes.default.svc.{config.CLUSTER_DOMAIN}",
             "--authorization-mode=Node,RBAC", "--enable-admission-plugins=NodeRestriction",
             f"--kubelet-client-certificate={p / 'apiserver-kubelet-client.crt'}",
             f"--kubelet-client-key={p / 'apiserver-kubelet-client.key'}",
             # logs, exec and port-forward reach the kubelet by the node's address, not its name
             "--kubelet-preferred-address-types=InternalIP", "--profiling=false", "--v=1"],
            self._apiserver_ready,
            "the Kubernetes API",
        )  # fmt: skip

    def _apiserver_ready(self) -> bool:
        return _get_ok(f"{self.server}/readyz", tls=client_tls(self.layout.pki, "admin"))

    def _controller_manager(self) -> Component:
        p = self.layout.pki
        kubeconfig = str(p / "controller-manager.kubeconfig")
        return Component(
            "kube-controller-manager",
            [self.bins["kube-controller-manager"], f"--kubeconfig={kubeconfig}",
             f"--authentication-kubeconfig={kubeconfig}", f"--authorization-kubeconfig={kubeconfig}",
             "--controllers=*", "--leader-elect=false", "--bind-address=127.0.0.1",
             f"--service-account-private-key-file={p / 'sa.key'}", f"--root-ca-file={p / 'ca.crt'}",
             f"--cluster-signing-cert-file={p / 'ca.crt'}", f"--cluster-signing-key-file={p / 'ca.key'}",
             "--use-service-account-credentials=true", "--profiling=false", "--v=1"],
            lambda: _get_ok("https://127.0.0.1:10257/healthz"),
            "every controller, including node lifecycle (clears the node's not-ready taint)",
        )  # fmt: skip

    def _scheduler(self) -> Component:
        kubeconfig = str(self.layout.pki / "scheduler.kubeconfig")
        return Component(
            "kube-scheduler",
            [self.bins["kube-scheduler"], f"--kubeconfig={kubeconfig}", f"--authentication-kubeconfig={kubeconfig}",
             f"--authorization-kubeconfig={kubeconfig}", "--leader-elect=false", "--bind-address=127.0.0.1",
             "--profiling=false", "--v=1"],
            lambda: _get_ok("https://127.0.0.1:10259/healthz"),
            "places pods on the node",
        )  # fmt: skip

    def _kubelet(self) -> Component:
        lay = self.layout
        return Component(
            "kubelet",
            [self.bins["kubelet"], f"--config={lay.file('kubelet.yaml')}",
             f"--kubeconfig={lay.pki / 'kubelet.kubeconfig'}", f"--root-dir={lay.kubelet_root}",
             f"--hostname-override={NODE_NAME}", f"--node-ip={netns.NODE_IP}", "--v=1"],
            lambda: _get_ok("http://127.0.0.1:10248/healthz"),
            "runs the pods through containerd",
        )  # fmt: skip

    def _kube_proxy(self) -> Component:
        return Component(
            "kube-proxy",
            [self.bins["kube-proxy"], f"--config={self.layout.file('kube-proxy.yaml')}", "--v=1"],
            lambda: _get_ok("http://127.0.0.1:10256/healthz"),
            "Service IPs (iptables rules inside the namespace)",
        )

    def _coredns(self) -> Component:
        return Component(
            "coredns",
            [self.bins["coredns"], "-conf", str(self.layout.file("Corefile"))],
            lambda: _get_ok(f"http://{netns.NODE_IP}:{config.COREDNS_READY_PORT}/ready"),
            "cluster DNS (Service names and the node name)",
        )

    def _network_policies(self) -> Component:
        kubeconfig = self.layout.pki / "kube-router.kubeconfig"
        return Component(
            "kube-router",
            config.kube_router_argv(self.bins[binaries.KUBE_ROUTER.outputs[0]], kubeconfig),
            lambda: (
                _get_ok(f"http://127.0.0.1:{config.KUBE_ROUTER_HEALTH_PORT}/healthz") and network_policy_chains_exist()
            ),
            f"NetworkPolicy enforcement ({binaries.KUBE_ROUTER.module} as a firewall only: iptables + ipset)",
        )

    def start_network_policies(self) -> None:
        """Bind kube-router's user to upstream's ClusterRole and start it.

        Healthy once its health endpoint answers and its chains are in the filter table.
        """
        self.kubectl("apply", "-f", "-", input=config.KUBE_ROUTER_RBAC)
        self._start(self._network_policies())

    def stop_network_policies(self) -> None:
        """Stop kube-router and remove its chains and rules: NetworkPolicies are then not enforced.

        Its rules outlive it (it is a DaemonSet's pod elsewhere: rules stay while it restarts), so
        the filter table is restored without them; kube-proxy's rules stay.
        """
        pids = self._pids()
        if (pid := pids.pop("kube-router", None)) is not None:
            teardown.terminate([pid])
            self.layout.pids.write_text(json.dumps(pids, indent=2))
        save = iptables("iptables-save", "-t", "filter")
        if save.returncode != 0:
            raise KubeClusterError(f"iptables-save failed: {save.stderr.strip()}")
        restore = iptables("iptables-restore", input=config.without_kube_router(save.stdout))
        if restore.returncode != 0:
            raise KubeClusterError(f"iptables-restore without kube-router's rules failed: {restore.stderr.strip()}")

    # starting and waiting ------------------------------------------------------------------

    def _start(self, component: Component) -> None:
        self.say(f"starting {component.name}: {component.why}")
        log = self.layout.logs / f"{component.name}.log"
        env = {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")}
        running = processes.start(component.name, netns.nsenter(component.argv), env, log, self.layout.run, None)
        self._record_pid(component.name, running.pid)
        t0 = time.monotonic()

        def check() -> bool:
            if not processes.alive(running.pid):
                raise KubeClusterError(f"{component.name} exited while starting; log {log}:\n{processes.log_tail(log)}")
            return component.healthy()

        try:
            Waiter().until(check, COMPONENT_HEALTHY, what=f"{component.name} healthy")
        except WaitTimeout as error:
            raise KubeClusterError(
                f"{component.name} not healthy after {COMPONENT_TIMEOUT_S:.0f}s; log {log}:\n{processes.log_tail(log)}"
            ) from error
        self.say(f"  {component.name} healthy after {time.monotonic() - t0:.1f}s")

    def _record_pid(self, name: str, pid: int) -> None:
        pids = self._pids()
        pids[name] = pid
        self.layout.pids.write_text(json.dumps(pids, indent=2))

    def _pids(self) -> dict[str, int]:
        path = self.layout.pids
        return json.loads(path.read_text()) if path.is_file() else {}

    def _ctr(self, *args: str, check: bool = True, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        argv = ["ctr", "--address", str(self.layout.containerd_socket), "-n", "k8s.io", *args]
        proc = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=timeout)
        if check and proc.returncode != 0:
            raise KubeClusterError(f"ctr {' '.join(args)} failed: {proc.stderr.strip()}")
        return proc

    def _import_images(self, archives: list[Path]) -> None:
        """Import each archive unless containerd already holds that exact manifest (kept across runs)."""
        present = self._image_digests()
        for archive in archives:
            name, digest = archive_manifest(archive)
            if present.get(name) == digest:
                self.say(f"image {name}: already in containerd ({digest[:19]})")
                continue
            t0 = time.monotonic()
            self.say(f"importing image {name} into containerd ({archive.stat().st_size >> 20} MiB, unpacked on import)")
            self._ctr("images", "import", str(archive), timeout=IMPORT_TIMEOUT_S)
            self.say(f"  imported {name} in {time.monotonic() - t0:.1f}s")

    def _image_digests(self) -> dict[str, str]:
        """{image ref: manifest digest} of the images containerd holds."""
        found = {}
        for line in self._ctr("images", "ls").stdout.splitlines()[1:]:
            fields = line.split()
            if len(fields) >= 3:
                found[fields[0]] = fields[2]
        return found

    def _apply_coredns_rbac(self) -> None:
        self.kubectl("apply", "-f", "-", input=config.COREDNS_RBAC)

    def _wait_node_ready(self) -> None:
        self.say(f"waiting for node {NODE_NAME} to be Ready with no taints (node lifecycle controller)")
        t0 = time.monotonic()
        last = ["not registered yet"]

        def ready() -> bool:
            proc = self.kubectl("get", "node", NODE_NAME, "-o", "json", check=False)
            if proc.returncode != 0:
                return False
            node = json.loads(proc.stdout)
            conditions = node["status"].get("conditions", [])
            is_ready = any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)
            taints = [t["key"] for t in node["spec"].get("taints", [])]
            last[0] = f"Ready={is_ready}, taints={taints}"
            return is_ready and not taints

        try:
            Waiter().until(ready, NODE_READY, what=f"node {NODE_NAME} Ready")
        except WaitTimeout as error:
            raise KubeClusterError(
                f"node {NODE_NAME} not Ready and untainted after {NODE_READY_TIMEOUT_S:.0f}s ({last[0]}); "
                f"kubelet log {self.layout.logs / 'kubelet.log'}"
            ) from error
        self.say(f"  node Ready after {time.monotonic() - t0:.1f}s")
