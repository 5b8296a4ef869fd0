"""The existing target: the current kube context (vanilla Kubernetes or OpenShift).

Uses the context `kubectl config current-context` names, pinned for the whole run. On OpenShift
(the API serves route.openshift.io) it adds values/openshift.yaml and reaches the stack through
its Routes; elsewhere through port-forwards. Each run gets its own namespace `rag-e2e-<id>`
(labelled as the harness's, so cleanup deletes it) unless --namespace names one.
For the e2e suite (no install profile) it installs what Kind gets: values/kind.yaml, i.e. the
simulator and development keys; `install` uses the chart defaults plus its flags instead.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.cluster import plans, routes, state
from harness.cluster.target import ClusterTarget, NotInstalled
from harness.paths import values_file


def short_id() -> str:
    return uuid.uuid4().hex[:6]


class ExistingTarget(ClusterTarget):
    name = "existing"

    def __init__(self, options: Any, *, run_id: Callable[[], str] = short_id, **kwargs: Any) -> None:
        super().__init__(options, **kwargs)
        self.run_id = run_id

    def current_context(self) -> str:
        result = self.runner.run(plans.kubectl_current_context(), check=False)
        context = result.stdout.strip()
        if not context and not self.dry_run:
            raise NotInstalled("no current kube context: log in to the cluster (or `kubectl config use-context NAME`)")
        return context

    def prepare(self) -> str:
        context = self.current_context()
        self.say(f"using kube context {context or '<current>'}")
        return context

    def detect_openshift(self, context: str) -> bool:
        found = routes.is_openshift(self.runner, context)
        if found:
            self.say("OpenShift detected (route.openshift.io): exposing llama-stack and the gateway through Routes")
        return found

    def new_namespace(self) -> str:
        return f"rag-e2e-{self.run_id()}"

    def own_values(self) -> list[Path]:
        return [values_file("kind")] if self.profile is None else []

    def down(self) -> None:
        """Idempotent: uninstall the release; delete the namespace only if the harness created it."""
        saved = state.load(self.name)
        namespace = self.options.namespace or (saved.namespace if saved else "")
        if not namespace:
            self.say("no existing-cluster install recorded and no --namespace given: nothing to clean up")
            return
        context = saved.context if saved and saved.namespace == namespace else self.current_context()
        deployment = self.deployment(context, namespace)
        deployment.close()
        deployment.uninstall(delete_namespace=self._owned(namespace, context))
        state.forget(self.name)
