"""pytest plugin (`-p meta.break_key_lifecycle`, env META_KEY_BREAKAGE): the key lifecycle of
`harness keys` broken in the harness itself, patched on import before any test module takes it.

- `rotate-without-grace`: a rotation adds the new key but leaves the old keys without an expiry,
  so they keep working for ever.
- `restart-drops-keys`: a restarted local gateway gets the key file rendered from the values, not
  the one `harness keys` manages.
"""

from __future__ import annotations

import os
from dataclasses import replace
from typing import Any

from harness import gateway_keys
from harness.local import key_files

BREAKAGE = os.environ.get("META_KEY_BREAKAGE", "")
_rotate = gateway_keys.rotate


def _rotate_without_grace(records: list[gateway_keys.KeyRecord], **kw: Any) -> Any:
    out, new, old = _rotate(records, **kw)
    kept = [replace(r, expires=b.expires) if r is not new else r for r, b in zip(out, [*records, new], strict=True)]
    return kept, new, [b for b in records if any(b.hash == o.hash and b.key == o.key for o in old)]


def _no_carry_over(run: Any, container_mounts: Any) -> None:
    return None


if BREAKAGE == "rotate-without-grace":
    gateway_keys.rotate = _rotate_without_grace  # type: ignore[assignment]
elif BREAKAGE == "restart-drops-keys":
    key_files.carry_over = _no_carry_over
elif BREAKAGE:
    raise ValueError(f"META_KEY_BREAKAGE={BREAKAGE!r}: not a breakage of meta.break_key_lifecycle")
