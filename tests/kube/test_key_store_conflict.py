"""`harness keys` on a cluster never overwrites a change made meanwhile: each write names the key
Secret's resourceVersion as it was read, so the Kubernetes API refuses a write based on a stale
read (409), and the command says to run it again. Also: a key Secret the lane's tests changed
through the store carries the annotation that makes the chart keep it across `helm upgrade`."""

from __future__ import annotations

import pytest
from harness.cluster.key_secret import MANAGED_ANNOTATION, MANAGED_BY, ClusterKeySecret, NoClusterKeyStore
from harness.gateway_keys import KeyRecord

from .support import kubectl_json

pytestmark = [pytest.mark.kube, pytest.mark.auth]


def test_a_write_based_on_a_stale_read_is_refused_and_nothing_is_lost(target) -> None:
    first, second = target.key_store(), target.key_store()
    assert isinstance(first, ClusterKeySecret)
    original = first.read()
    second.read()
    marker = KeyRecord("free", "conflict-winner", hash="f" * 64)
    second.write([*original, marker])
    try:
        with pytest.raises(NoClusterKeyStore, match="changed since it was read.*run the command again"):
            first.write([*original, KeyRecord("free", "conflict-loser", hash="e" * 64)])
        users = [r.user for r in target.key_store().read()]
        assert "conflict-winner" in users and "conflict-loser" not in users, "a stale write overwrote a change"
        secret = kubectl_json("get", "secret", first.keys.name, "-n", first.namespace)
        assert secret["metadata"].get("annotations", {}).get(MANAGED_ANNOTATION) == MANAGED_BY
    finally:
        restore = target.key_store()
        restore.read()
        restore.write(original)
        restore.unmark()
