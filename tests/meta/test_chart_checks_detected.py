"""Tests of the chart render-check tests: each chart mechanism is broken in a copy of charts/, and
the tests that claim it must fail against that copy (and pass against the real charts)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from charts.helm import HelmBinary, Renderer
from harness.paths import CHARTS_DIR

from charts import helm as helm_mod
from charts import test_llama_stack_tls as tls
from charts import test_render_checks as checks
from charts import test_simulator_runs as simulator

pytestmark = [pytest.mark.meta, pytest.mark.charts]


@dataclass(frozen=True)
class Break:
    file: str  # under charts/
    old: str
    new: str
    tests: tuple[Callable[[HelmBinary, Renderer], Any], ...]


def refusal(case_id: str) -> Callable[[HelmBinary, Renderer], Any]:
    case = next(r for r in checks.REFUSALS if r.id == case_id)
    return lambda helm, renderer: checks.test_render_check_refuses_with_field_and_fix(helm, renderer, case)


def simulator_runs(case_id: str) -> Callable[[HelmBinary, Renderer], Any]:
    case = next(c for c in simulator.SIMULATOR_CASES if c.id == case_id)

    def run(helm: HelmBinary, renderer: Renderer) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            simulator.test_simulator_runs_with_the_rendered_args(helm, renderer, case, Path(tmp))

    return run


BREAKS = {
    "simulator given a vLLM flag it rejects": Break(
        "vllm-gpu/templates/deployment.yaml",
        "            - --force-dummy-tokenizer\n",
        "            - --force-dummy-tokenizer\n            - --enable-force-include-usage\n",
        (simulator_runs("rag-local"), simulator_runs("vllm-gpu-simulator")),
    ),
    "llama-stack checks not run": Break(
        "llama-stack/templates/configmap.yaml",
        '{{- include "llama-stack.validate" . }}\n',
        "",
        (refusal("url-without-v1"), refusal("overlap-equals-size"), refusal("chunk-over-embedding-input")),
    ),
    "duplicate public model ids not checked": Break(
        "llama-stack/templates/_helpers.tpl",
        "{{- if gt (len $keys) 1 }}",
        "{{- if false }}",
        (refusal("duplicate-public-model-id"), refusal("duplicate-public-model-id-umbrella")),
    ),
    "catalog metadata not registered": Break(
        "llama-stack/templates/configmap.yaml",
        '{{- with include "llama-stack.modelMetadata" $m | fromJson }}',
        "{{- with dict }}",
        (
            lambda helm, r: checks.test_catalog_metadata_is_registered_with_the_model(helm, r, "llama-stack"),
            lambda helm, r: checks.test_catalog_metadata_is_registered_with_the_model(helm, r, "rag"),
        ),
    ),
    "upstreamModel not sent as the provider model id": Break(
        "llama-stack/templates/configmap.yaml",
        'provider_model_id: {{ include "llama-stack.servedName" $m | toJson }}',
        "provider_model_id: {{ $m.id | toJson }}",
        (lambda helm, r: checks.test_external_upstream_model_is_the_name_sent_to_the_server(helm, r, "vllm"),),
    ),
    "provider allows the public id instead of upstreamModel": Break(
        "llama-stack/templates/configmap.yaml",
        'allowed_models: [{{ include "llama-stack.servedName" $m | toJson }}]\n            max_tokens',
        "allowed_models: [{{ $m.id | toJson }}]\n            max_tokens",
        (lambda helm, r: checks.test_external_upstream_model_is_the_name_sent_to_the_server(helm, r, "vllm"),),
    ),
    "an entry behind the gateway sends upstreamModel, skipping its budgets": Break(
        "llama-stack/templates/_helpers.tpl",
        "{{ else }}{{ .id }}{{ end }}",
        "{{ else }}{{ .upstreamModel | default .id }}{{ end }}",
        (checks.test_gateway_entry_sends_its_public_id,),
    ),
    "helm test expects the public id instead of the listed name": Break(
        "llama-stack/templates/tests/test-models.yaml",
        '(printf "%s/%s" $key (include "llama-stack.servedName" $m))',
        '(printf "%s/%s" $key $m.id)',
        (checks.test_helm_test_expects_each_model_under_its_listed_name,),
    ),
    "token env names without the key hash": Break(
        "llama-stack/templates/_helpers.tpl",
        "(sha256sum . | trunc 8 | upper)",
        '""',
        (lambda helm, r: checks.test_keys_differing_by_punctuation_get_their_own_token(helm, r, "llama-stack"),),
    ),
    "openai provider drops tlsVerify": Break(
        "llama-stack/templates/configmap.yaml",
        '{{- if hasKey $m "tlsVerify" }}\n            # remote::openai',
        "{{- if false }}\n            # remote::openai",
        (lambda helm, r: checks.test_tls_verify_reaches_openai_provider(helm, r, False, False),),
    ),
    "file processor without the chunking": Break(
        "llama-stack/templates/configmap.yaml",
        "default_chunk_size_tokens: {{ .Values.vectorStore.chunkSizeTokens | int }}\n            default_chunk",
        "default_chunk_size_tokens: 800\n            default_chunk",
        (lambda helm, r: checks.test_chunking_is_published_where_clients_read_it(helm, r, "llama-stack"),),
    ),
    "a second door to llama-stack behind the gateway not checked": Break(
        "rag/templates/_helpers.tpl",
        "{{- if and $gw.enabled ($gw.llamaStack).enabled }}",
        "{{- if false }}",
        (refusal("second-door-route"), refusal("second-door-service"), refusal("gateway-to-no-llama-stack")),
    ),
    "the gateway's chunking not checked against llama-stack's": Break(
        "rag/templates/_helpers.tpl",
        "{{- if and $ls.enabled (or (ne (int $want.sizeTokens) (int $vs.chunkSizeTokens))",
        "{{- if and false (or (ne (int $want.sizeTokens) (int $vs.chunkSizeTokens))",
        (refusal("gateway-chunking-differs"),),
    ),
    "a chunking overlap the gateway would fill in not checked": Break(
        "maas-gateway/templates/_helpers.tpl",
        "{{- if and .Values.llamaStack.enabled (ge (int $chunking.overlapTokens) (int $chunking.sizeTokens)) }}",
        "{{- if false }}",
        (refusal("gateway-chunking-overlap"),),
    ),
    "llama-stack TLS with no certificate not checked": Break(
        "llama-stack/templates/_helpers.tpl",
        "{{- if and (not $tls.existingSecret) (not $tls.openshiftServingCert) (not (and $tls.certificate $tls.key)) }}",
        "{{- if false }}",
        (refusal("llama-stack-tls-without-certificate"),),
    ),
    "HTTPS on one side of the gateway only not checked": Break(
        "rag/templates/_helpers.tpl",
        "{{- if and $ls.enabled (ne $lsTls $gwTls) }}",
        "{{- if false }}",
        (refusal("llama-stack-tls-gateway-plain"),),
    ),
    "the gateway trusts any llama-stack certificate": Break(
        "maas-gateway/templates/envoy-configmap.yaml",
        '{{- if (hasKey $c "verify" | ternary $c.verify $.Values.upstream.tlsVerify) }}',
        "{{- if false }}",
        (tls.test_the_gateway_verifies_llama_stacks_certificate,),
    ),
    "pgvector Secret wiring not checked": Break(
        "rag/templates/_helpers.tpl",
        "{{- if or (ne (tpl $ref.name .) $want) (ne $ref.key .Values.pgvector.auth.secretKey) }}",
        "{{- if false }}",
        (refusal("pgvector-existing-secret-not-wired"),),
    ),
    "kuadrant mode keeps the standalone key-validation route": Break(
        "rag/templates/_helpers.tpl",
        '{{- if contains (printf "//%s-maas-gateway:" .Release.Name) $endpoint }}',
        "{{- if false }}",
        (refusal("kuadrant-without-key-validation"),),
    ),
    "upgrade generates a new pgvector password": Break(
        "rag/templates/pgvector-secret.yaml",
        "{{- else if .Release.IsUpgrade }}",
        "{{- else if false }}",
        (lambda helm, r: checks.test_upgrade_without_the_secret_refuses_a_new_password(helm, r, {}, False),),
    ),
    "kuadrant helm test calls the standalone Service": Break(
        "rag/templates/tests/test-stack.yaml",
        '{{- if eq ($gw.mode | default "standalone") "standalone" }}',
        "{{- if true }}",
        (
            lambda helm, r: checks.test_umbrella_helm_test_calls_a_gateway_that_is_rendered(
                helm, r, {"mode": "kuadrant"}, ""
            ),
        ),
    ),
    "TEI prompt not rendered": Break(
        "rag/templates/embeddings.yaml",
        '- {{ printf "--default-prompt=%s" . | quote }}',
        "- --hostname=0.0.0.0",
        (checks.test_tei_pooling_and_prompt_come_from_values,),
    ),
}


@pytest.fixture(scope="module")
def helm4() -> HelmBinary:
    return helm_mod.binary("helm4")


def broken_renderer(tmp: Path, brk: Break) -> Renderer:
    source = tmp / "charts"
    shutil.copytree(CHARTS_DIR, source, symlinks=True)
    path = source / brk.file
    text = path.read_text()
    assert brk.old in text, f"{brk.file} no longer contains {brk.old!r}: update this meta test"
    path.write_text(text.replace(brk.old, brk.new))
    return Renderer(tmp / "renders", source=source)


@pytest.mark.parametrize("name", list(BREAKS))
def test_broken_mechanism_fails_its_tests(helm4: HelmBinary, tmp_path: Path, name: str) -> None:
    check_break(helm4, tmp_path, BREAKS[name])


def check_break(helm4: HelmBinary, tmp_path: Path, brk: Break) -> None:
    """Each of the break's tests passes on the real charts and fails on the broken copy."""
    real = Renderer(tmp_path / "real")
    broken = broken_renderer(tmp_path / "broken", brk)
    for test in brk.tests:
        test(helm4, real)  # passes against the real charts
        with pytest.raises((AssertionError, pytest.fail.Exception)):
            test(helm4, broken)
