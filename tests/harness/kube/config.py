"""The cluster's configuration files, rendered from one `Layout` (pure functions, no side effects).

Addresses and CIDRs come from `harness.kube.netns`; every path lives under the run folder so
that `down` can remove all of it. Facts that cost time on these machines are noted where used.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import yaml

from harness.kube import netns

NODE_NAME = "rag-kube-node"
CONTEXT = "rag-kube"
CLUSTER_DOMAIN = "cluster.local"
APISERVER_PORT = 6443
ETCD_CLIENT, ETCD_PEER = "http://127.0.0.1:2379", "http://127.0.0.1:2380"
# Must match the pause image harness.kube.images builds (and kubeadm's default for 1.34).
SANDBOX_IMAGE = "registry.k8s.io/pause:3.10.1"
CNI_BIN_DIR = "/usr/lib/cni"  # Debian's containernetworking-plugins
CNI_NETWORK = "rag-kube"
KUBELET_SYNC_S = 10  # kubelet syncFrequency: bounds how long a changed Secret takes to reach a pod
COREDNS_READY_PORT = 8181
# kube-router in firewall-only mode enforces NetworkPolicy with iptables + ipset; these are its
# top-level chains (the filter table's INPUT, FORWARD and OUTPUT jump to them) and the chain
# prefixes of its per-pod and per-policy chains (pkg/controllers/netpol/network_policy_controller.go).
KUBE_ROUTER_CHAINS = ("KUBE-ROUTER-INPUT", "KUBE-ROUTER-FORWARD", "KUBE-ROUTER-OUTPUT")
KUBE_ROUTER_CHAIN_PREFIXES = ("KUBE-ROUTER-", "KUBE-POD-FW-", "KUBE-NWPLCY-")
KUBE_ROUTER_HEALTH_PORT = 20244  # upstream's default; /healthz answers 200 while its controllers heartbeat
KUBE_ROUTER_USER = "rag-kube:kube-router"


def kubernetes_service_ip(service_cidr: str = netns.SERVICE_CIDR) -> str:
    """The first address of the Service range: the `kubernetes` Service the API server creates."""
    base, _ = service_cidr.split("/")
    parts = base.split(".")
    return ".".join([*parts[:3], str(int(parts[3]) + 1)])


@dataclass(frozen=True)
class Layout:
    """Where each component keeps its state, inside one run folder."""

    run: Path

    @property
    def pki(self) -> Path:
        return self.run / "pki"

    @property
    def logs(self) -> Path:
        return self.run / "logs"

    @property
    def etcd_data(self) -> Path:
        return self.run / "etcd"

    @property
    def containerd(self) -> Path:
        return self.run / "containerd"

    @property
    def image_store(self) -> Path:
        """containerd's root (content, snapshots, metadata): next to the run folder, so that
        imported images survive `down` like the other caches (their containers do not)."""
        return self.run.parent / "containerd-root"

    @property
    def containerd_socket(self) -> Path:
        return self.containerd / "containerd.sock"

    @property
    def kubelet_root(self) -> Path:
        return self.run / "kubelet"

    @property
    def cni_conf_dir(self) -> Path:
        return self.run / "cni" / "net.d"

    @property
    def volumes(self) -> Path:
        return self.run / "volumes"

    @property
    def pids(self) -> Path:
        return self.run / "pids.json"

    def file(self, name: str) -> Path:
        return self.run / "config" / name


def containerd_toml(layout: Layout) -> str:
    """containerd 1.6 config (version 2): own root/state/sockets, CRI with CNI from /usr/lib/cni."""
    cri = 'plugins."io.containerd.grpc.v1.cri"'
    state = layout.containerd / "state"
    return f"""version = 2
root = "{layout.image_store}"
state = "{state}"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", \
"io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs"]

[grpc]
  address = "{layout.containerd_socket}"

[ttrpc]
  address = "{layout.containerd / "containerd.sock.ttrpc"}"

[plugins."io.containerd.internal.v1.opt"]
  path = "{layout.containerd / "opt"}"

[{cri}]
  sandbox_image = "{SANDBOX_IMAGE}"
  # runc cannot set a negative oom_score_adj here: without this every sandbox fails with
  # "can't get final child's PID from pipe: EOF".
  restrict_oom_score_adj = true
  # Pod network namespaces are bind-mounted under the state dir, not /var/run/netns.
  netns_mounts_under_state_dir = true
  enable_selinux = false

[{cri}.containerd]
  snapshotter = "overlayfs"
  default_runtime_name = "runc"

