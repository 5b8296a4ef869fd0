"""The harness's one exception tree: every error class derives from `HarnessError`, through the
family it belongs to, each class name means one class, and the CLI turns any of them into one line."""

from __future__ import annotations

import argparse
import importlib
import inspect
import pkgutil

import harness
import pytest
from harness import errors
from harness.cli_common import run
from harness.cluster.runner import CommandError
from harness.kube.binaries import BinaryBuildError
from harness.kube.images.build import ImageBuildError
from harness.kube.prereqs import PrerequisiteMissing
from harness.maas import MaasError, RetryableMaasError
from harness.tools import MissingTool
from harness.waiting import WaitTimeout

pytestmark = pytest.mark.unit

# The stand-in model server is a separate program (its own HTTP error type, never raised into the harness).
STAND_INS = ("harness.local.model_tap",)


def harness_exceptions() -> list[type[BaseException]]:
    found: list[type[BaseException]] = []
    for info in pkgutil.walk_packages(harness.__path__, "harness."):
        if info.name == "harness.__main__" or info.name.startswith(STAND_INS):
            continue
        module = importlib.import_module(info.name)
        found += [
            cls
            for cls in vars(module).values()
            if inspect.isclass(cls) and issubclass(cls, BaseException) and cls.__module__ == module.__name__
        ]
    return found


def test_every_harness_exception_derives_from_harness_error() -> None:
    classes = harness_exceptions()
    assert len(classes) >= 30, [c.__name__ for c in classes]
    outside = [f"{c.__module__}.{c.__qualname__}" for c in classes if not issubclass(c, errors.HarnessError)]
    assert not outside, f"not under HarnessError: {outside}"


def test_each_exception_name_means_one_class() -> None:
    names: dict[str, list[str]] = {}
    for cls in harness_exceptions():
        names.setdefault(cls.__name__, []).append(cls.__module__)
    assert {n: m for n, m in names.items() if len(m) > 1} == {}


@pytest.mark.parametrize(
    "cls, family",
    [
        (MissingTool, errors.ToolMissing),
        (PrerequisiteMissing, errors.ToolMissing),
        (WaitTimeout, errors.StackNotReady),
        (CommandError, errors.ClusterError),
        (BinaryBuildError, errors.BuildError),
        (ImageBuildError, errors.BuildError),
        (RetryableMaasError, errors.MaasError),
    ],
)
def test_errors_sit_in_their_family(cls: type[Exception], family: type[Exception]):
    assert issubclass(cls, family) and issubclass(family, errors.HarnessError)
    assert MaasError is errors.MaasError


@pytest.mark.parametrize("error", [MaasError("MaaS endpoint https://m/v1 unreachable"), ImageBuildError("no buildah")])
def test_the_cli_prints_any_harness_error_as_one_line(error: Exception, capsys: pytest.CaptureFixture[str]):
    def fail(args: argparse.Namespace) -> int:
        raise error

    assert run(argparse.Namespace(func=fail)) == 1
    assert capsys.readouterr().err == f"error: {error}\n"
