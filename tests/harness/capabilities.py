"""What a target can do beyond deploying the stack, declared as data on its class (as kr8s declares
`namespaced`/`scalable`): callers test `Capability.X in target.capabilities`, never `hasattr`.

Every target has every method of `harness.targets.base.Target`; a method whose capability the
target does not declare raises `Unsupported` (a `NotImplementedError`) naming the target.
"""

from __future__ import annotations

from enum import StrEnum

from harness.errors import HarnessError


class Capability(StrEnum):
    MAAS_STANDIN = "maas-standin"  # maas_standin_host(): where a stand-in MaaS on this machine is reachable
    POSTGRES = "postgres"  # postgres_dsn(): the tests can read the release's PostgreSQL
    KEY_STORE = "key-store"  # key_store(): the gateway's key store, as `harness keys` changes it
    FAULTS = "faults"  # stop/start_component, override_values, component_log, rendered_objects


class Unsupported(HarnessError, NotImplementedError):
    """A target was asked for something its class does not declare."""

    def __init__(self, target: str, capability: Capability) -> None:
        super().__init__(f"the {target} target does not offer {capability.value} (see its `capabilities`)")
