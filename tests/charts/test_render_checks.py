"""Values that pass the schema but would break at run time fail at render time, through a template
check whose `ERROR:` message names the field and says what to do.

Every case has a control: the nearest good value must render, so a rejection can only come from
that field. Cases the charts fix by construction (token env names, tlsVerify on remote::openai,
the kuadrant helm test) are asserted on the rendered objects instead."""

from __future__ import annotations

import base64
import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from harness.paths import CHARTS_DIR

from charts.cases import CASE_IDS, CASES, render_case, render_ok
from charts.helm import KUBE_VERSION, NAMESPACE, RELEASE, HelmBinary, Renderer, Result, Workspace, isolated_env
from charts.layout import chart_present
from charts.manifests import Obj, config_map_files, containers, of_kind, ref
from charts.test_models_contract import llama_stack_container, run_config

pytestmark = pytest.mark.charts

# A key-validation service of the user's own, for kuadrant mode (which renders no standalone gateway).
KEYS_ELSEWHERE = "http://keys.example.test/validate"
ENV_REF = re.compile(r"^\$\{env\.([A-Za-z_][A-Za-z0-9_]*)\}$")


def model(key: str = "m1", **entry: Any) -> dict[str, Any]:
    return {"global": {"models": {key: {"id": "m1", "url": "http://vllm.example.svc:8000/v1", **entry}}}}


def vector_store(**values: Any) -> dict[str, Any]:
    return {"vectorStore": values}


def umbrella(values: dict[str, Any]) -> dict[str, Any]:
    """The same llama-stack values seen through the rag umbrella (global stays global)."""
    inner = {k: v for k, v in values.items() if k != "global"}
    return {**({"global": values["global"]} if "global" in values else {}), "llama-stack": inner}


@dataclass(frozen=True)
class Refusal:
    id: str
    chart: str
    bad: dict[str, Any]
    good: dict[str, Any]
    field: str  # the field the message must name
    hint: str  # what the message must tell the user to do


def two_models(second_id: str) -> dict[str, Any]:
    """Two enabled catalog entries on one server: `a` with id `shared`, `b` with `second_id`."""
    url = "http://vllm.example.svc:8000/v1"
    return {"global": {"models": {"a": {"id": "shared", "url": url}, "b": {"id": second_id, "url": url}}}}


