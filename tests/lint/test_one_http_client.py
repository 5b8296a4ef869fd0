"""Every HTTP call of the harness goes through harness.http: no module of the harness calls httpx or
urllib.request itself, except the HTTP module and the stand-ins (separate programs with their own servers)."""

from __future__ import annotations

import re

import pytest
from harness.paths import REPO_ROOT

pytestmark = pytest.mark.lint

HARNESS = REPO_ROOT / "tests" / "harness"
ALLOWED = {HARNESS / "http.py", HARNESS / "maas_standin.py", HARNESS / "local" / "model_tap.py"}
DIRECT = re.compile(r"urllib\.request|httpx\.")


def test_only_the_http_module_calls_httpx_or_urllib():
    modules = sorted(HARNESS.rglob("*.py"))
    assert HARNESS / "http.py" in modules and len(modules) > 50
    found = [
        f"{path.relative_to(REPO_ROOT)}:{number}: {line.strip()}"
        for path in modules
        if path not in ALLOWED
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if DIRECT.search(line)
    ]
    assert not found, "call harness.http instead:\n" + "\n".join(found)
