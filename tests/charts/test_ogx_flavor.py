"""One chart, two servers (`server.flavor`): llama-stack 0.7.3 by default, rendered as it always was,
or OGX 1.5 with its own image, command, `OGX_*` environment, service links off and run config; OGX
serves HTTPS unless `server.insecure` says otherwise, and a setting the chosen flavor would ignore
fails the render, naming it."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from harness.paths import OGX_VENV_DIR

from charts.cases import MODELS_VALUES, assert_render_check_refuses, render_ok
from charts.helm import HelmBinary, Renderer
from charts.manifests import Obj, config_map_files, of_kind
from charts.test_models_contract import run_config

pytestmark = pytest.mark.charts

TLS = {"enabled": True, "existingSecret": "ogx-cert"}
OGX: dict[str, Any] = {"server": {"flavor": "ogx"}, "tls": TLS}
OGX_MODELS: dict[str, Any] = OGX | MODELS_VALUES
# Keys OGX 1.5 dropped from llama-stack 0.7.3's run config; it ignores them silently.
GONE_IN_OGX = {
    "server": ("cors", "quota"),
    "registered_resources": ("shields", "datasets", "scoring_fns", "benchmarks"),
}


def deployment(docs: list[Obj]) -> Obj:
    (found,) = of_kind(docs, "Deployment")
    return found


def server_container(docs: list[Obj]) -> Obj:
    (found,) = [c for c in deployment(docs)["spec"]["template"]["spec"]["containers"] if c["name"] == "llama-stack"]
    return found


def without_ids(docs: list[Obj]) -> list[Obj]:
    return sorted(docs, key=lambda d: (d["kind"], d["metadata"]["name"]))


def test_the_default_flavor_is_llama_stack_rendered_as_before(helm: HelmBinary, renderer: Renderer) -> None:
    """Unset, the flavor changes nothing: the same objects as `server.flavor: llama-stack`, and those
    carry llama-stack 0.7.3's image, launcher, environment, init containers and run config."""
    for chart, prefix in (("llama-stack", {}), ("rag", None)):
        explicit: dict[str, Any] = {"server": {"flavor": "llama-stack"}}
        unset = render_ok(renderer, helm, chart, values=MODELS_VALUES)
        chosen = render_ok(
            renderer,
            helm,
            chart,
            values=MODELS_VALUES | (explicit if prefix is not None else {"llama-stack": explicit}),
        )
        # The rag chart generates random passwords on each render: compare llama-stack's objects there.
        ours = [d for d in unset if "llama-stack" in d["metadata"]["name"]]
        assert ours and without_ids(ours) == without_ids(
            [d for d in chosen if "llama-stack" in d["metadata"]["name"]]
        ), f"{chart}: setting server.flavor=llama-stack changed the rendered llama-stack objects"
    docs = render_ok(renderer, helm, "llama-stack", values=MODELS_VALUES)
    main = server_container(docs)
    assert main["image"] == "llamastack/distribution-starter:0.7.3"
    assert main["command"][:3] == ["python", "/etc/llama-stack/serve.py", "/etc/llama-stack/config.yaml"]
    env = {e["name"] for e in main["env"]}
    assert {"LLAMA_STACK_DATA", "LLAMA_STACK_LOGGING", "LLAMA_STACK_LOG_FORMAT"} <= env
    assert not [n for n in env if n.startswith("OGX_")], env
    pod = deployment(docs)["spec"]["template"]["spec"]
    assert [c["name"] for c in pod["initContainers"]] == ["create-tables", "prune-registry"]
    assert "enableServiceLinks" not in pod
    cm, config = run_config(docs)
    assert set(config_map_files(cm)) == {"create-tables.py", "prune-registry.py", "serve.py", "config.yaml"}
    assert "agent_state" in config["providers"]["responses"][0]["config"]["persistence"]
    assert config["providers"]["file_processors"][0]["provider_type"] == "inline::pypdf"
    assert deployment(docs)["metadata"]["labels"]["app.kubernetes.io/version"] == "0.7.3"