REFUSALS = [
    *(
        Refusal(
            # Both keys named, so the user sees which two entries collide.
            f"duplicate-public-model-id{suffix}",
            chart,
            two_models("shared"),
            two_models("other"),
            "global.models.a.id and global.models.b.id",
            "Give each entry its own id",
        )
        for chart, suffix in (("llama-stack", ""), ("rag", "-umbrella"))
    ),
    Refusal(
        "drain-longer-than-grace-period",
        "maas-gateway",
        {"envoy": {"preStopSleepSeconds": 15, "terminationGracePeriodSeconds": 15}},
        {"envoy": {"preStopSleepSeconds": 14, "terminationGracePeriodSeconds": 15}},
        "envoy.terminationGracePeriodSeconds",
        "raise the grace period",
    ),
    Refusal(
        # Kuadrant mode renders no standalone gateway, so its key-validation route does not exist.
        "kuadrant-without-key-validation",
        "rag",
        {"maas-gateway": {"mode": "kuadrant"}},
        {"maas-gateway": {"mode": "kuadrant"}, "llama-stack": {"auth": {"endpoint": KEYS_ELSEWHERE}}},
        "llama-stack.auth.endpoint",
        "llama-stack.auth.enabled=false",
    ),
    Refusal(
        "url-without-v1",
        "llama-stack",
        model(url="http://vllm.example.svc:8000"),
        model(url="http://vllm.example.svc:8000/v1"),
        "global.models.m1.url",
        '"http://vllm.example.svc:8000/v1"',
    ),
    Refusal(
        "url-without-v1-umbrella",
        "rag",
        model(url="http://vllm.example.svc:8000/"),
        model(url="http://vllm.example.svc:8000/v1/"),
        "global.models.m1.url",
        '"http://vllm.example.svc:8000/v1"',
    ),
    Refusal(
        # The check runs after tpl: a templated host is shown as it would be called.
        "templated-url-without-v1",
        "llama-stack",
        model(url="http://{{ .Release.Name }}-gateway:8080"),
        model(url="http://{{ .Release.Name }}-gateway:8080/v1"),
        "global.models.m1.url",
        f'"http://{RELEASE}-gateway:8080/v1"',
    ),
    Refusal(
        "overlap-equals-size",
        "llama-stack",
        vector_store(chunkSizeTokens=128, chunkOverlapTokens=128),
        vector_store(chunkSizeTokens=128, chunkOverlapTokens=127),
        "vectorStore.chunkOverlapTokens",
        "must be smaller than vectorStore.chunkSizeTokens",
    ),
    Refusal(
        "overlap-equals-size-umbrella",
        "rag",
        umbrella(vector_store(chunkSizeTokens=128, chunkOverlapTokens=128)),
        umbrella(vector_store(chunkSizeTokens=128, chunkOverlapTokens=127)),
        "vectorStore.chunkOverlapTokens",
        "must be smaller than vectorStore.chunkSizeTokens",
    ),
    Refusal(
        # 404 x 1.25 + 8 = 513 > 512 tokens of multilingual-e5-small; 403 gives exactly 512.
        "chunk-over-embedding-input",
        "llama-stack",
        vector_store(chunkSizeTokens=404, chunkOverlapTokens=100),
        vector_store(chunkSizeTokens=403, chunkOverlapTokens=100),
        "vectorStore.chunkSizeTokens",
        "at most 403",
    ),
    Refusal(
        "chunk-over-embedding-input-umbrella",
        "rag",
        umbrella(vector_store(chunkSizeTokens=800, chunkOverlapTokens=400)),
        umbrella(vector_store(chunkSizeTokens=400, chunkOverlapTokens=100)),
        "embeddings.maxInputTokens",
        "at most 403",
    ),
    Refusal(
        "route-without-auth",
        "llama-stack",
        {"route": {"enabled": True}, "auth": {"enabled": False}},
        {"route": {"enabled": True}, "auth": {"enabled": False, "insecure": True}},
        "auth.enabled",
        "auth.insecure=true",
    ),
    Refusal(
        "load-balancer-without-auth",
        "llama-stack",
        {"service": {"type": "LoadBalancer"}, "auth": {"enabled": False}},
        {"service": {"type": "LoadBalancer"}, "auth": {"enabled": True}},
        "service.type=LoadBalancer",
        "auth.insecure=true",
    ),
    Refusal(
        "route-without-auth-umbrella",
        "rag",
        umbrella({"route": {"enabled": True}, "auth": {"enabled": False}}),
        umbrella({"route": {"enabled": True}, "auth": {"enabled": False, "insecure": True}}),
        "route.enabled=true",
        "auth.insecure=true",
    ),
    # One door: llama-stack behind the gateway is reachable only through it.
    Refusal(
        "second-door-route",
        "rag",
        {"maas-gateway": {"llamaStack": {"enabled": True}}, "llama-stack": {"route": {"enabled": True}}},
        {"maas-gateway": {"llamaStack": {"enabled": False}}, "llama-stack": {"route": {"enabled": True}}},
        "llama-stack.route.enabled",
        "Set llama-stack.route.enabled=false",
    ),
    Refusal(
        "second-door-service",
        "rag",
        {"maas-gateway": {"llamaStack": {"enabled": True}}, "llama-stack": {"service": {"type": "NodePort"}}},
        {"maas-gateway": {"llamaStack": {"enabled": True}}, "llama-stack": {"service": {"type": "ClusterIP"}}},
        "llama-stack.service.type",
        "Set llama-stack.service.type=ClusterIP",
    ),
    Refusal(
        "gateway-to-no-llama-stack",
        "rag",
        {"maas-gateway": {"llamaStack": {"enabled": True}}, "llama-stack": {"enabled": False}},
        {"maas-gateway": {"llamaStack": {"enabled": False}}, "llama-stack": {"enabled": False}},
        "llama-stack.enabled",
        "set maas-gateway.llamaStack.enabled=false",
    ),
    # HTTPS to llama-stack: a certificate to serve, a CA to verify it with, both ends agreeing.
    Refusal(
        "llama-stack-tls-without-certificate",
        "llama-stack",
        {"tls": {"enabled": True}},
        {"tls": {"enabled": True, "existingSecret": "llama-stack-tls"}},
        "tls.existingSecret",
        "tls.openshiftServingCert=true",
    ),
    Refusal(
        "llama-stack-tls-behind-an-edge-route",
        "llama-stack",
        {"tls": {"enabled": True, "existingSecret": "s"}, "route": {"enabled": True, "tlsTermination": "edge"}},
        {"tls": {"enabled": True, "existingSecret": "s"}, "route": {"enabled": True, "tlsTermination": "reencrypt"}},
        "route.tlsTermination",
        "Set route.tlsTermination=reencrypt",
    ),
    Refusal(
        "llama-stack-certificate-without-tls",
        "llama-stack",
        {"tls": {"existingSecret": "s"}},
        {"tls": {"enabled": True, "existingSecret": "s"}},
        "tls.enabled",
        "Set tls.enabled=true",
    ),
    Refusal(
        "gateway-llama-stack-tls-without-ca",
        "maas-gateway",
        {"llamaStack": {"enabled": True, "tls": {"enabled": True}}},
        {"llamaStack": {"enabled": True, "tls": {"enabled": True, "caConfigMap": {"name": "llama-stack-ca"}}}},
        "llamaStack.tls.caConfigMap.name",
        "llamaStack.tls.openshiftServiceCA=true",
    ),
    Refusal(
        "llama-stack-tls-gateway-plain",
        "rag",
        {
            "maas-gateway": {"llamaStack": {"enabled": True}},
            "llama-stack": {"tls": {"enabled": True, "existingSecret": "s"}},
        },
        {
            "maas-gateway": {"llamaStack": {"enabled": True, "tls": {"enabled": True, "caConfigMap": {"name": "c"}}}},
            "llama-stack": {"tls": {"enabled": True, "existingSecret": "s"}},
        },
        "maas-gateway.llamaStack.tls.enabled",
        "Set both to the same value",
    ),
    # The gateway fills in the chunking llama-stack publishes, and only a chunking that advances.
    Refusal(
        "gateway-chunking-differs",
        "rag",
        {"maas-gateway": {"llamaStack": {"enabled": True}}, "llama-stack": {"vectorStore": {"chunkSizeTokens": 300}}},
        {
            "maas-gateway": {"llamaStack": {"enabled": True, "chunking": {"sizeTokens": 300}}},
            "llama-stack": {"vectorStore": {"chunkSizeTokens": 300}},
        },
        "maas-gateway.llamaStack.chunking",
        "Set maas-gateway.llamaStack.chunking to {sizeTokens: 300, overlapTokens: 100}",
    ),
    Refusal(
        "gateway-chunking-overlap",
        "maas-gateway",
        {"llamaStack": {"enabled": True, "chunking": {"sizeTokens": 200, "overlapTokens": 200}}},
        {"llamaStack": {"enabled": True, "chunking": {"sizeTokens": 200, "overlapTokens": 199}}},
        "llamaStack.chunking.overlapTokens",
        "smaller than llamaStack.chunking.sizeTokens",
    ),
    Refusal(
        "llama-stack-behind-kuadrant",
        "maas-gateway",
        {"mode": "kuadrant", "llamaStack": {"enabled": True}},
        {"mode": "kuadrant", "llamaStack": {"enabled": False}},
        "llamaStack.enabled",
        "Set mode=standalone",
    ),
    Refusal(
        "pgvector-existing-secret-not-wired",
        "rag",
        {"pgvector": {"auth": {"existingSecret": "pg-credentials", "secretKey": "pw"}}},
        {
            "pgvector": {"auth": {"existingSecret": "pg-credentials", "secretKey": "pw"}},
            "llama-stack": {
                "vectorStore": {"pgvector": {"passwordSecretRef": {"name": "pg-credentials", "key": "pw"}}}
            },
        },
        "llama-stack.vectorStore.pgvector.passwordSecretRef",
        '{name: "pg-credentials", key: "pw"}',
    ),
]


