"""The local stack's gateway key store: the key file and the key hashing secret that the running
Envoy reads (the materialised Secret mounts of its run folder).

The gateway re-reads the key file every `apiKeys.reloadSeconds`, so a change written here takes
effect within that period, without a restart. Each change is also kept in the run folder
(`values/api-keys.managed`, 0600: hashes only, plus the dev overlay's plaintext keys if they were
never migrated), and a restarted gateway gets that file instead of the one rendered from
`apiKeys.keys`, as the chart keeps a key Secret `harness keys` manages across `helm upgrade`.
`make up` starts a new run with a new key hashing secret, so the keys of `harness keys` last
until then (`make down` ends them).
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from harness import gateway_keys
from harness.declared import Declared
from harness.errors import HarnessError
from harness.local.state import RunFolder

# Where the chart mounts the two Secrets in the Envoy container (maas-gateway.apiKeysMountPath,
# maas-gateway.apiKeysHmacMountPath), as materialise() names their local copies.
KEYS_MOUNT = "etc_maas_api-keys"
HMAC_MOUNT = "etc_maas_api-keys-hmac"
MANAGED_FILE = "api-keys.managed"  # in the run's values folder (cleared by `make up`), not a values file


def managed_copy(run: RunFolder) -> Path:
    return run.values_dir / MANAGED_FILE


def carry_over(run: RunFolder, container_mounts: Path) -> None:
    """Give a (re)started gateway container the key file `harness keys` manages, if any, in place
    of the one rendered from the values."""
    managed = managed_copy(run)
    target = container_mounts / KEYS_MOUNT / gateway_keys.KEYS_SECRET_KEY
    if managed.is_file() and target.is_file():
        _replace(target, managed.read_text())


class NoKeyStore(HarnessError):
    pass


@dataclass(frozen=True)
class LocalKeyFiles:
    """The KeyStore of a local stack (harness.gateway_keys.KeyStore)."""

    keys_file: Path
    hmac_file: Path
    managed: Path
    tiers: list[str]
    reload_seconds: int

    @property
    def lasts(self) -> str:
        return f"{gateway_keys.reload_note(self.reload_seconds)}; it lasts until `make up` starts a new run"

    @property
    def where(self) -> str:
        return f"the local stack's key file {self.keys_file}"

    @classmethod
    def of(cls, run: RunFolder) -> LocalKeyFiles:
        keys = sorted(run.mounts_dir.glob(f"*/{KEYS_MOUNT}/{gateway_keys.KEYS_SECRET_KEY}"))
        hmac = sorted(run.mounts_dir.glob(f"*/{HMAC_MOUNT}/{gateway_keys.HMAC_SECRET_KEY}"))
        if not keys or not hmac or not run.alive_pids():
            raise NoKeyStore(
                f"no running local stack {run.name!r} with a gateway key store under {run.mounts_dir}: "
                "start it with `make up`"
            )
        declared = Declared.from_files(run.values_files())
        return cls(keys[0], hmac[0], managed_copy(run), declared.tier_names(), declared.key_reload_seconds())

    def read(self) -> list[gateway_keys.KeyRecord]:
        return gateway_keys.parse_records(self.keys_file.read_text())

    def secret(self) -> str:
        return self.hmac_file.read_text().strip()

    def write(self, records: list[gateway_keys.KeyRecord]) -> None:
        """Replace the key file in one step (the gateway never reads half a file), mode 0600; keep
        the same file for a restarted gateway."""
        text = gateway_keys.render(records)
        _replace(self.managed, text)
        _replace(self.keys_file, text)


def _replace(path: Path, text: str) -> None:
    """Write `text` to `path` in one step, mode 0600."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
