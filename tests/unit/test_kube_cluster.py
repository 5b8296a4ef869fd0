"""The kube target's pure parts: build inputs, config files, PKI, storage, namespace plan.

Nothing here needs root, a network namespace or a binary; the lane itself (tests/kube and the
e2e suite with --target kube) proves the whole cluster.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.x509.oid import NameOID
from harness.cluster.runner import CommandResult, RecordingRunner
from harness.kube import binaries, config, netns, pki, prereqs, storage
from harness.kube.config import Layout
from harness.targets import TARGET_NAMES, TargetOptions
from harness.targets.kube import KubeTarget

KUBERNETES_GOMOD = """module k8s.io/kubernetes

go 1.24.0

require (
\tk8s.io/api v0.0.0
)

replace (
\tk8s.io/api => ./staging/src/k8s.io/api
\tk8s.io/kubectl => ./staging/src/k8s.io/kubectl
\tgithub.com/example/other => github.com/example/other v1.2.3
)
"""


def test_staging_replaces_map_only_staging_modules_to_published_versions() -> None:
    assert binaries.staging_replaces(KUBERNETES_GOMOD, "v0.34.1") == [
        "k8s.io/api => k8s.io/api v0.34.1",
        "k8s.io/kubectl => k8s.io/kubectl v0.34.1",
    ]


def test_kubernetes_build_sets_release_version_ldflags_and_builds_all_commands_at_once() -> None:
    build = binaries.KUBERNETES
    assert build.outputs == ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet", "kube-proxy")
    assert "-X k8s.io/component-base/version.gitVersion=v1.34.1" in build.ldflags
    assert "-X k8s.io/client-go/pkg/version.gitMinor=34" in build.ldflags


def test_build_is_cached_only_with_matching_stamp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(binaries, "BIN", tmp_path)
    build = binaries.COREDNS
    (tmp_path / "coredns").write_text("binary")
    assert not build.cached()
    build.stamp.write_text("something else")
    assert not build.cached()
    build.stamp.write_text(build.identity)
    assert build.cached()


def test_network_policies_build_its_upstream_main_under_its_own_name() -> None:
    build = binaries.NETWORK_POLICIES
    assert build.module == "sigs.k8s.io/kube-network-policies@v0.8.0"
    assert build.packages == ("sigs.k8s.io/kube-network-policies/cmd",)
    assert build in binaries.BUILDS
    argv = binaries.build_argv(build)
    assert argv[:3] == ["nice", "-n", "10"]
    assert argv[argv.index("-o") + 1] == f"{binaries.BIN}/kube-network-policies"  # not `cmd`
    assert argv[-1] == "sigs.k8s.io/kube-network-policies/cmd"
    # several packages still go into BIN under their own names
    kube = binaries.build_argv(binaries.KUBERNETES)
    assert kube[kube.index("-o") + 1] == f"{binaries.BIN}/" and kube[-5:] == list(binaries.KUBERNETES.packages)


def test_wrapper_gomod_requires_only_the_pinned_module() -> None:
    text = binaries.wrapper_gomod("kube-network-policies", "sigs.k8s.io/kube-network-policies", "v0.8.0")
    assert text.startswith("module rag.local/kube-network-policies\n")
    assert "require sigs.k8s.io/kube-network-policies v0.8.0\n" in text
    assert "replace" not in text
    assert binaries.kubernetes_tools_go(("sigs.k8s.io/kube-network-policies/cmd",)).startswith("//go:build tools")


def test_network_policies_run_as_the_node_with_in_cluster_credentials(tmp_path: Path) -> None:
    account = Layout(tmp_path).network_policies_account
    argv = config.network_policies_argv("/bin/knp", account)
    assert argv[:5] == ["unshare", "--mount", "--propagation", "private", "--"]
    script = argv[argv.index("-c") + 1]
    # the account folder is bind-mounted where rest.InClusterConfig reads it, in its own mount namespace only
    assert "mount -t tmpfs" in script and f'mount --bind -o ro "$1" {config.SERVICE_ACCOUNT_MOUNT}' in script
    assert config.SERVICE_ACCOUNT_MOUNT == "/var/run/secrets/kubernetes.io/serviceaccount"
    assert script.rstrip().endswith('exec "$@"')
    assert argv[argv.index("-c") + 3] == str(account)
    command = argv[argv.index("/bin/knp") :]
    assert f"--hostname-override={config.NODE_NAME}" in command
    assert f"--nfqueue-id={config.NETWORK_POLICIES_QUEUE}" in command
    assert "--metrics-bind-address=127.0.0.1:9080" in command  # loopback, not upstream's every-address default
    assert not any("token" in arg for arg in argv), "the token is a file, never an argument"
    assert config.in_cluster_env() == {"KUBERNETES_SERVICE_HOST": netns.NODE_IP, "KUBERNETES_SERVICE_PORT": "6443"}


def test_network_policies_rbac_is_upstreams_read_only_role() -> None:
    docs = list(yaml.safe_load_all(config.NETWORK_POLICIES_RBAC))
    kinds = {doc["kind"]: doc for doc in docs}
    assert set(kinds) == {"ServiceAccount", "ClusterRole", "ClusterRoleBinding"}
    rules = kinds["ClusterRole"]["rules"]
    assert {r for rule in rules for r in rule["resources"]} == {"pods", "namespaces", "networkpolicies"}
    assert all(rule["verbs"] == ["list", "watch"] for rule in rules)
    (subject,) = kinds["ClusterRoleBinding"]["subjects"]
    assert (subject["name"], subject["namespace"]) == (config.NETWORK_POLICIES_ACCOUNT, "kube-system")
    assert config.NETWORK_POLICIES_TABLE == ("inet", "kube-network-policies")  # the table teardown removes


def test_prereqs_name_each_missing_thing_and_its_fix() -> None:
    absent = (prereqs.Package("no-such-package", "/nonexistent/bin/tool", "testing"),)
    found = prereqs.problems(euid=1000, packages=absent)
    assert len(found) == 2
    assert "needs root" in found[0]
    assert "no-such-package" in found[1] and "apt-get install -y no-such-package" in found[1]
    assert prereqs.problems(euid=0, packages=()) == []


def test_containerd_config_has_the_settings_this_machine_needs(tmp_path: Path) -> None:
    doc = tomllib.loads(config.containerd_toml(Layout(tmp_path)))
    cri = doc["plugins"]["io.containerd.grpc.v1.cri"]
    assert cri["restrict_oom_score_adj"] is True
    assert cri["sandbox_image"] == "registry.k8s.io/pause:3.10.1"
    assert cri["netns_mounts_under_state_dir"] is True
    assert cri["cni"]["bin_dir"] == "/usr/lib/cni"
    assert cri["containerd"]["runtimes"]["runc"]["options"]["SystemdCgroup"] is False
    assert doc["grpc"]["address"].startswith(str(tmp_path))  # its own socket, never /run/containerd


def test_kubelet_config_uses_cgroupfs_on_cgroup_v1_and_cluster_dns_on_the_node(tmp_path: Path) -> None:
    doc = yaml.safe_load(config.kubelet_config(Layout(tmp_path)))
    assert (doc["cgroupDriver"], doc["failCgroupV1"]) == ("cgroupfs", False)
    assert doc["clusterDNS"] == [netns.NODE_IP]
    assert doc["containerRuntimeEndpoint"] == f"unix://{tmp_path}/containerd/containerd.sock"


def test_cni_and_proxy_use_the_namespace_ranges(tmp_path: Path) -> None:
    import json

    conflist = json.loads(config.cni_conflist(Layout(tmp_path)))
    assert [p["type"] for p in conflist["plugins"]] == ["bridge", "portmap"]
    assert conflist["plugins"][0]["ipam"]["ranges"] == [[{"subnet": netns.POD_CIDR}]]
    proxy = yaml.safe_load(config.kube_proxy_config(Layout(tmp_path), tmp_path / "kp.kubeconfig"))
    assert (proxy["mode"], proxy["clusterCIDR"]) == ("iptables", netns.POD_CIDR)
    assert config.kubernetes_service_ip("10.213.128.0/20") == "10.213.128.1"


def test_corefile_resolves_the_node_name_and_services() -> None:
    text = config.corefile(Path("/x/coredns.kubeconfig"))
    assert f"{netns.NODE_IP} {config.NODE_NAME}" in text
    assert "kubernetes cluster.local" in text


def test_pki_serving_cert_names_and_client_identities(tmp_path: Path) -> None:
    client = pki.Client("kubelet", "system:node:n1", "system:nodes")
    configs = pki.create(
        tmp_path / "pki", clients=[client], apiserver_names=["10.0.0.1", "kubernetes.default"],
        server="https://10.0.0.2:6443", context="ctx",
    )  # fmt: skip
    serving = x509.load_pem_x509_certificate((tmp_path / "pki" / "apiserver.crt").read_bytes())
    sans = serving.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)] == ["10.0.0.1"]
    assert sans.get_values_for_type(x509.DNSName) == ["kubernetes.default"]
    cert = x509.load_pem_x509_certificate((tmp_path / "pki" / "kubelet.crt").read_bytes())
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "system:node:n1"
    assert cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "system:nodes"
    assert (tmp_path / "pki" / "kubelet.key").stat().st_mode & 0o777 == 0o600
    kubeconfig = yaml.safe_load(configs["kubelet"].read_text())
    assert kubeconfig["current-context"] == "ctx"


def test_storage_has_one_default_class_and_hostpath_volumes(tmp_path: Path) -> None:
    docs = storage.manifests(tmp_path, count=2)
    (sc,) = [d for d in docs if d["kind"] == "StorageClass"]
    assert sc["metadata"]["annotations"] == {"storageclass.kubernetes.io/is-default-class": "true"}
    pvs = [d for d in docs if d["kind"] == "PersistentVolume"]
    assert [pv["spec"]["hostPath"]["path"] for pv in pvs] == [str(tmp_path / f"rag-kube-pv-0{i}") for i in range(2)]


def test_kube_is_a_target_and_its_namespace_enforces_restricted_pod_security(tmp_path: Path) -> None:
    assert "kube" in TARGET_NAMES
    runner = RecordingRunner({("kubectl", "--context", "rag-kube", "get", "namespace"): CommandResult([], stdout="")})
    target = KubeTarget(TargetOptions(), runner=runner, run_dir=tmp_path / "run", say=lambda _: None)
    assert target.new_namespace() == "rag-e2e"
    labels = [call[-2] for call in runner.calls if "label" in call]
    assert "pod-security.kubernetes.io/enforce=restricted" in labels
    assert "app.kubernetes.io/managed-by=rag-harness" in labels
    assert ["kubectl", "--context", "rag-kube", "create", "namespace", "rag-e2e"] in runner.calls
    assert [p.name for p in target.own_values()] == ["kind.yaml"] and target.use_routes() is False


def test_archive_manifest_reads_the_ref_and_digest_ctr_will_list(tmp_path: Path) -> None:
    import io
    import json
    import tarfile

    from harness.kube.cluster import archive_manifest

    index = {"manifests": [{"digest": "sha256:abc", "annotations": {"org.opencontainers.image.ref.name": "redis:7"}}]}
    archive = tmp_path / "image.tar"
    with tarfile.open(archive, "w") as tar:
        data = json.dumps(index).encode()
        info = tarfile.TarInfo("index.json")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    assert archive_manifest(archive) == ("docker.io/library/redis:7", "sha256:abc")