@pytest.mark.parametrize("case", REFUSALS, ids=[r.id for r in REFUSALS])
def test_render_check_refuses_with_field_and_fix(helm: HelmBinary, renderer: Renderer, case: Refusal) -> None:
    chart_present(case.chart)
    good = renderer.template(helm, case.chart, values=case.good)
    assert good.ok, f"control render (field fixed) must pass:\n{good.describe()}"
    bad = renderer.template(helm, case.chart, values=case.bad)
    assert not bad.ok, f"helm accepted the bad value of {case.field}"
    assert "ERROR:" in bad.stderr, f"rejected, but not by the chart's render check:\n{bad.stderr}"
    assert case.field in bad.stderr, f"the error does not name {case.field}:\n{bad.stderr}"
    assert case.hint in bad.stderr, f"the error does not say what to do ({case.hint!r}):\n{bad.stderr}"


def test_checks_report_every_problem_at_once(helm: HelmBinary, renderer: Renderer) -> None:
    values = {**model(url="http://a.example.test"), **vector_store(chunkSizeTokens=200, chunkOverlapTokens=300)}
    bad = renderer.template(helm, "llama-stack", values=values)
    assert not bad.ok
    assert bad.stderr.count("ERROR:") == 2, f"expected both problems in one message:\n{bad.stderr}"


