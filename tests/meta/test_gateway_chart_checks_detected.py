"""The gateway chart tests fail when the chart mechanism they check breaks: each case renders a
copy of the charts with one mechanism broken and runs the chart test against it."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from charts.helm import Renderer
from harness.paths import CHARTS_DIR

from charts import helm as helm_mod
from charts import test_gateway

pytestmark = pytest.mark.meta

HELPERS = "maas-gateway/templates/_helpers.tpl"
SCHEMA = "maas-gateway/values.schema.json"
WINDOWS = "^((1|2|3|4|5|6|10|12|15|20|30|60)(s|m)|(1|2|3|4|6|8|12|24)h)$"
# The last guard; the broken copy falls back to a longer unit, as the chart once did.
UNIT_CHECK = (
    '{{- if not $unit }}{{ fail (printf "a window of %ds divides none of the rate limit service\'s units" $w) }}'
    "{{ end }}"
)
STRAYING_WINDOWS = "^((1|2|3|4|5|6|7|10|12|15|20|30|60)(s|m)|(1|2|3|4|6|8|12|24)h)$"


@dataclass(frozen=True)
class Breakage:
    patches: tuple[tuple[str, str, str], ...]  # (file, product text, broken text)
    test: Callable[..., None]
    kwargs: tuple[tuple[str, str], ...]
    phrase: str  # what the failure must say


BREAKAGES = {
    "counter unit ignores the window": Breakage(
        ((HELPERS, "{{- $unit }}\n{{- end }}", '{{- "minute" }}\n{{- end }}'),),
        test_gateway.test_every_accepted_window_gets_counters_that_reset_on_its_bounds,
        (),
        "splits the window",
    ),
    "7s accepted": Breakage(
        (
            (SCHEMA, WINDOWS, STRAYING_WINDOWS),
            (HELPERS, WINDOWS, STRAYING_WINDOWS),
            (HELPERS, UNIT_CHECK, '{{- if not $unit }}{{ $unit = "hour" }}{{ end }}'),
        ),
        test_gateway.test_windows_that_straddle_counter_units_are_refused,
        (("window", "7s"), ("mode", "standalone")),
        "was accepted",
    ),
    "vLLM without forced usage": Breakage(
        (("vllm-gpu/templates/deployment.yaml", "- --enable-force-include-usage", "- --disable-log-requests"),),
        test_gateway.test_vllm_forces_usage_in_streams,
        (("preset", "a100"),),
        "--enable-force-include-usage",
    ),
    "kuadrant forwards the key": Breakage(
        ((HELPERS, '["authorization",', "["),),
        test_gateway.test_both_modes_strip_the_same_identity_headers,
        (),
        "forwards the gateway key",
    ),
}


def broken_copy(dest: Path, patches: tuple[tuple[str, str, str], ...]) -> Path:
    shutil.copytree(CHARTS_DIR, dest, symlinks=True)
    for rel, good, bad in patches:
        path = dest / rel
        text = path.read_text()
        assert good in text, f"{rel} no longer contains {good!r}; update this meta test"
        path.write_text(text.replace(good, bad))
    return dest


@pytest.mark.parametrize("name", list(BREAKAGES))
def test_gateway_chart_breakage_fails_its_test(name: str, tmp_path: Path) -> None:
    breakage = BREAKAGES[name]
    renderer = Renderer(tmp_path / "helm", source=broken_copy(tmp_path / "charts", breakage.patches))
    helm = helm_mod.binary("helm4")
    with pytest.raises((AssertionError, pytest.fail.Exception)) as failure:
        breakage.test(helm=helm, renderer=renderer, **dict(breakage.kwargs))
    assert breakage.phrase in str(failure.value), f"{name}: failed for another reason: {failure.value}"


@pytest.mark.parametrize("name", list(BREAKAGES))
def test_the_unbroken_chart_passes_the_same_test(name: str, tmp_path: Path) -> None:
    breakage = BREAKAGES[name]
    renderer = Renderer(tmp_path / "helm")
    breakage.test(helm=helm_mod.binary("helm4"), renderer=renderer, **dict(breakage.kwargs))
