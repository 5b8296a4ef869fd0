"""Acceptance 3: the global.models contract. Two enabled models (inline apiToken, apiTokenSecretRef)
become providers and registered models; the disabled one renders nothing; the inline token lives
only in a Secret and reaches llama-stack as ${env.VAR} (never in a ConfigMap, a literal env value,
command/args or NOTES)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import yaml

from charts.cases import INLINE_TOKEN, MODELS, MODELS_VALUES, render_ok
from charts.helm import HelmBinary, Renderer
from charts.manifests import Container, Obj, config_map_files, containers, of_kind, pod_spec, ref, secret_values

pytestmark = pytest.mark.charts

MODEL_CHARTS = ("llama-stack", "rag")
ENV_REF = re.compile(r"^\$\{env\.([A-Za-z_][A-Za-z0-9_]*)(?::[=+][^}]*)?\}$")
ENABLED = {k: v for k, v in MODELS.items() if v["enabled"]}
DISABLED = {k: v for k, v in MODELS.items() if not v["enabled"]}


def run_config(docs: list[Obj]) -> tuple[Obj, dict[str, Any]]:
    """The llama-stack run config: the ConfigMap whose config.yaml has inference providers."""
    for cm in of_kind(docs, "ConfigMap"):
        text = config_map_files(cm).get("config.yaml")
        if text and "inference" in ((yaml.safe_load(text) or {}).get("providers") or {}):
            return cm, yaml.safe_load(text)
    pytest.fail("no ConfigMap with a llama-stack config.yaml (providers.inference) was rendered", pytrace=False)
    raise AssertionError


def llama_stack_container(docs: list[Obj], cm: Obj) -> Container:
    """The container that mounts the run config ConfigMap."""
    name = cm["metadata"]["name"]
    for c in containers(docs):
        if c.section == "containers" and name in json.dumps(_pod_volumes_for(docs, c.owner)):
            return c
    pytest.fail(f"no container mounts ConfigMap {name}", pytrace=False)
    raise AssertionError


def _pod_volumes_for(docs: list[Obj], owner: str) -> list[Obj]:
    for d in docs:
        if ref(d) == owner:
            return (pod_spec(d) or {}).get("volumes") or []
    return []


@pytest.fixture(params=MODEL_CHARTS)
def chart(request: pytest.FixtureRequest) -> str:
    """llama-stack reads global.models; rag owns it and passes it down."""
    return str(request.param)


def render_models(renderer: Renderer, helm: HelmBinary, chart: str) -> list[Obj]:
    return render_ok(renderer, helm, chart, values=MODELS_VALUES)


def test_enabled_models_are_providers(helm: HelmBinary, renderer: Renderer, chart: str) -> None:
    rendered = render_models(renderer, helm, chart)
    _, config = run_config(rendered)
    providers = {p["provider_id"]: p for p in config["providers"]["inference"]}
    for key, model in ENABLED.items():
        assert key in providers, f"no inference provider {key!r}; providers: {sorted(providers)}"
        expected = f"remote::{model.get('provider', 'vllm')}"
        assert providers[key]["provider_type"] == expected
        assert providers[key]["config"]["base_url"] == model["url"]


def test_enabled_models_are_registered(helm: HelmBinary, renderer: Renderer, chart: str) -> None:
    rendered = render_models(renderer, helm, chart)
    _, config = run_config(rendered)
    registered = (config.get("registered_resources") or {}).get("models") or []
    for key, model in ENABLED.items():
        matches = [m for m in registered if m.get("provider_id") == key]
        assert matches, f"no registered_resources.models entry for provider {key!r}: {registered}"
        assert model["id"] in (matches[0].get("provider_model_id"), matches[0].get("model_id"))
        assert matches[0].get("model_type", "llm") == "llm"


def test_optional_fields_reach_the_provider(helm: HelmBinary, renderer: Renderer, chart: str) -> None:
    rendered = render_models(renderer, helm, chart)
    """maxTokens and tlsVerify of the vllm model land in remote::vllm's config."""
    _, config = run_config(rendered)
    primary = next(p for p in config["providers"]["inference"] if p["provider_id"] == "primary")["config"]
    assert primary.get("max_tokens") == MODELS["primary"]["maxTokens"], primary
    assert ((primary.get("network") or {}).get("tls") or {}).get("verify") is False, primary