# --- token env names: collision-free by construction ----------------------------------------------

COLLIDING: dict[str, Any] = {
    "global": {
        "models": {
            "team-a": {"id": "a", "url": "http://a.example.test/v1", "apiToken": "sk-ci-team-dash-1111"},
            "team_a": {"id": "b", "url": "http://b.example.test/v1", "apiToken": "sk-ci-team-underscore-2222"},
            "Team-A": {
                "id": "c",
                "url": "http://c.example.test/v1",
                "provider": "openai",
                "apiTokenSecretRef": {"name": "ci-team-upper", "key": "token"},
            },
        }
    }
}


@pytest.mark.parametrize("chart", ("llama-stack", "rag"))
def test_keys_differing_by_punctuation_get_their_own_token(helm: HelmBinary, renderer: Renderer, chart: str) -> None:
    """`team-a`, `team_a` and `Team-A` once shared MODEL_TOKEN_TEAM_A: each must read its own token."""
    docs = render_ok(renderer, helm, chart, values=COLLIDING)
    cm, config = run_config(docs)
    env = llama_stack_container(docs, cm).env()
    secrets = {s["metadata"]["name"]: s for s in of_kind(docs, "Secret")}
    seen: dict[str, str] = {}
    for provider in config["providers"]["inference"]:
        key = provider["provider_id"]
        if key not in COLLIDING["global"]["models"]:
            continue
        field = "api_key" if provider["provider_type"] == "remote::openai" else "api_token"
        match = ENV_REF.match(str(provider["config"].get(field, "")))
        assert match, f"{key}: {field} is not a ${{env.VAR}} reference: {provider['config']}"
        var = match.group(1)
        assert var not in seen, f"models {seen[var]!r} and {key!r} read the same env var {var}"
        seen[var] = key
        source = (env[var].get("valueFrom") or {}).get("secretKeyRef") or {}
        entry = COLLIDING["global"]["models"][key]
        if "apiTokenSecretRef" in entry:
            assert (source.get("name"), source.get("key")) == (entry["apiTokenSecretRef"]["name"], "token")
        else:
            data = secrets[source["name"]]["data"]
            assert base64.b64decode(data[source["key"]]).decode() == entry["apiToken"], f"{key} reads another token"
    assert len(seen) == 3, f"expected three token variables, got {seen}"


# --- catalog metadata and upstreamModel ------------------------------------------------------------

