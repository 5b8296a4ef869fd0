"""The harness's one exception tree (after httpx's and kr8s's): `HarnessError` above every error a user can act on.

The CLI and the pytest plugin catch `HarnessError` and print it as it is: optional detail
(a log tail, helm's own message) and, last, one line saying what failed and what to do.
Any other exception is a bug in the harness and keeps its traceback.
"""

from __future__ import annotations


class HarnessError(RuntimeError):
    """An error the user can fix. `str()` is the detail (may be empty) followed by the summary line."""

    def __init__(self, summary: str, *, detail: str = "") -> None:
        self.summary = summary
        self.detail = detail.strip()
        super().__init__(f"{self.detail}\n{summary}" if self.detail else summary)


# --- families: catch one to handle every error of its kind ------------------------------------


class ToolMissing(HarnessError):
    """A program, package or machine prerequisite is missing; the message names how to install it."""


class StackNotReady(HarnessError):
    """The stack is not running, not installed, or not (yet) answering as it should."""


class ClusterError(HarnessError):
    """A cluster operation failed: helm/kubectl, a rollout, the kube lane's cluster, GPUs, kind."""


class BuildError(HarnessError):
    """Building or installing something failed: tools, Debian packages, the kube lane's binaries and images."""


class MaasError(HarnessError):
    """A MaaS request failed; the message names the endpoint and the cause, never the key."""