[{cri}.containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"

[{cri}.containerd.runtimes.runc.options]
  SystemdCgroup = false
  Root = "{layout.containerd / "runc"}"

[{cri}.cni]
  bin_dir = "{CNI_BIN_DIR}"
  conf_dir = "{layout.cni_conf_dir}"
  max_conf_num = 1
"""


def cni_conflist(layout: Layout) -> str:
    """bridge + host-local + portmap (containerd adds loopback itself)."""
    doc = {
        "cniVersion": "1.0.0",
        "name": CNI_NETWORK,
        "plugins": [
            {
                "type": "bridge",
                "bridge": "rk-cni0",
                "isGateway": True,
                "ipMasq": False,  # nothing leaves the namespace: no NAT to the outside needed
                "hairpinMode": True,  # a pod can reach itself through its Service
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": netns.POD_CIDR}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                    "dataDir": str(layout.run / "cni" / "ipam"),
                },
            },
            {"type": "portmap", "capabilities": {"portMappings": True}},
        ],
    }
    return json.dumps(doc, indent=2)


def kubelet_config(layout: Layout) -> str:
    doc = {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": True},
            "x509": {"clientCAFile": str(layout.pki / "ca.crt")},
        },
        "authorization": {"mode": "Webhook"},
        # This machine has a cgroup v1 hybrid hierarchy and no systemd.
        "cgroupDriver": "cgroupfs",
        "failCgroupV1": False,
        "containerRuntimeEndpoint": f"unix://{layout.containerd_socket}",
        "clusterDNS": [netns.NODE_IP],  # CoreDNS runs as a process on the node address
        "clusterDomain": CLUSTER_DOMAIN,
        "resolvConf": "",  # pods get cluster DNS only: the machine's resolvers are out of reach anyway
        "failSwapOn": False,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": 10248,
        "podLogsDir": str(layout.run / "pod-logs"),
        "syncFrequency": f"{KUBELET_SYNC_S}s",
        "serializeImagePulls": False,
        # Images are imported, never pulled: nothing may garbage-collect them, and a busy shared
        # disk must not evict the test's pods.
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "evictionHard": {"memory.available": "100Mi", "nodefs.available": "1%", "imagefs.available": "1%"},
        "registerNode": True,
    }
    return yaml.safe_dump(doc, sort_keys=False)


def kube_proxy_config(layout: Layout, kubeconfig: Path) -> str:
    doc = {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "clientConnection": {"kubeconfig": str(kubeconfig)},
        "mode": "iptables",
        "clusterCIDR": netns.POD_CIDR,
        "hostnameOverride": NODE_NAME,
        "healthzBindAddress": "127.0.0.1:10256",
        "metricsBindAddress": "127.0.0.1:10249",
        # Leave the kernel's conntrack settings alone (they are machine-wide, not ours to change).
        "conntrack": {"maxPerCore": 0, "min": 0, "tcpEstablishedTimeout": "0s", "tcpCloseWaitTimeout": "0s"},
        "iptables": {"localhostNodePorts": False},
        "nodePortAddresses": ["primary"],
    }
    return yaml.safe_dump(doc, sort_keys=False)


def corefile(kubeconfig: Path) -> str:
    """Cluster DNS: Services and pods from the API, the node name from a hosts entry, nothing else."""
    return f""".:53 {{
    errors
    health 127.0.0.1:8080
    ready {netns.NODE_IP}:{COREDNS_READY_PORT}
    hosts {{
        {netns.NODE_IP} {NODE_NAME}
        fallthrough
    }}
    kubernetes {CLUSTER_DOMAIN} in-addr.arpa ip6.arpa {{
        kubeconfig {kubeconfig} {CONTEXT}
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
    }}
    cache 30
    loadbalance
}}
"""


COREDNS_RBAC = """apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: rag-kube:coredns
rules:
  - apiGroups: [""]
    resources: [endpoints, services, pods, namespaces]
    verbs: [list, watch]
  - apiGroups: [discovery.k8s.io]
    resources: [endpointslices]
    verbs: [list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: rag-kube:coredns
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: rag-kube:coredns
subjects:
  - apiGroup: rbac.authorization.k8s.io
    kind: User
    name: rag-kube:coredns
"""


# Upstream's ClusterRole for kube-router (daemonset/generic-kuberouter.yaml at v2.1.0), bound
# to the lane's kube-router client certificate instead of a ServiceAccount.
KUBE_ROUTER_RBAC = f"""apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: kube-router
rules:
  - apiGroups: [""]
    resources: [namespaces, pods, services, nodes, endpoints]
    verbs: [list, get, watch]
  - apiGroups: [networking.k8s.io]
    resources: [networkpolicies]
    verbs: [list, get, watch]
  - apiGroups: [coordination.k8s.io]
    resources: [leases]
    verbs: [get, create, update]
  - apiGroups: [""]
    resources: [services/status]
    verbs: [update]
  - apiGroups: [discovery.k8s.io]
    resources: [endpointslices]
    verbs: [get, list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: kube-router
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: kube-router
subjects:
  - apiGroup: rbac.authorization.k8s.io
    kind: User
    name: {KUBE_ROUTER_USER}
"""


def kube_router_argv(binary: str, kubeconfig: Path) -> list[str]:
    """kube-router as upstream's firewall-only DaemonSet runs it (daemonset/kube-router-firewall-daemonset.yaml):
    NetworkPolicy only, no routing, no service proxy (kube-proxy keeps that), as the lane's node."""
    return [
        binary,
        "--run-router=false",
        "--run-firewall=true",
        "--run-service-proxy=false",
        f"--kubeconfig={kubeconfig}",
        f"--hostname-override={NODE_NAME}",
        f"--service-cluster-ip-range={netns.SERVICE_CIDR}",
        f"--health-port={KUBE_ROUTER_HEALTH_PORT}",
        "--metrics-port=0",
        "--v=1",
    ]


def without_kube_router(iptables_save: str) -> str:
    """`iptables-save -t filter` output minus kube-router's chains and every rule naming them.

    Input and output: iptables-save text. What is left is the filter table as if kube-router
    had never run (kube-proxy's chains untouched), for `iptables-restore`.
    """

    def ours(line: str) -> bool:
        words = line.replace(":", " ").split()
        return any(word.startswith(KUBE_ROUTER_CHAIN_PREFIXES) for word in words)

    return "".join(line for line in iptables_save.splitlines(keepends=True) if not ours(line))