CATALOG: dict[str, Any] = {
    "displayName": "Model One",
    "description": "A small chat model",
    "category": "chat",
    "contextLength": 32768,
    "capabilities": ["chat", "tools"],
    "supportsStreaming": True,
    "availability": "preview",
}


@pytest.mark.parametrize("chart", ("llama-stack", "rag"))
def test_catalog_metadata_is_registered_with_the_model(helm: HelmBinary, renderer: Renderer, chart: str) -> None:
    """llama-stack shows a registered model's metadata in GET /v1/models (custom_metadata)."""
    values = model(**CATALOG)
    docs = render_ok(renderer, helm, chart, values=umbrella(values) if chart == "rag" else values)
    _, config = run_config(docs)
    registered = next(m for m in config["registered_resources"]["models"] if m["provider_id"] == "m1")
    assert registered.get("metadata") == CATALOG, registered
    assert (registered["model_id"], registered["provider_model_id"]) == ("m1", "m1"), registered


def test_model_without_catalog_fields_registers_no_metadata(helm: HelmBinary, renderer: Renderer) -> None:
    docs = render_ok(renderer, helm, "llama-stack", values=model())
    _, config = run_config(docs)
    registered = next(m for m in config["registered_resources"]["models"] if m["provider_id"] == "m1")
    assert "metadata" not in registered, registered


@pytest.mark.parametrize("provider", ("vllm", "openai"))
def test_external_upstream_model_is_the_name_sent_to_the_server(
    helm: HelmBinary, renderer: Renderer, provider: str
) -> None:
    """llama-stack calls an external entry directly, so it asks the server for upstreamModel; the
    public id stays the registered model_id and, since llama-stack names the model <key>/<provider
    model id>, rides along as publicId."""
    values = model(provider=provider, upstreamModel="served-name", external=True)
    docs = render_ok(renderer, helm, "llama-stack", values=values)
    _, config = run_config(docs)
    registered = next(m for m in config["registered_resources"]["models"] if m["provider_id"] == "m1")
    assert (registered["model_id"], registered["provider_model_id"]) == ("m1", "served-name"), registered
    assert registered.get("metadata") == {"publicId": "m1"}, registered
    provider_entry = next(p for p in config["providers"]["inference"] if p["provider_id"] == "m1")
    assert provider_entry["config"]["allowed_models"] == ["served-name"], provider_entry


def test_gateway_entry_sends_its_public_id(helm: HelmBinary, renderer: Renderer) -> None:
    """An entry behind the gateway: llama-stack sends the public id, and the gateway (routing by
    model) sends upstreamModel on, so the entry's tiers, limits and token costs apply to calls made
    through llama-stack; sending upstreamModel would charge another entry's budgets, or get 404."""
    docs = render_ok(renderer, helm, "llama-stack", values=model(upstreamModel="served-name"))
    _, config = run_config(docs)
    registered = next(m for m in config["registered_resources"]["models"] if m["provider_id"] == "m1")
    assert (registered["model_id"], registered["provider_model_id"]) == ("m1", "m1"), registered
    assert "metadata" not in registered, registered
    provider_entry = next(p for p in config["providers"]["inference"] if p["provider_id"] == "m1")
    assert provider_entry["config"]["allowed_models"] == ["m1"], provider_entry


def test_helm_test_expects_each_model_under_its_listed_name(helm: HelmBinary, renderer: Renderer) -> None:
    """`helm test` checks llama-stack lists each model as it names it: <key>/<id>, an external entry
    <key>/<upstreamModel or id>."""
    values = model(upstreamModel="served-name", external=True)
    values["global"]["models"]["m2"] = {"id": "m2", "url": "http://vllm.example.svc:8000/v1", "upstreamModel": "x"}
    docs = render_ok(renderer, helm, "llama-stack", values=values)
    envs = [e for pod in _test_pods(docs) for c in pod["spec"]["containers"] for e in c.get("env") or []]
    (expected,) = [json.loads(e["value"]) for e in envs if e["name"] == "EXPECTED_MODELS"]
    assert {"m1/served-name", "m2/m2"} <= set(expected) and "m1/m1" not in expected, expected


