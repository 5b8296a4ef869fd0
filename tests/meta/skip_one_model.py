"""pytest plugin (`-p meta.skip_one_model`): a broken registration that leaves out one of the
models it was asked to register, as a bug in rendering `global.models` would."""

from __future__ import annotations

from typing import Any

import pytest
from harness import registration


def pytest_configure(config: pytest.Config) -> None:
    rendered = registration.models_values

    def skipping_one(desired: Any, remove: Any = None, keep: Any = ()) -> dict[str, dict[str, Any]]:
        values = rendered(desired, remove, keep)
        for key in list(desired)[-1:]:
            values.pop(key, None)
        return values

    registration.models_values = skipping_one
