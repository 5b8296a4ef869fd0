"""Every pod passes PodSecurity `restricted`, with IDs that fit the cluster:

- vanilla Kubernetes and Kind (chart defaults and every overlay but openshift): numeric
  runAsUser, runAsGroup and fsGroup on every pod, since a kubelet refuses runAsNonRoot for an
  image whose USER is a name or absent;
- OpenShift (values/openshift.yaml, or `auto` on a cluster serving security.openshift.io/v1):
  no fixed runAsUser, runAsGroup or fsGroup anywhere, since restricted-v2 assigns them;
- always: never privileged, runAsNonRoot, no privilege escalation, drop ALL capabilities,
  RuntimeDefault seccomp, no host namespaces or hostPath volumes.
"""

from __future__ import annotations

from typing import Any

import pytest

from charts.cases import CASE_IDS, CASES, Case, render_case, render_ok
from charts.helm import KUBE_VERSION, NAMESPACE, RELEASE, HelmBinary, Renderer
from charts.layout import CHARTS, UMBRELLA
from charts.manifests import pod_spec, ref, workloads

pytestmark = pytest.mark.charts

OPENSHIFT_OVERLAYS = ("openshift",)
ID_KEYS = ("runAsUser", "runAsGroup", "fsGroup")
OPENSHIFT_API = "security.openshift.io/v1"


def restricted_problems(owner: str, spec: dict[str, Any]) -> list[str]:
    """What PodSecurity `restricted` (and OpenShift's restricted-v2) would refuse in a pod spec."""
    problems = []
    pod_sc = spec.get("securityContext") or {}
    for key in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(key):
            problems.append(f"{owner}: {key} is set")
    for vol in spec.get("volumes") or []:
        if "hostPath" in vol:
            problems.append(f"{owner}: hostPath volume {vol.get('name')}")
    for where, sc in _containers(owner, spec):
        problems += container_problems(where, pod_sc, sc)
    return problems


def container_problems(where: str, pod_sc: dict[str, Any], sc: dict[str, Any]) -> list[str]:
    problems = []
    if sc.get("privileged"):
        problems.append(f"{where}: privileged")
    if sc.get("allowPrivilegeEscalation") is not False:
        problems.append(f"{where}: allowPrivilegeEscalation is not false")
    if sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot")) is not True:
        problems.append(f"{where}: runAsNonRoot is not true (pod or container)")
    if sc.get("runAsUser", pod_sc.get("runAsUser")) == 0:
        problems.append(f"{where}: runAsUser is 0")
    caps = sc.get("capabilities") or {}
    if "ALL" not in (caps.get("drop") or []):
        problems.append(f"{where}: capabilities.drop lacks ALL")
    if added := [c for c in caps.get("add") or [] if c != "NET_BIND_SERVICE"]:
        problems.append(f"{where}: capabilities.add {added}")
    seccomp = (sc.get("seccompProfile") or pod_sc.get("seccompProfile") or {}).get("type")
    if seccomp not in ("RuntimeDefault", "Localhost"):
        problems.append(f"{where}: seccompProfile is {seccomp!r}, not RuntimeDefault")
    return problems


def id_problems(owner: str, spec: dict[str, Any], *, openshift: bool) -> list[str]:
    """On OpenShift: no fixed ID anywhere. Elsewhere: every container ends up with numeric IDs."""
    pod_sc = spec.get("securityContext") or {}
    problems = []
    if openshift:
        problems += [f"{owner}: pod securityContext.{k} is fixed ({pod_sc[k]})" for k in ID_KEYS if k in pod_sc]
        for where, sc in _containers(owner, spec):
            problems += [f"{where}: securityContext.{k} is fixed ({sc[k]})" for k in ID_KEYS if k in sc]
        return problems
    if not isinstance(pod_sc.get("fsGroup"), int):
        problems.append(f"{owner}: pod securityContext.fsGroup is not a number ({pod_sc.get('fsGroup')!r})")
    for where, sc in _containers(owner, spec):
        for key in ("runAsUser", "runAsGroup"):
            value = sc.get(key, pod_sc.get(key))
            if not isinstance(value, int):
                problems.append(f"{where}: {key} is not a number in pod or container ({value!r})")
    return problems