# --- tlsVerify on remote::openai ------------------------------------------------------------------


@pytest.mark.parametrize(("verify", "expected"), [(False, False), ("/etc/pki/maas/ca.pem", "/etc/pki/maas/ca.pem")])
def test_tls_verify_reaches_openai_provider(helm: HelmBinary, renderer: Renderer, verify: Any, expected: Any) -> None:
    """remote::openai takes the same network.tls.verify as remote::vllm (RemoteInferenceProviderConfig)."""
    docs = render_ok(renderer, helm, "llama-stack", values=model(provider="openai", tlsVerify=verify))
    _, config = run_config(docs)
    provider = next(p for p in config["providers"]["inference"] if p["provider_id"] == "m1")
    assert provider["provider_type"] == "remote::openai"
    assert ((provider["config"].get("network") or {}).get("tls") or {}).get("verify") == expected, provider


def test_openai_provider_without_tls_verify_keeps_the_default(helm: HelmBinary, renderer: Renderer) -> None:
    docs = render_ok(renderer, helm, "llama-stack", values=model(provider="openai"))
    _, config = run_config(docs)
    provider = next(p for p in config["providers"]["inference"] if p["provider_id"] == "m1")
    assert "network" not in provider["config"], provider


# --- chunking --------------------------------------------------------------------------------------


@pytest.mark.parametrize("chart", ("llama-stack", "rag"))
def test_chunking_is_published_where_clients_read_it(helm: HelmBinary, renderer: Renderer, chart: str) -> None:
    """GET /v1/providers shows the file processor's config: the chunking clients pass explicitly."""
    values = vector_store(chunkSizeTokens=300, chunkOverlapTokens=60)
    docs = render_ok(renderer, helm, chart, values=umbrella(values) if chart == "rag" else values)
    _, config = run_config(docs)
    processors = config["providers"]["file_processors"]
    assert processors and all(p.get("config") for p in processors), processors
    for p in processors:
        assert p["config"]["default_chunk_size_tokens"] == 300, p
        assert p["config"]["default_chunk_overlap_tokens"] == 60, p
    ingestion = config["vector_stores"]["file_ingestion_params"]
    assert (ingestion["default_chunk_size_tokens"], ingestion["default_chunk_overlap_tokens"]) == (300, 60)


def test_notes_show_the_chunking_to_pass(helm: HelmBinary, renderer: Renderer) -> None:
    values = vector_store(chunkSizeTokens=300, chunkOverlapTokens=60)
    notes, result = renderer.notes(helm, "llama-stack", values)
    assert result.ok, result.describe()
    assert '"max_chunk_size_tokens": 300, "chunk_overlap_tokens": 60' in notes, notes


# --- pgvector password ----------------------------------------------------------------------------


def _pgvector_secret_refs(docs: list[Obj]) -> set[tuple[str, str]]:
    refs = set()
    for c in containers(docs):
        for name in ("POSTGRES_PASSWORD", "PGVECTOR_PASSWORD"):
            source = ((c.env().get(name) or {}).get("valueFrom") or {}).get("secretKeyRef")
            if source:
                refs.add((source["name"], source["key"]))
    return refs


def test_existing_secret_renders_stable_and_wired(helm: HelmBinary, renderer: Renderer) -> None:
    # GitOps renders without a cluster: every generated password needs its existing Secret
    # (pgvector's here, the gateway's Redis password and key hashing secret below).
    values = {
        **next(r for r in REFUSALS if r.id == "pgvector-existing-secret-not-wired").good,
        "maas-gateway": {
            "redis": {"auth": {"existingSecret": "redis-credentials"}},
            "apiKeys": {"hmac": {"existingSecret": "api-key-hashing"}},
        },
    }
    first = render_ok(renderer, helm, "rag", values=values)
    assert not [ref(s) for s in of_kind(first, "Secret") if "pgvector" in s["metadata"]["name"]], (
        "existingSecret set, but the chart still renders a pgvector Secret"
    )
    assert _pgvector_secret_refs(first) == {("pg-credentials", "pw")}, _pgvector_secret_refs(first)
    again = renderer.workspace(helm).run(
        "template", RELEASE, str(renderer.workspace(helm).chart("rag")), "--namespace", NAMESPACE,
        "--kube-version", KUBE_VERSION, "-f", str(renderer.values_file(values)),
    )  # fmt: skip
    assert again.ok, again.describe()
    assert again.docs() == first, "two renders with existingSecret differ: a GitOps sync would change objects"


