"""The helpers the charts share stay identical copies (see charts/shared_helpers.py for why copies)."""

from __future__ import annotations

import pytest
from harness.paths import CHARTS_DIR

from charts.layout import CHARTS
from charts.shared_helpers import REFERENCE, SHARED, drift, helper_text

pytestmark = pytest.mark.charts


def test_every_chart_defines_the_shared_helpers_identically():
    assert drift(CHARTS_DIR, CHARTS) == []


def test_the_compared_text_is_the_whole_helper():
    text = helper_text((CHARTS_DIR / REFERENCE / "templates" / "_helpers.tpl").read_text(), REFERENCE, SHARED[0])
    assert text.startswith("{{/*") and "Usage:" in text and text.endswith("{{- end -}}")
    assert "toYaml $sc" in text and "omit $sc" in text
