"""Meta-test plugin (`-p meta.break_registration_drops_earlier`): registration forgets what
earlier registrations applied, as the harness once did (it applied only the values files and
the caller's own models). The registration test must then fail."""

from __future__ import annotations

from typing import Any

from harness import registration


def _forgetful_merge(applied: Any, desired: Any, remove: Any = ()) -> dict[str, dict[str, Any]]:
    return _original({}, desired, remove)


_original = registration.merge_models
registration.merge_models = _forgetful_merge