@pytest.mark.parametrize(("auth", "hint"), [({}, True), ({"existingSecret": "pg-credentials"}, False)])
def test_notes_point_gitops_users_to_existing_secret(
    helm: HelmBinary, renderer: Renderer, auth: dict[str, str], hint: bool
) -> None:
    values = {"pgvector": {"auth": auth}, "llama-stack": {"enabled": False}}
    notes, result = renderer.notes(helm, "rag", values)
    assert result.ok, result.describe()
    assert ("pgvector.auth.existingSecret" in notes) == hint, notes


def test_generated_secret_outlives_uninstall(helm: HelmBinary, renderer: Renderer) -> None:
    docs = render_ok(renderer, helm, "rag")
    secret = next(s for s in of_kind(docs, "Secret") if s["metadata"]["name"] == f"{RELEASE}-pgvector")
    annotations = secret["metadata"].get("annotations") or {}
    assert annotations.get("helm.sh/resource-policy") == "keep", "the PVC outlives uninstall; the password must too"


@pytest.mark.parametrize(("values", "ok"), [({}, False), ({"pgvector": {"auth": {"password": "ci-known-pw"}}}, True)])
def test_upgrade_without_the_secret_refuses_a_new_password(
    helm: HelmBinary, renderer: Renderer, values: dict[str, Any], ok: bool
) -> None:
    """`helm template --is-upgrade` sees no cluster, like an upgrade whose Secret is gone."""
    ws = renderer.workspace(helm)
    result = ws.run(
        "template", RELEASE, str(ws.chart("rag")), "--namespace", NAMESPACE, "--kube-version", KUBE_VERSION,
        "--is-upgrade", "-f", str(renderer.values_file(values)),
    )  # fmt: skip
    if ok:
        assert result.ok, f"an upgrade with pgvector.auth.password must render:\n{result.describe()}"
        return
    assert not result.ok, "an upgrade that cannot read the password back generated a new one"
    assert "pgvector.auth.existingSecret" in result.stderr and "ERROR:" in result.stderr, result.stderr


# --- pgvector PVC size ----------------------------------------------------------------------------

_CLAIM_PROBE = """\
{{- $live := dict "spec" (dict "volumeClaimTemplates" (list (dict "metadata" (dict "name" "data")
      "spec" (dict "resources" (dict "requests" (dict "storage" "@LIVE@")))))) }}
{{- include "rag.checkClaimSize" (dict "context" . "live" $live) }}
"""


def _render_with_live_claim(helm: HelmBinary, tmp_path: Path, live_size: str, size: str) -> Result:
    """The size check with a StatefulSet as `lookup` would return it (helm template has no cluster)."""
    ws = Workspace(helm, tmp_path, isolated_env(tmp_path / "home"))
    shutil.copytree(CHARTS_DIR, tmp_path / "charts", symlinks=True)
    (ws.chart("rag") / "templates" / "zz-ci-claim-probe.yaml").write_text(_CLAIM_PROBE.replace("@LIVE@", live_size))
    values = tmp_path / "values.yaml"
    values.write_text(yaml.safe_dump({"pgvector": {"persistence": {"size": size}}}))
    return ws.run("template", RELEASE, str(ws.chart("rag")), "--kube-version", KUBE_VERSION, "-f", str(values))


@pytest.mark.parametrize(("size", "ok"), [("5Gi", False), ("2Gi", True)])
def test_pvc_size_change_is_refused_with_the_way_out(helm: HelmBinary, tmp_path: Path, size: str, ok: bool) -> None:
    result = _render_with_live_claim(helm, tmp_path, "2Gi", size)
    if ok:
        assert result.ok, f"the live size must render:\n{result.describe()}"
        return
    assert not result.ok, "a different pgvector.persistence.size rendered against a live 2Gi StatefulSet"
    for needle in ("pgvector.persistence.size", "ERROR:", "--cascade=orphan", "patch pvc data-ci-pgvector-0"):
        assert needle in result.stderr, f"{needle!r} missing from:\n{result.stderr}"


