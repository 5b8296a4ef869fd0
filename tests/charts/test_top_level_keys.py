"""The rag umbrella refuses top-level keys it would silently ignore, naming the nearest known key.

Nested typos are caught by each subchart's values.schema.json; a misspelt top-level key
(`maas-gatway:`) reaches no schema, so the umbrella's template check must catch it.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml
from harness.paths import chart

from charts.helm import HelmBinary, Renderer
from charts.layout import chart_present

pytestmark = pytest.mark.charts

LIMIT = {"tiers": {"free": {"tokens": {"limit": 50, "window": "1m"}, "requests": {"limit": 5, "window": "2m"}}}}
# (misspelt key, the key it should suggest, the values under it)
TYPOS = [
    ("maas-gatway", "maas-gateway", LIMIT),
    ("pgvektor", "pgvector", {"port": 5433}),
    ("lama-stack", "llama-stack", {"enabled": True}),
    ("embedding", "embeddings", {"port": 8090}),
]


@pytest.mark.parametrize(("typo", "known", "values"), TYPOS, ids=[t[0] for t in TYPOS])
def test_unknown_top_level_key_fails_naming_it_and_the_nearest_key(
    helm: HelmBinary, renderer: Renderer, typo: str, known: str, values: dict[str, Any]
) -> None:
    chart_present("rag")
    good = renderer.template(helm, "rag", values={known: values})
    assert good.ok, f"control render (key spelt right) must pass:\n{good.describe()}"
    bad = renderer.template(helm, "rag", values={typo: values})
    assert not bad.ok, f"helm accepted the unknown top-level key {typo!r}"
    message = [line for line in bad.stderr.splitlines() if "ERROR" in line]
    assert len(message) == 1, bad.stderr
    assert f'unknown top-level key "{typo}" (did you mean "{known}"?)' in message[0]


def test_every_unknown_key_is_listed_in_one_failure(helm: HelmBinary, renderer: Renderer) -> None:
    chart_present("rag")
    bad = renderer.template(helm, "rag", values={"maas-gatway": LIMIT, "zzz": 1})
    assert not bad.ok
    assert re.search(r'"maas-gatway".*"zzz"', bad.stderr), bad.stderr


def test_the_chart_reads_every_key_it_accepts(helm: HelmBinary, renderer: Renderer) -> None:
    """Control: the chart's own values.yaml keys are all known (the check does not reject its defaults)."""
    chart_present("rag")
    result = renderer.template(helm, "rag", values={})
    assert result.ok, result.describe()


DEPENDENCIES = [d["name"] for d in yaml.safe_load((chart("rag") / "Chart.yaml").read_text())["dependencies"]]


@pytest.mark.parametrize("dependency", DEPENDENCIES)
def test_a_disabled_dependency_keeps_its_key_known(helm: HelmBinary, renderer: Renderer, dependency: str) -> None:
    """Helm drops a disabled dependency from .Chart.Dependencies, not its values: the check must still know it."""
    chart_present("rag")
    result = renderer.template(helm, "rag", values={dependency: {"enabled": False}})
    assert result.ok, result.describe()