def _containers(owner: str, spec: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [
        (f"{owner} {section}[{c.get('name')}]", c.get("securityContext") or {})
        for section in ("initContainers", "containers")
        for c in spec.get(section) or []
    ]


def _is_openshift(case: Case) -> bool:
    return case.overlay is not None and case.overlay.stem in OPENSHIFT_OVERLAYS


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_pods_pass_restricted(helm: HelmBinary, renderer: Renderer, case: Case) -> None:
    docs = render_case(renderer, helm, case)
    problems = [p for w in workloads(docs) for p in restricted_problems(ref(w), pod_spec(w) or {})]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_pod_ids_fit_the_platform(helm: HelmBinary, renderer: Renderer, case: Case) -> None:
    docs = render_case(renderer, helm, case)
    openshift = _is_openshift(case)
    problems = [p for w in workloads(docs) for p in id_problems(ref(w), pod_spec(w) or {}, openshift=openshift)]
    assert not problems, "\n".join(problems)


FORCE = {"global": {"compatibility": {"openshift": {"adaptSecurityContext": "force"}}}}
DISABLED = {"global": {"compatibility": {"openshift": {"adaptSecurityContext": "disabled"}}}}


@pytest.mark.parametrize("chart", CHARTS)
def test_force_drops_every_fixed_id(helm: HelmBinary, renderer: Renderer, chart: str) -> None:
    docs = render_ok(renderer, helm, chart, values=FORCE)
    problems = [p for w in workloads(docs) for p in id_problems(ref(w), pod_spec(w) or {}, openshift=True)]
    assert not problems, "\n".join(problems)


def _template_on_openshift(renderer: Renderer, helm: HelmBinary, values: dict[str, Any] | None) -> list[Any]:
    """Render the umbrella as `helm install` would on a cluster that serves OpenShift's SCC API."""
    ws = renderer.workspace(helm)
    assert ws.ensure_dependencies(UMBRELLA) is None
    args = [
        "template",
        RELEASE,
        str(ws.chart(UMBRELLA)),
        "--namespace",
        NAMESPACE,
        "--kube-version",
        KUBE_VERSION,
        "--api-versions",
        OPENSHIFT_API,
    ]
    if values is not None:
        args += ["-f", str(renderer.values_file(values))]
    result = ws.run(*args)
    assert result.ok, result.describe()
    return result.docs()


def test_auto_detects_openshift(helm: HelmBinary, renderer: Renderer) -> None:
    docs = _template_on_openshift(renderer, helm, None)
    problems = [p for w in workloads(docs) for p in id_problems(ref(w), pod_spec(w) or {}, openshift=True)]
    assert not problems, "\n".join(problems)


def test_disabled_keeps_ids_on_openshift(helm: HelmBinary, renderer: Renderer) -> None:
    docs = _template_on_openshift(renderer, helm, DISABLED)
    problems = [p for w in workloads(docs) for p in id_problems(ref(w), pod_spec(w) or {}, openshift=False)]
    assert not problems, "\n".join(problems)


def test_checker_flags_restricted_violations() -> None:
    """The restricted checks are not vacuous."""
    spec = {"containers": [{"name": "c", "securityContext": {"privileged": True, "runAsUser": 0}}]}
    problems = restricted_problems("Deployment/x", spec)
    for needle in ("privileged", "runAsNonRoot", "runAsUser is 0", "capabilities", "seccomp"):
        assert any(needle in p for p in problems), (needle, problems)


def test_checker_flags_ids_for_each_platform() -> None:
    """A fixed UID fails the OpenShift check; a missing one fails the vanilla check."""
    fixed = {"securityContext": {"runAsUser": 1000, "fsGroup": 1000}, "containers": [{"name": "c"}]}
    unset = {"securityContext": {"runAsNonRoot": True}, "containers": [{"name": "c"}]}
    assert any("runAsUser" in p for p in id_problems("Deployment/x", fixed, openshift=True))
    vanilla = id_problems("Deployment/x", unset, openshift=False)
    assert any("fsGroup" in p for p in vanilla) and any("runAsUser" in p for p in vanilla)


def _adapt(mode: str) -> dict[str, Any]:
    return {"global": {"compatibility": {"openshift": {"adaptSecurityContext": mode}}}}


BAD_SECURITY_VALUES = [
    ("unknown-adapt-mode", "rag", _adapt("sometimes"), _adapt("auto"), "adaptSecurityContext"),
    ("unknown-adapt-mode-subchart", "maas-gateway", _adapt("always"), _adapt("force"), "adaptSecurityContext"),
    (
        "negative-uid",
        "rag",
        {"pgvector": {"podSecurityContext": {"runAsUser": -1}}},
        {"pgvector": {"podSecurityContext": {"runAsUser": 999}}},
        "runAsUser",
    ),
    (
        "uid-not-a-number",
        "llama-stack",
        {"test": {"podSecurityContext": {"runAsUser": "nonroot"}}},
        {"test": {"podSecurityContext": {"runAsUser": 65532}}},
        "runAsUser",
    ),
]


@pytest.mark.parametrize(
    ("chart", "bad", "good", "field"), [c[1:] for c in BAD_SECURITY_VALUES], ids=[c[0] for c in BAD_SECURITY_VALUES]
)
def test_schema_rejects_bad_security_values(
    helm: HelmBinary, renderer: Renderer, chart: str, bad: dict[str, Any], good: dict[str, Any], field: str
) -> None:
    """A bad mode or ID fails at install time naming the field; the same values with it fixed render."""
    assert renderer.template(helm, chart, values=good).ok, f"control render (field fixed) failed for {field}"
    result = renderer.template(helm, chart, values=bad)
    assert not result.ok, f"helm accepted the bad value of {field}"
    assert "schema" in result.stderr.lower() and field in result.stderr, result.stderr
