"""pytest plugin (`-p meta.skip_one_model`): a broken registration that leaves out one of the
models it was asked to register, as a bug in rendering `global.models` would."""

from __future__ import annotations

from typing import Any

import pytest
from harness import registration


def pytest_configure(config: pytest.Config) -> None:
    rendered = registration.merge_models

    def skipping_one(applied: Any, desired: Any, remove: Any = ()) -> dict[str, dict[str, Any]]:
        models = rendered(applied, desired, remove)
        for key in list(desired)[-1:]:
            models.pop(key, None)
        return models

    registration.merge_models = skipping_one
