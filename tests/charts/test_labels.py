"""Standard labels: selectors never use helm.sh/chart (it changes on every chart bump, and selectors
are immutable); every workload carries app.kubernetes.io/name, instance and component (the local
runner orders processes by component)."""

from __future__ import annotations

import pytest

from charts.cases import CASE_IDS, CASES, Case, render_case
from charts.helm import HelmBinary, Renderer
from charts.manifests import pod_labels, ref, selector_keys, selectors, workloads

pytestmark = pytest.mark.charts

REQUIRED_LABELS = ("app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/component")
# Labels that change between releases or chart versions must never select pods.
VOLATILE_LABELS = ("helm.sh/chart", "app.kubernetes.io/version", "app.kubernetes.io/managed-by")


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_selectors_use_stable_labels_only(helm: HelmBinary, renderer: Renderer, case: Case) -> None:
    docs = render_case(renderer, helm, case)
    bad = [
        f"{ref(d)} {path}: {sorted(keys)}"
        for d in docs
        for path, sel in selectors(d)
        if (keys := selector_keys(sel) & set(VOLATILE_LABELS))
    ]
    services = [d for d in docs if d.get("kind") == "Service"]
    bad += [
        f"{ref(s)} spec.selector: {sorted(keys)}"
        for s in services
        if (keys := set((s.get("spec") or {}).get("selector") or {}) & set(VOLATILE_LABELS))
    ]
    assert not bad, "selectors with volatile labels:\n" + "\n".join(bad)


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_workloads_have_standard_labels(helm: HelmBinary, renderer: Renderer, case: Case) -> None:
    docs = render_case(renderer, helm, case)
    missing = []
    for w in workloads(docs):
        meta = (w.get("metadata") or {}).get("labels") or {}
        pods = pod_labels(w)
        for where, labels in (("metadata.labels", meta), ("pod labels", pods)):
            if absent := [label for label in REQUIRED_LABELS if not labels.get(label)]:
                missing.append(f"{ref(w)} {where}: missing {absent}")
    assert not missing, "\n".join(missing)


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_selectors_match_their_pods(helm: HelmBinary, renderer: Renderer, case: Case) -> None:
    """A workload's selector must match its own pod template; a Service must select some pod."""
    docs = render_case(renderer, helm, case)
    bad = []
    pod_label_sets = [pod_labels(w) for w in workloads(docs)]
    for w in workloads(docs):
        match = (((w.get("spec") or {}).get("selector")) or {}).get("matchLabels") or {}
        if any(pod_labels(w).get(k) != v for k, v in match.items()):
            bad.append(f"{ref(w)}: selector {match} does not match pod labels {pod_labels(w)}")
    for svc in (d for d in docs if d.get("kind") == "Service"):
        sel = (svc.get("spec") or {}).get("selector") or {}
        if sel and not any(all(p.get(k) == v for k, v in sel.items()) for p in pod_label_sets):
            bad.append(f"{ref(svc)}: selector {sel} matches no rendered pod")
    assert not bad, "\n".join(bad)