def test_ogx_flavor_renders_the_ogx_server(helm: HelmBinary, renderer: Renderer) -> None:
    docs = render_ok(renderer, helm, "llama-stack", values=OGX_MODELS)
    main = server_container(docs)
    assert main["image"] == "ogxai/distribution-starter:1.5.0"
    assert deployment(docs)["metadata"]["labels"]["app.kubernetes.io/version"] == "1.5.0"
    # `ogx run <config>`, through the launcher that installs serve.py's log masking.
    assert main["command"] == ["python", "/etc/ogx/serve-ogx.py", "/etc/ogx/config.yaml", "--port", "8321"]
    assert {"name": "config", "mountPath": "/etc/ogx", "readOnly": True} in main["volumeMounts"]
    env = {e["name"]: e.get("value") for e in main["env"]}
    assert {k: env.get(k) for k in ("OGX_DATA", "OGX_CONFIG_DIR", "OGX_LOGGING", "OGX_LOG_FORMAT", "HOME")} == {
        "OGX_DATA": "/data",
        "OGX_CONFIG_DIR": "/data/.ogx",
        "OGX_LOGGING": "all=info",
        "OGX_LOG_FORMAT": "json",
        "HOME": "/data",
    }
    assert not [n for n in env if n.startswith("LLAMA_STACK_")], f"OGX reads no LLAMA_STACK_* variable: {env}"
    pod = deployment(docs)["spec"]["template"]["spec"]
    assert pod["enableServiceLinks"] is False, "a Service named ogx would set OGX_PORT to tcp://... and stop OGX"
    assert "initContainers" not in pod, "the init steps import llama-stack 0.7.3's modules"
    cm, config = run_config(docs)
    files = config_map_files(cm)
    assert set(files) == {"serve.py", "serve-ogx.py", "config.yaml"}
    assert "from ogx.cli.ogx import main" in files["serve-ogx.py"]
    assert '"ogx", "run"' in files["serve-ogx.py"]
    text = files["config.yaml"]
    assert "LLAMA_STACK" not in text and "${env.OGX_DATA}/kvstore.db" in text
    for section, keys in GONE_IN_OGX.items():
        assert not [k for k in keys if k in config[section]], f"{section} carries keys OGX 1.5 ignores"
    assert "agent_state" not in config["providers"]["responses"][0]["config"]["persistence"]
    (processor,) = config["providers"]["file_processors"]
    assert processor["provider_type"] == "inline::auto"
    assert processor["config"] == {"default_chunk_size_tokens": 400, "default_chunk_overlap_tokens": 100}
    stores = config["storage"]["stores"]
    assert stores["prompts"] == {"table_name": "prompts", "backend": "sql_default"}
    assert stores["connectors"] == {"table_name": "connectors", "backend": "sql_default"}
    assert config["providers"]["vector_io"][0]["config"]["db"] == "llamastack", "OGX's default db is not ours"
    assert config["server"]["tls_certfile"] == "/var/run/kserve/tls/tls.crt"
    assert "insecure" not in config["server"]
    # OGX lists <provider_id>/<model_id>: model_id is the served name, as llama-stack lists it.
    models = {(m["provider_id"], m["model_id"]) for m in config["registered_resources"]["models"]}
    assert {("primary", "qwen3-0.6b"), ("secondary", "granite-3-8b")} <= models
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert main[probe]["httpGet"]["scheme"] == "HTTPS"
    (test_pod,) = of_kind(docs, "Pod")
    assert '"X-OGX-Provider-Data"' in test_pod["spec"]["containers"][0]["args"][0]


def test_an_external_model_keeps_its_listed_id_under_ogx(helm: HelmBinary, renderer: Renderer) -> None:
    entry = {"id": "pub", "upstreamModel": "up-name", "external": True, "url": "https://maas.example.test/v1"}
    values = {"global": {"models": {"ext": entry}}}
    (model,) = [
        m
        for m in run_config(render_ok(renderer, helm, "llama-stack", values=OGX | values))[1]["registered_resources"][
            "models"
        ]
        if m["provider_id"] == "ext"
    ]
    assert (model["model_id"], model["provider_model_id"], model["metadata"]) == (
        "up-name",
        "up-name",
        {"publicId": "pub"},
    )


