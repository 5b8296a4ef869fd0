"""Acceptance 8 (second half) and the restricted-SCC rules: no fixed runAsUser/fsGroup, never
privileged, runAsNonRoot, no privilege escalation, drop ALL capabilities, RuntimeDefault seccomp."""

from __future__ import annotations

from typing import Any

import pytest

from charts.cases import CASE_IDS, CASES, Case, render_case
from charts.helm import HelmBinary, Renderer
from charts.manifests import pod_spec, ref, workloads

pytestmark = pytest.mark.charts

# Kind runs no SCC to assign a UID, and images whose USER is a name fail runAsNonRoot without a
# numeric one: only these overlays may fix runAsUser/fsGroup. Chart defaults and openshift may not.
FIXED_UID_OVERLAYS = ("kind", "kind-maas")


def pod_problems(owner: str, spec: dict[str, Any], allow_fixed_uid: bool = False) -> list[str]:
    problems = []
    pod_sc = spec.get("securityContext") or {}
    for key in ("runAsUser", "fsGroup"):
        if key in pod_sc and not allow_fixed_uid:
            problems.append(f"{owner}: pod securityContext.{key} is fixed ({pod_sc[key]})")
    for key in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(key):
            problems.append(f"{owner}: {key} is set")
    for vol in spec.get("volumes") or []:
        if "hostPath" in vol:
            problems.append(f"{owner}: hostPath volume {vol.get('name')}")
    for section in ("initContainers", "containers"):
        for c in spec.get(section) or []:
            where = f"{owner} {section}[{c.get('name')}]"
            problems += container_problems(where, pod_sc, c.get("securityContext") or {}, allow_fixed_uid)
    return problems


def container_problems(where: str, pod_sc: dict[str, Any], sc: dict[str, Any], allow_fixed_uid: bool) -> list[str]:
    problems = []
    if "runAsUser" in sc and not allow_fixed_uid:
        problems.append(f"{where}: securityContext.runAsUser is fixed ({sc['runAsUser']})")
    if sc.get("privileged"):
        problems.append(f"{where}: privileged")
    if sc.get("allowPrivilegeEscalation") is not False:
        problems.append(f"{where}: allowPrivilegeEscalation is not false")
    if sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot")) is not True:
        problems.append(f"{where}: runAsNonRoot is not true (pod or container)")
    caps = sc.get("capabilities") or {}
    if "ALL" not in (caps.get("drop") or []):
        problems.append(f"{where}: capabilities.drop lacks ALL")
    if added := [c for c in caps.get("add") or [] if c != "NET_BIND_SERVICE"]:
        problems.append(f"{where}: capabilities.add {added}")
    seccomp = (sc.get("seccompProfile") or pod_sc.get("seccompProfile") or {}).get("type")
    if seccomp not in ("RuntimeDefault", "Localhost"):
        problems.append(f"{where}: seccompProfile is {seccomp!r}, not RuntimeDefault")
    return problems


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_pods_run_under_restricted_scc(helm: HelmBinary, renderer: Renderer, case: Case) -> None:
    docs = render_case(renderer, helm, case)
    allow = case.overlay is not None and case.overlay.stem in FIXED_UID_OVERLAYS
    problems = [p for w in workloads(docs) for p in pod_problems(ref(w), pod_spec(w) or {}, allow)]
    assert not problems, "\n".join(problems)


def test_checker_flags_a_fixed_uid() -> None:
    """The security checks are not vacuous."""
    spec = {
        "securityContext": {"runAsUser": 1000},
        "containers": [{"name": "c", "securityContext": {"privileged": True}}],
    }
    problems = pod_problems("Deployment/x", spec)
    assert any("runAsUser" in p for p in problems) and any("privileged" in p for p in problems)
