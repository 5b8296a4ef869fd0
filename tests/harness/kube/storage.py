"""PVCs bind on the lane's cluster: a default StorageClass and pre-made hostPath PersistentVolumes.

The StorageClass `standard` (the name Kind uses) is the default and has no provisioner
(`kubernetes.io/no-provisioner`); claims bind to the PVs made here, one folder each under
`<run>/volumes`. The folders are mode 0777: a hostPath volume is not chowned to the pod's
fsGroup, and the charts' pods run as non-root numeric users. WaitForFirstConsumer binds a
claim when its pod is scheduled, like Kind's local-path class.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import yaml

STORAGE_CLASS = "standard"
VOLUME_COUNT = 8  # the kind install claims 2; helm tests and upgrades may claim a few more
VOLUME_SIZE = "20Gi"  # the capacity the PV claims to have; binding needs >= the claim's request
Kubectl = Callable[..., subprocess.CompletedProcess[str]]


def manifests(volumes: Path, count: int = VOLUME_COUNT) -> list[dict[str, object]]:
    """The StorageClass and `count` PVs (dicts, ready for `kubectl apply`)."""
    docs: list[dict[str, object]] = [
        {
            "apiVersion": "storage.k8s.io/v1",
            "kind": "StorageClass",
            "metadata": {
                "name": STORAGE_CLASS,
                "annotations": {"storageclass.kubernetes.io/is-default-class": "true"},
            },
            "provisioner": "kubernetes.io/no-provisioner",
            "volumeBindingMode": "WaitForFirstConsumer",
            "reclaimPolicy": "Delete",
        }
    ]
    for index in range(count):
        name = f"rag-kube-pv-{index:02d}"
        docs.append(
            {
                "apiVersion": "v1",
                "kind": "PersistentVolume",
                "metadata": {"name": name, "labels": {"app.kubernetes.io/managed-by": "rag-harness"}},
                "spec": {
                    "capacity": {"storage": VOLUME_SIZE},
                    "accessModes": ["ReadWriteOnce"],
                    "persistentVolumeReclaimPolicy": "Retain",
                    "storageClassName": STORAGE_CLASS,
                    "hostPath": {"path": str(volumes / name), "type": "DirectoryOrCreate"},
                },
            }
        )
    return docs


def create(kubectl: Kubectl, volumes: Path, *, say: Callable[[str], None] = print) -> None:
    say(f"creating default StorageClass {STORAGE_CLASS} and {VOLUME_COUNT} hostPath PersistentVolumes")
    for index in range(VOLUME_COUNT):
        folder = volumes / f"rag-kube-pv-{index:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        folder.chmod(0o777)  # hostPath volumes are not chowned to fsGroup
    kubectl("apply", "-f", "-", input=yaml.safe_dump_all(manifests(volumes)))
