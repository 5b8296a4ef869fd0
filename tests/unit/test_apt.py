"""The one apt-get path (harness.apt) and its two users: the bootstrap and the kube lane's
prerequisites. No apt-get runs here: a recording runner takes the commands."""

from __future__ import annotations

from collections.abc import Mapping

import pytest
from harness import apt, bootstrap
from harness.kube import prereqs

ABSENT = (
    prereqs.Package("no-such-package", "/nonexistent/bin/tool", "testing"),
    prereqs.Package("other-package", "/nonexistent/bin/other", "testing too"),
)
PRESENT = (prereqs.Package("present-package", "/", "always there"),)


class Recorder:
    def __init__(self) -> None:
        self.commands: list[list[str]] = []
        self.envs: list[Mapping[str, str]] = []

    def __call__(self, argv: list[str], env: Mapping[str, str]) -> None:
        self.commands.append(argv)
        self.envs.append(env)


def _no_sudo_wanted() -> list[str] | None:
    pytest.fail("sudo asked for with nothing to install")


def test_install_updates_then_installs_noninteractively_and_says_why() -> None:
    runner = Recorder()
    said: list[str] = []
    apt.install(["a", "b"], why="testing", say=said.append, prefix=["sudo", "-n"], runner=runner)
    assert runner.commands == [
        ["sudo", "-n", "apt-get", "update", "-qq"],
        ["sudo", "-n", "apt-get", "install", "-y", "-qq", "a", "b"],
    ]
    assert all(env["DEBIAN_FRONTEND"] == "noninteractive" for env in runner.envs)
    assert said == ["testing: apt-get install a b (about a minute)"]


def test_the_real_runner_names_a_failing_command() -> None:
    with pytest.raises(apt.AptError, match="command failed .*false"):
        apt.run(["false"], {})
    with pytest.raises(apt.AptError, match="no-such-command-here is not installed"):
        apt.run(["no-such-command-here", "install"], {})


def test_sudo_prefix_root_sudo_or_none() -> None:
    assert apt.sudo_prefix(euid=0, sudo_works=lambda: pytest.fail("root needs no sudo")) == []
    assert apt.sudo_prefix(euid=1000, sudo_works=lambda: True) == ["sudo", "-n", "--preserve-env=DEBIAN_FRONTEND"]
    assert apt.sudo_prefix(euid=1000, sudo_works=lambda: False) is None


def test_bootstrap_installs_only_the_missing_commands_packages(capsys: pytest.CaptureFixture[str]) -> None:
    runner = Recorder()
    bootstrap.install_apt_packages(
        which=lambda cmd: None if cmd == "shellcheck" else f"/usr/bin/{cmd}", sudo_prefix=lambda: [], runner=runner
    )
    assert runner.commands == [["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "shellcheck"]]
    out = capsys.readouterr().out
    assert f"[bootstrap] {bootstrap.APT_WHY}: apt-get install shellcheck" in out


def test_bootstrap_without_root_or_sudo_names_the_command_and_runs_nothing() -> None:
    runner = Recorder()
    with pytest.raises(bootstrap.BootstrapError, match=r"run `sudo apt-get install -y redis-server shellcheck`"):
        bootstrap.install_apt_packages(which=lambda cmd: None, sudo_prefix=lambda: None, runner=runner)
    assert runner.commands == []


def test_bootstrap_with_everything_present_runs_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    runner = Recorder()
    bootstrap.install_apt_packages(which=lambda cmd: "/usr/bin/x", sudo_prefix=_no_sudo_wanted, runner=runner)
    assert runner.commands == []
    assert "present" in capsys.readouterr().out


def test_kube_lane_installs_its_missing_packages_as_root_without_sudo() -> None:
    runner = Recorder()
    said: list[str] = []
    prereqs.install_missing(said.append, packages=ABSENT + PRESENT, euid=0, has_apt=lambda: True, runner=runner)
    assert runner.commands == [
        ["apt-get", "update", "-qq"],
        ["apt-get", "install", "-y", "-qq", "no-such-package", "other-package"],
    ]
    assert said == ["kube lane packages: apt-get install no-such-package other-package (about a minute)"]


@pytest.mark.parametrize(
    ("packages", "euid", "has_apt"),
    [(ABSENT, 1000, True), (ABSENT, 0, False), (PRESENT, 0, True)],
    ids=["not root", "no apt-get", "nothing missing"],
)
def test_kube_lane_installs_nothing(packages: tuple[prereqs.Package, ...], euid: int, has_apt: bool) -> None:
    runner = Recorder()
    said: list[str] = []
    prereqs.install_missing(said.append, packages=packages, euid=euid, has_apt=lambda: has_apt, runner=runner)
    assert runner.commands == [] and said == []
