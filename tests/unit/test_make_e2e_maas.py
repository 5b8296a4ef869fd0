"""`make e2e`, the main job, proves the MaaS workflow by default: without MAAS_ENDPOINT in the
environment it runs against the stand-in MaaS on the targets that can reach it (local, kube),
and leaves a user's own choice alone.

`PY` is replaced by a recorder, so no stack starts: the test reads the MAAS_ENDPOINT that
make hands to pytest.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from harness.paths import REPO_ROOT

RECORDER = """#!/bin/sh
# Stands in for the venv's python: records what make runs and with which MAAS_ENDPOINT.
echo "$* | MAAS_ENDPOINT=${MAAS_ENDPOINT-<unset>}" >> "$RECORD"
"""


def pytest_maas_endpoint(tmp_path: Path, *make_args: str, env: dict[str, str | None]) -> str:
    recorder, record = tmp_path / "python", tmp_path / "record.txt"
    recorder.write_text(RECORDER)
    recorder.chmod(0o755)
    environ = {k: v for k, v in os.environ.items() if not k.startswith("MAAS_")}
    environ |= {k: v for k, v in env.items() if v is not None} | {"RECORD": str(record)}
    done = subprocess.run(
        ["make", "--no-print-directory", "e2e", f"PY={recorder}", *make_args],
        cwd=REPO_ROOT, env=environ, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    runs = [line for line in record.read_text().splitlines() if line.startswith("-m pytest")]
    assert len(runs) == 1, record.read_text()
    return runs[0].rsplit("MAAS_ENDPOINT=", 1)[1]


@pytest.mark.parametrize(
    ("make_args", "env", "expected"),
    [
        ((), {}, "standin"),
        (("TARGET=kube",), {}, "standin"),
        (("TARGET=kind",), {}, "<unset>"),  # the stand-in is out of a Kind cluster's reach
        ((), {"MAAS_ENDPOINT": ""}, ""),  # the user's "no MaaS"
        ((), {"MAAS_ENDPOINT": "https://maas.example.test/v1"}, "https://maas.example.test/v1"),
    ],
    ids=["local-default", "kube-default", "kind", "user-none", "user-endpoint"],
)
def test_make_e2e_runs_the_maas_workflow_by_default(
    tmp_path: Path, make_args: tuple[str, ...], env: dict[str, str | None], expected: str
) -> None:
    assert pytest_maas_endpoint(tmp_path, *make_args, env=env) == expected