def test_statefulset_runs_the_size_check_against_the_live_object() -> None:
    """The probe above tests the helper; the StatefulSet must feed it what lookup returns."""
    text = (CHARTS_DIR / "rag" / "templates" / "pgvector-statefulset.yaml").read_text()
    assert re.search(r'include "rag.checkClaimSize" \(dict "context" \. "live" \(lookup "apps/v1" "StatefulSet"', text)


# --- helm test pods -------------------------------------------------------------------------------

TEST_IMAGE = "gcr.io/distroless/python3-debian13:nonroot"


def _test_pods(docs: list[Obj]) -> list[Obj]:
    return [
        d
        for d in of_kind(docs, "Pod")
        if ((d["metadata"].get("annotations") or {}).get("helm.sh/hook") or "").split(",").count("test")
    ]


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_helm_test_pods_use_the_maintained_image(helm: HelmBinary, renderer: Renderer, case: Any) -> None:
    for pod in _test_pods(render_case(renderer, helm, case)):
        images = [c["image"] for c in pod["spec"]["containers"]]
        assert images == [TEST_IMAGE] * len(images), f"{ref(pod)}: {images}"


@pytest.mark.parametrize(
    ("gateway", "expected"),
    [
        ({"mode": "standalone"}, f"http://{RELEASE}-maas-gateway:8080"),
        ({"mode": "kuadrant"}, ""),
        ({"mode": "kuadrant", "kuadrant": {"hostnames": ["maas.example.test"]}}, "http://maas.example.test"),
    ],
    ids=["standalone", "kuadrant", "kuadrant-hostname"],
)
def test_umbrella_helm_test_calls_a_gateway_that_is_rendered(
    helm: HelmBinary, renderer: Renderer, gateway: dict[str, Any], expected: str
) -> None:
    values = {"maas-gateway": gateway, "llama-stack": {"auth": {"endpoint": KEYS_ELSEWHERE}}}
    docs = render_ok(renderer, helm, "rag", values=values)
    services = {s["metadata"]["name"] for s in of_kind(docs, "Service")}
    for pod in _test_pods(docs):
        text = json.dumps(pod)
        if f"{RELEASE}-maas-gateway:" in text:
            assert f"{RELEASE}-maas-gateway" in services, f"{ref(pod)} calls the gateway Service, not rendered"
        url = {e["name"]: e.get("value") for c in pod["spec"]["containers"] for e in c.get("env") or []}
        if "GATEWAY_URL" in url:
            assert url["GATEWAY_URL"] == expected, f"{ref(pod)}: GATEWAY_URL {url['GATEWAY_URL']!r}"


# --- embeddings: the same pooling and prefix on every target --------------------------------------


def test_tei_pooling_and_prompt_come_from_values(helm: HelmBinary, renderer: Renderer) -> None:
    docs = render_ok(renderer, helm, "rag", values={"embeddings": {"pooling": "mean", "prompt": "passage: "}})
    tei = next(c for c in containers(docs) if "text-embeddings-inference" in c.spec["image"])
    assert "--pooling=mean" in tei.argv, tei.argv
    assert "--default-prompt=passage: " in tei.argv, tei.argv


def test_run_config_matches_published_chunking_defaults(helm: HelmBinary, renderer: Renderer) -> None:
    """The defaults fit multilingual-e5-small: 400 x 1.25 + 8 <= 512."""
    docs = render_ok(renderer, helm, "rag")
    cm, _ = run_config(docs)
    config = yaml.safe_load(config_map_files(cm)["config.yaml"])
    chunking = config["providers"]["file_processors"][0]["config"]
    assert chunking["default_chunk_size_tokens"] * 1.25 + 8 <= 512, chunking
