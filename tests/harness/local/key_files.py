"""The local stack's gateway key store: the key file and the key hashing secret that the running
Envoy reads (the materialised Secret mounts of its run folder).

The gateway re-reads the key file every `apiKeys.reloadSeconds`, so a change written here takes
effect within that period, without a restart. The files are rendered from the values again when
the stack starts (`make up`) or the gateway is restarted: keys made with `harness keys` last as
long as the running stack.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from harness import gateway_keys
from harness.errors import HarnessError
from harness.local.state import RunFolder

# Where the chart mounts the two Secrets in the Envoy container (maas-gateway.apiKeysMountPath,
# maas-gateway.apiKeysHmacMountPath), as materialise() names their local copies.
KEYS_MOUNT = "etc_maas_api-keys"
HMAC_MOUNT = "etc_maas_api-keys-hmac"


class NoKeyStore(HarnessError):
    pass


@dataclass(frozen=True)
class LocalKeyFiles:
    keys_file: Path
    hmac_file: Path

    @classmethod
    def of(cls, run: RunFolder) -> LocalKeyFiles:
        keys = sorted(run.mounts_dir.glob(f"*/{KEYS_MOUNT}/{gateway_keys.KEYS_SECRET_KEY}"))
        hmac = sorted(run.mounts_dir.glob(f"*/{HMAC_MOUNT}/{gateway_keys.HMAC_SECRET_KEY}"))
        if not keys or not hmac or not run.alive_pids():
            raise NoKeyStore(
                f"no running local stack {run.name!r} with a gateway key store under {run.mounts_dir}: "
                "start it with `make up` (keys on a cluster are not managed by this command yet)"
            )
        return cls(keys[0], hmac[0])

    def read(self) -> list[gateway_keys.KeyRecord]:
        return gateway_keys.parse_records(self.keys_file.read_text())

    def secret(self) -> str:
        return self.hmac_file.read_text().strip()

    def write(self, records: list[gateway_keys.KeyRecord]) -> None:
        """Replace the key file in one step (the gateway never reads half a file), mode 0600."""
        fd, tmp = tempfile.mkstemp(dir=self.keys_file.parent, prefix=".api-keys.")
        try:
            with os.fdopen(fd, "w") as f:
                f.write(gateway_keys.render(records))
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.keys_file)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