def test_insecure_ogx_serves_plain_http_and_notes_warn(helm: HelmBinary, renderer: Renderer) -> None:
    values = {"server": {"flavor": "ogx", "insecure": True}}
    docs = render_ok(renderer, helm, "llama-stack", values=values)
    server = run_config(docs)[1]["server"]
    assert server["insecure"] is True and "tls_certfile" not in server
    assert server_container(docs)["readinessProbe"]["httpGet"]["scheme"] == "HTTP"
    notes, result = renderer.notes(helm, "llama-stack", values)
    assert result.ok, result.describe()
    assert "WARNING: server.insecure=true" in notes and "cleartext" in notes, notes
    secure, result = renderer.notes(helm, "llama-stack", OGX)
    assert result.ok, result.describe()
    assert "WARNING" not in secure and secure.startswith("OGX 1.5.0"), secure


# (case id, bad values, corrected values, the field the error names, what it says to do)
REFUSALS = [
    ("ogx-without-tls", {"server": {"flavor": "ogx"}}, OGX, "tls.enabled", "server.insecure=true"),
    (
        "insecure-with-llama-stack",
        {"server": {"insecure": True}},
        {"server": {"flavor": "ogx", "insecure": True}},
        "server.insecure",
        "set server.flavor=ogx",
    ),
    (
        "insecure-with-tls",
        {"server": {"flavor": "ogx", "insecure": True}, "tls": TLS},
        OGX,
        "server.insecure",
        "Remove server.insecure",
    ),
    (
        "ogx-image-for-llama-stack",
        {"image": {"repository": "ogxai/distribution-starter", "tag": "1.5.0"}},
        {"image": {"repository": "ogxai/distribution-starter", "tag": "1.5.0"}} | OGX,
        "image.repository",
        "Set server.flavor=ogx",
    ),
    (
        "llama-stack-image-for-ogx",
        OGX | {"image": {"repository": "llamastack/distribution-starter"}},
        OGX | {"image": {"repository": "registry.example.test/ogxai/distribution-starter"}},
        "image.repository",
        "Leave image.repository empty",
    ),
    (
        "ogx-logging-separator",
        OGX | {"logging": "server=debug;core=info"},
        OGX | {"logging": "server=debug,core=info"},
        "logging",
        '"server=debug,core=info"',
    ),
    ("ogx-low-port", OGX | {"port": 80}, OGX | {"port": 8080}, "port", "1024..65535"),
]


@pytest.mark.parametrize(("bad", "good", "field", "hint"), [r[1:] for r in REFUSALS], ids=[r[0] for r in REFUSALS])
def test_a_setting_the_flavor_would_ignore_fails_naming_it(
    helm: HelmBinary, renderer: Renderer, bad: dict[str, Any], good: dict[str, Any], field: str, hint: str
) -> None:
    assert_render_check_refuses(renderer, helm, "llama-stack", bad, good, field, hint)


def test_an_unknown_flavor_is_refused_by_the_schema(helm: HelmBinary, renderer: Renderer) -> None:
    refused = renderer.template(helm, "llama-stack", values={"server": {"flavor": "ogx2"}})
    assert not refused.ok and "flavor" in refused.stderr, refused.stderr


def test_rag_refuses_ogx_behind_the_gateways_key_check(helm: HelmBinary, renderer: Renderer) -> None:
    """The gateway reads and forwards X-LlamaStack-Provider-Data; OGX callers send X-OGX-Provider-Data."""
    ogx = {"server": {"flavor": "ogx", "insecure": True}}
    assert_render_check_refuses(
        renderer,
        helm,
        "rag",
        {"llama-stack": ogx},
        {"llama-stack": ogx | {"auth": {"enabled": False}}},
        "llama-stack.auth.endpoint",
        "llama-stack.auth.enabled=false",
    )
    behind = {"maas-gateway": {"llamaStack": {"enabled": True}}}
    assert_render_check_refuses(
        renderer,
        helm,
        "rag",
        behind | {"llama-stack": ogx | {"auth": {"enabled": False}}},
        {"llama-stack": ogx | {"auth": {"enabled": False}}},
        "maas-gateway.llamaStack.enabled",
        "server.flavor=llama-stack",
    )


