"""Root conftest: load the harness plugin unless pyproject already registers it.

The project registers `harness.pytest_plugin` as the pytest11 entry point `rag_harness`
once installed; loading it here too would register it twice.
"""

from __future__ import annotations

from importlib.metadata import entry_points

_REGISTERED = any(ep.name == "rag_harness" for ep in entry_points(group="pytest11"))
pytest_plugins = [] if _REGISTERED else ["harness.pytest_plugin"]
