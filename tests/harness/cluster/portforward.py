"""`kubectl port-forward` that comes back: a supervisor restarts it whenever it exits.

kubectl's port-forward dies on pod restarts and idle API-server connections; tests that run
for minutes would then fail with "connection refused" for reasons unrelated to the stack.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from harness.cluster import plans
from harness.cluster.runner import CommandRunner, Process
from harness.errors import HarnessError
from harness.loopback import free_port
from harness.waiting import Waiter, WaitPolicy


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


@dataclass
class PortForward:
    """One forwarded service. `check()` restarts a dead forward; `start_supervisor()` calls it in a thread."""

    runner: CommandRunner
    target: str  # e.g. svc/rag-maas-gateway
    remote_port: int
    namespace: str
    context: str = ""
    local_port: int = 0
    max_restarts: int = 50
    restarts: int = 0
    probe: Callable[[int], bool] = port_open  # is the local port accepting connections?
    component: str = ""  # app.kubernetes.io/component of the forwarded Service or Deployment
    port_name: str = ""  # a Deployment's named container port ("": the Service's port)
    _proc: Process | None = field(default=None, repr=False)
    _stopped: threading.Event = field(default_factory=threading.Event, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)
    # check() (supervisor thread) and restart() (test thread) must not both start a kubectl.
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        if not self.local_port:
            self.local_port = free_port()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.local_port}"

    def argv(self) -> list[str]:
        return plans.kubectl_port_forward(self.target, self.local_port, self.remote_port, self.namespace, self.context)

    def start(self) -> None:
        self._proc = self.runner.start(self.argv())

    def check(self) -> bool:
        """Restart the forward if it exited; returns True when a restart happened."""
        with self._lock:
            return self._check()

    def _check(self) -> bool:
        if self._stopped.is_set() or self._proc is None or self._proc.poll() is None:
            return False
        if self.restarts >= self.max_restarts:
            raise HarnessError(
                f"port-forward to {self.target} died {self.restarts} times: check the pod (`make status`, "
                "`python -m harness diagnose`) and the cluster's API server"
            )
        self.restarts += 1
        self.start()
        return True

    def wait_ready(self, waiter: Waiter, timeout: float = 30.0) -> None:
        """Until the local port accepts connections (restarting a dead forward); a forward that
        answers again starts a fresh restart budget, so planned pod restarts never exhaust it."""

        def ready() -> bool | None:
            self.check()
            return self.probe(self.local_port) or None

        waiter.until(ready, WaitPolicy(timeout, initial=0.2, cap=2), what=f"port-forward to {self.target}")
        self.restarts = 0

    def restart(self) -> None:
        """Stop the running kubectl and start a new one on the same local port (the URL stays valid)."""
        with self._lock:
            if self._stopped.is_set():
                return
            if self._proc is not None and self._proc.poll() is None:
                self._proc.terminate()
                self._proc.wait(timeout=5)
            self.start()

    def start_supervisor(self, interval: float = 1.0) -> None:
        """Check the forward every `interval` s in a daemon thread; a no-op while one runs (a
        supervisor that gave up after max_restarts has ended, so a reconnect starts a new one)."""
        if self._thread is not None and self._thread.is_alive():
            return

        def loop() -> None:
            # Event.wait doubles as the pause and wakes at once on stop().
            while not self._stopped.wait(interval):
                self.check()

        self._thread = threading.Thread(target=loop, name=f"port-forward {self.target}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            self._proc.wait(timeout=5)