def _ogx_bin() -> Path | None:
    """The `ogx` CLI of an OGX 1.5 install: $OGX_BIN, the bootstrap's (.cache/ogx-venv), or `ogx` on PATH."""
    bootstrapped = OGX_VENV_DIR / "bin" / "ogx"
    found = os.environ.get("OGX_BIN") or (str(bootstrapped) if bootstrapped.is_file() else shutil.which("ogx"))
    return Path(found) if found else None


# Runs in OGX's own interpreter: every key of the rendered config must be one OGX reads (it ignores
# unknown keys silently), checked against the pydantic models of the stack, server and each provider.
_KNOWN_KEYS = """
import sys, yaml
from ogx.core.configure import parse_and_maybe_upgrade_config
from ogx.core.datatypes import RegisteredResources, ServerConfig, StackConfig
from ogx.core.distribution import get_provider_registry
from ogx.core.utils.dynamic import instantiate_class_type
from ogx_api import Api

def names(model):
    return {n for n, f in model.model_fields.items()} | {f.alias for f in model.model_fields.values() if f.alias}

raw = yaml.safe_load(open(sys.argv[1]))
config = parse_and_maybe_upgrade_config(yaml.safe_load(open(sys.argv[1])))
unknown = [f"{k}" for k in raw if k not in names(StackConfig)]
unknown += [f"server.{k}" for k in raw.get("server", {}) if k not in names(ServerConfig)]
resources = raw.get("registered_resources", {})
unknown += [f"registered_resources.{k}" for k in resources if k not in names(RegisteredResources)]
registry = get_provider_registry()
for api, providers in config.providers.items():
    for p in providers:
        cls = instantiate_class_type(registry[Api(api)][p.provider_type].config_class)
        cls.model_validate(p.config)
        unknown += [f"providers.{api}[{p.provider_id}].config.{k}" for k in p.config if k not in names(cls)]
print("\\n".join(unknown))
sys.exit(1 if unknown else 0)
"""


def test_the_rendered_ogx_config_passes_ogx_dry_run(helm: HelmBinary, renderer: Renderer, tmp_path: Path) -> None:
    ogx = _ogx_bin()
    if ogx is None:
        pytest.skip("no OGX 1.5 install: run `make bootstrap` (it installs .cache/ogx-venv), or set OGX_BIN")
    for name, values in (("tls", OGX_MODELS), ("insecure", {"server": {"flavor": "ogx", "insecure": True}})):
        cm, _ = run_config(render_ok(renderer, helm, "llama-stack", values=values))
        path = tmp_path / f"{name}.yaml"
        path.write_text(config_map_files(cm)["config.yaml"])
        env = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": str(tmp_path / "home"),
            "OGX_DATA": str(tmp_path / "data"),
            "OGX_CONFIG_DIR": str(tmp_path / "data" / ".ogx"),
            "PGVECTOR_PASSWORD": "ci-placeholder",
        }
        env |= {
            e["name"]: "ci-placeholder"
            for e in server_container(render_ok(renderer, helm, "llama-stack", values=values))["env"]
            if "valueFrom" in e
        }
        dry = subprocess.run(
            [str(ogx), "run", "--dry-run", str(path)], env=env, capture_output=True, text=True, timeout=300
        )
        assert dry.returncode == 0, f"ogx run --dry-run refused the {name} config:\n{dry.stderr[-3000:]}"
        python = ogx.parent / "python"
        keys = subprocess.run(
            [str(python), "-c", _KNOWN_KEYS, str(path)], env=env, capture_output=True, text=True, timeout=300
        )
        assert keys.returncode == 0, f"the {name} config has keys OGX would ignore:\n{keys.stdout}{keys.stderr[-3000:]}"
