"""Install Debian packages with apt-get: the one way the bootstrap and the kube lane do it.

`install()` says what it installs and why, then runs `apt-get update` and `apt-get install`
non-interactively through an injected runner (tests record the commands instead of running
them). Who may install is the caller's policy: `sudo_prefix()` finds root or password-less
sudo; `manual_command()` is the fix to print when neither is there.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Mapping, Sequence

from harness.errors import BuildError

# Runs one apt-get command line with the given environment; raises AptError when it fails.
Runner = Callable[[list[str], Mapping[str, str]], None]


class AptError(BuildError):
    pass


def run(argv: list[str], env: Mapping[str, str]) -> None:
    """The real runner: apt-get's progress is silenced, its errors (stderr) stay visible."""
    try:
        subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL)
    except FileNotFoundError as exc:
        raise AptError(f"{argv[0]} is not installed; it is needed to run: {' '.join(argv)}") from exc
    except subprocess.CalledProcessError as exc:
        raise AptError(f"command failed ({exc.returncode}): {' '.join(argv)}") from exc


def available() -> bool:
    return shutil.which("apt-get") is not None


def manual_command(names: Sequence[str]) -> str:
    """What a user runs to install `names` by hand."""
    return f"sudo apt-get install -y {' '.join(names)}"


def _passwordless_sudo() -> bool:
    return bool(shutil.which("sudo")) and subprocess.run(["sudo", "-n", "true"], capture_output=True).returncode == 0


def sudo_prefix(*, euid: int | None = None, sudo_works: Callable[[], bool] = _passwordless_sudo) -> list[str] | None:
    """[] as root, ["sudo", "-n", ...] where password-less sudo works (CI runners), else None."""
    if (os.geteuid() if euid is None else euid) == 0:
        return []
    if sudo_works():
        return ["sudo", "-n", "--preserve-env=DEBIAN_FRONTEND"]
    return None


def install(
    names: Sequence[str],
    *,
    why: str,
    say: Callable[[str], None],
    prefix: Sequence[str] = (),
    runner: Runner = run,
) -> None:
    """apt-get install -y `names`, after an `apt-get update`, each prefixed by `prefix` (sudo).

    `why` names what the packages are for, in the line said first. Raises AptError (from the
    runner) when a command fails.
    """
    say(f"{why}: apt-get install {' '.join(names)} (about a minute)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    runner([*prefix, "apt-get", "update", "-qq"], env)
    runner([*prefix, "apt-get", "install", "-y", "-qq", *names], env)
