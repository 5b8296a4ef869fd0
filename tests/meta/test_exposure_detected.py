"""The exposure tests can fail: one local stack started with llama-stack bound to 0.0.0.0 and
with the access-log redaction of the charts turned off (llama-stack's launcher no longer
masks log records; Envoy logs the path with its query string). The socket test must fail
naming llama-stack's address, and the secrets-in-logs test must fail naming both logs.
The same module passes on the intact stack (`make test` runs it in tests/local).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .runs import BrokenStack, Edit, Run, StackBreak, broken_stack

pytestmark = pytest.mark.meta

MODULE = "tests/local/test_exposure.py"
SOCKETS = "test_exposure::test_every_process_of_the_stack_listens_on_loopback_only"
LOGS = "test_exposure::test_a_key_sent_every_way_reaches_no_log_run_folder_or_diagnostics"
BREAK = StackBreak(
    run_name="meta-exposure",
    overlay="llama-stack:\n  listenHost: 0.0.0.0\n",
    edits=(
        Edit("llama-stack/files/serve.py", "    logging.setLogRecordFactory(_record)\n", "    pass  # masking off\n"),
        Edit("maas-gateway/templates/envoy-configmap.yaml", "%PATH(NQ:ORIG_OR_PATH)%", "%PATH(WQ:ORIG_OR_PATH)%"),
    ),
)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokenStack]:
    yield from broken_stack(BREAK, tmp_path_factory)


@pytest.fixture(scope="module")
def run(stack: BrokenStack, tmp_path_factory: pytest.TempPathFactory) -> Run:
    return stack.run([MODULE, "-k", "every_process or every_way"], tmp_path_factory.mktemp("exposure-run"))


def test_a_component_on_every_interface_fails_the_socket_test(run: Run):
    assert SOCKETS in run.failed_by_assertion(), run.tail()
    message = run.message(SOCKETS)
    assert "llama-stack" in message and "0.0.0.0" in message, message


def test_logs_without_redaction_fail_the_secrets_test(run: Run):
    assert LOGS in run.failed_by_assertion(), run.tail()
    message = run.message(LOGS)
    for log in ("rag-llama-stack-llama-stack.log", "rag-maas-gateway-envoy.log"):
        assert log in message, f"{log} not named:\n{message}"