def test_disabled_model_renders_nothing(helm: HelmBinary, renderer: Renderer, chart: str) -> None:
    rendered = render_models(renderer, helm, chart)
    cm, config = run_config(rendered)
    text = config_map_files(cm)["config.yaml"]
    everything = json.dumps(rendered) + "".join(v for s in of_kind(rendered, "Secret") for v in secret_values(s))
    for key, model in DISABLED.items():
        ids = [p["provider_id"] for p in config["providers"]["inference"]]
        assert key not in ids, f"disabled model {key!r} is a provider"
        for needle in (model["id"], model["url"], model["apiToken"]):
            assert needle not in text, f"disabled model's {needle!r} in the run config"
            assert needle not in everything, f"disabled model's {needle!r} rendered somewhere"


def test_inline_token_only_in_a_secret(helm: HelmBinary, renderer: Renderer, chart: str) -> None:
    rendered = render_models(renderer, helm, chart)
    secrets = of_kind(rendered, "Secret")
    assert any(INLINE_TOKEN in v for s in secrets for v in secret_values(s)), "the inline token is in no Secret"
    leaks = [ref(d) for d in rendered if d.get("kind") != "Secret" and INLINE_TOKEN in json.dumps(d)]
    assert not leaks, f"inline token appears outside Secrets in: {leaks}"
    for cm in of_kind(rendered, "ConfigMap"):
        assert all(INLINE_TOKEN not in v for v in config_map_files(cm).values()), ref(cm)
    for c in containers(rendered):
        assert INLINE_TOKEN not in " ".join(c.argv), f"{c.where}: token in command/args"
        literal = [e["name"] for e in c.env().values() if INLINE_TOKEN in str(e.get("value", ""))]
        assert not literal, f"{c.where}: token in literal env {literal}"


def _env_var(provider: Obj, field: str) -> str:
    value = str(provider["config"].get(field, ""))
    match = ENV_REF.match(value)
    assert match, f"{provider['provider_id']}.config.{field} is {value!r}, not a ${{env.VAR}} reference"
    return match.group(1)


def test_tokens_reach_llama_stack_through_secrets(helm: HelmBinary, renderer: Renderer, chart: str) -> None:
    rendered = render_models(renderer, helm, chart)
    cm, config = run_config(rendered)
    providers = {p["provider_id"]: p for p in config["providers"]["inference"]}
    env = llama_stack_container(rendered, cm).env()
    secrets = {s["metadata"]["name"]: s for s in of_kind(rendered, "Secret")}

    inline_var = _env_var(providers["primary"], "api_token")
    ref_ = ((env.get(inline_var) or {}).get("valueFrom") or {}).get("secretKeyRef")
    assert ref_, f"env {inline_var} is not from a secretKeyRef: {env.get(inline_var)}"
    secret = secrets.get(ref_["name"])
    assert secret, f"env {inline_var} references Secret {ref_['name']}, which the chart does not render"
    assert ref_["key"] in {**(secret.get("data") or {}), **(secret.get("stringData") or {})}

    external_var = _env_var(providers["secondary"], "api_key")
    ref_ = ((env.get(external_var) or {}).get("valueFrom") or {}).get("secretKeyRef") or {}
    wanted = MODELS["secondary"]["apiTokenSecretRef"]
    assert (ref_.get("name"), ref_.get("key")) == (wanted["name"], wanted["key"]), env.get(external_var)


def test_notes_never_show_the_token(helm: HelmBinary, renderer: Renderer, chart: str) -> None:
    notes, result = renderer.notes(helm, chart, MODELS_VALUES)
    assert result.ok, result.describe()
    assert notes.strip(), f"{chart} renders empty NOTES"
    assert INLINE_TOKEN not in notes


def test_notes_method_matches_helm_install(helm4: HelmBinary, renderer: Renderer, chart: str) -> None:
    """The NOTES probe used for both helms prints what `helm install --dry-run=client` prints (Helm 4)."""
    probed, result = renderer.notes(helm4, chart, MODELS_VALUES)
    assert result.ok, result.describe()
    installed, result = renderer.install_dry_run_notes(helm4, chart, MODELS_VALUES)
    assert result.ok, result.describe()
    assert probed.strip() == installed.strip()
    assert INLINE_TOKEN not in installed
