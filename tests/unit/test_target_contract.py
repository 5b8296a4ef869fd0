"""The Target contract: every target class has every method of the protocol, declares its optional
capabilities as data, and raises Unsupported (a NotImplementedError) for the ones it does not declare."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import pytest
from harness.capabilities import Capability, Unsupported
from harness.cluster.runner import DryRunRunner
from harness.targets import Target, TargetOptions
from harness.targets.base import Target as TargetProtocol
from harness.targets.existing import ExistingTarget
from harness.targets.kind import KindTarget
from harness.targets.kube import KubeTarget
from harness.targets.local import LocalTarget

pytestmark = pytest.mark.unit

CLASSES = (LocalTarget, KindTarget, ExistingTarget, KubeTarget)
PROTOCOL_METHODS = sorted(
    name for name, member in vars(TargetProtocol).items() if inspect.isfunction(member) and not name.startswith("_")
)
# The method each capability adds, called without side effects when the capability is missing.
PROBES = {
    Capability.MAAS_STANDIN: lambda t: t.maas_standin_host(),
    Capability.POSTGRES: lambda t: t.postgres_dsn(),
}
EXPECTED = {
    LocalTarget: {Capability.MAAS_STANDIN, Capability.FAULTS, Capability.KEY_STORE},
    KindTarget: {Capability.POSTGRES, Capability.FAULTS, Capability.KEY_STORE},
    ExistingTarget: {Capability.POSTGRES, Capability.FAULTS, Capability.KEY_STORE},
    KubeTarget: {Capability.POSTGRES, Capability.FAULTS, Capability.MAAS_STANDIN, Capability.KEY_STORE},
}


def make(cls: type, tmp_path: Path) -> Target:
    options = TargetOptions(run_name=f"contract-{cls.__name__}")
    if cls is LocalTarget:
        return LocalTarget(options)
    return cls(options, runner=DryRunRunner(), say=lambda _: None)  # type: ignore[no-any-return]


def test_the_protocol_names_the_optional_methods():
    assert {"close", "model_ca_path", "maas_standin_host", "postgres_dsn", "stop_component", "key_store"} <= set(
        PROTOCOL_METHODS
    )


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_every_target_has_every_method_and_declares_its_capabilities(cls: Any) -> None:
    missing = [name for name in PROTOCOL_METHODS if not callable(getattr(cls, name, None))]
    assert missing == [], f"{cls.__name__} lacks {missing}"
    assert cls.capabilities == EXPECTED[cls]


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_an_undeclared_capability_raises_unsupported(cls: Any, tmp_path: Path) -> None:
    target = make(cls, tmp_path)
    absent = [c for c in PROBES if c not in cls.capabilities]
    assert absent or cls is KubeTarget
    for capability in absent:
        with pytest.raises(Unsupported, match=f"the {target.name} target does not offer {capability}") as caught:
            PROBES[capability](target)
        assert isinstance(caught.value, NotImplementedError)
