"""MaaS faults and discovery, against the MaaS under test (the real endpoint, or the stand-in
MaaS with MAAS_ENDPOINT=standin): every fault gets an error that names the endpoint and the
cause, the key never appears in any output, `--discover` registers every listed model and
MAAS_MODEL picks one, and a MaaS behind a private CA works with a CA bundle or with
verification off, and fails clearly with neither."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace
from typing import Any

import pytest
from harness import http
from harness import maas as maas_api
from harness import registration as reg
from harness.loopback import free_port
from harness.maas import MaasError, MaasSettings
from harness.paths import REPO_ROOT

pytestmark = [pytest.mark.e2e, pytest.mark.maas]

CLI_TIMEOUT_S = 300  # `register --discover` restarts llama-stack (about 20 s here) and waits for it


@pytest.fixture(scope="session")
def configured(maas: MaasSettings) -> MaasSettings:
    if not maas.configured:
        pytest.skip("no MaaS: set MAAS_ENDPOINT and MAAS_API_KEY, or MAAS_ENDPOINT=standin")
    return maas


@pytest.fixture(scope="session")
def standin(harness_state, configured: MaasSettings) -> Any:
    if harness_state.standin is None:
        pytest.skip("needs the stand-in MaaS (MAAS_ENDPOINT=standin): its CA is generated here")
    return harness_state.standin


def harness_cli(harness_state, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`python -m harness ARGS` for this session's target, with only `env` as MaaS settings."""
    target = ["--target", harness_state.target_name, "--run-name", harness_state.options.run_name]
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MAAS_")}
    return subprocess.run(
        [sys.executable, "-m", "harness", *args, *target],
        cwd=REPO_ROOT, env={**clean, **env}, capture_output=True, text=True, timeout=CLI_TIMEOUT_S,
    )  # fmt: skip


def maas_env(settings: MaasSettings) -> dict[str, str]:
    env = {"MAAS_ENDPOINT": settings.endpoint, "MAAS_API_KEY": settings.api_key}
    if isinstance(settings.tls_verify, str):
        env["MAAS_CA_BUNDLE"] = settings.tls_verify
    elif settings.tls_verify is False:
        env["MAAS_TLS_VERIFY"] = "false"
    return env


def test_a_bad_key_names_the_endpoint_and_its_401(configured: MaasSettings, harness_state, secrets) -> None:
    bad = "sk-not-a-valid-key-" + "7" * 20
    with pytest.raises(MaasError) as caught:
        reg.discover_models(configured.endpoint, bad, verify=configured.tls_verify)
    message = str(caught.value)
    assert reg.v1_url(configured.endpoint) in message and "401" in message, message
    assert bad not in message and configured.api_key not in message
    done = harness_cli(harness_state, "register", "--discover", env=maas_env(replace(configured, api_key=bad)))
    output = done.stdout + done.stderr
    assert done.returncode == 1 and "401" in output and reg.v1_url(configured.endpoint) in output, output
    assert not [s for s in (*secrets, bad) if s in output], "a key appeared in the CLI output"


def test_an_unreachable_endpoint_is_named_with_its_error(configured: MaasSettings) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(MaasError, match=rf"MaaS endpoint {closed}/v1/models unreachable: ConnectError"):
        reg.discover_models(closed, configured.api_key)


def test_maas_model_picks_one_of_the_listed_models(configured: MaasSettings, registration) -> None:
    if not configured.model:
        pytest.skip("MAAS_MODEL is not set: the session registered every listed model")
    registered = registration.registered + registration.already
    assert registration.ok, registration.render()
    assert [m.split("/", 1)[1] for m in registered] == [configured.model], registration.render()


def test_discover_registers_every_listed_model(
    configured: MaasSettings, harness_state, registration, llama_stack_url: str, target, secrets
) -> None:
    listed = reg.discover_models(configured.endpoint, configured.api_key, verify=configured.tls_verify)
    if len(listed) < 2:
        pytest.skip(f"the MaaS lists {len(listed)} model(s) to this key; discovery of several needs two or more")
    before = set(http.list_models(llama_stack_url))
    done = harness_cli(harness_state, "register", "--discover", env=maas_env(configured))
    target.reconnect("llama-stack")  # that process restarted llama-stack (on a cluster: another pod)
    output = done.stdout + done.stderr
    wanted = {spec.llama_stack_id for spec in reg.declared_specs(listed, configured.endpoint).values()}
    added = sorted(wanted - before)
    try:
        assert done.returncode == 0, output
        assert not [s for s in secrets if s in output], "a key appeared in the CLI output"
        now = set(http.list_models(llama_stack_url))
        assert wanted <= now, f"--discover left out {sorted(wanted - now)}: {output}"
        assert before <= now, f"--discover dropped earlier models {sorted(before - now)}"
    finally:
        # Back to the session's models: later tests expect exactly what the session registered.
        keys = [model.split("/", 1)[0] for model in added]
        cleanup = reg.register(target, llama_stack_url, {}, remove=keys, timeout=120)
        assert cleanup.ok, cleanup.render()


def test_tls_with_the_ca_bundle_or_without_verification_works(standin) -> None:
    settings = standin.settings()
    assert maas_api.get_models(settings.endpoint, settings.api_key, verify=str(standin.ca_bundle))
    assert maas_api.get_models(settings.endpoint, settings.api_key, verify=False)


def test_tls_without_ca_or_opt_out_fails_clearly(standin, harness_state, secrets) -> None:
    settings = standin.settings()
    with pytest.raises(MaasError) as caught:
        maas_api.get_models(settings.endpoint, settings.api_key, verify=True)
    message = str(caught.value)
    assert "failed TLS verification" in message and "MAAS_CA_BUNDLE" in message, message
    assert settings.endpoint in message, message
    done = harness_cli(harness_state, "register", "--discover", env=maas_env(replace(settings, tls_verify=True)))
    output = done.stdout + done.stderr
    assert done.returncode == 1 and "failed TLS verification" in output, output
    assert not [s for s in secrets if s in output], "a key appeared in the CLI output"


def test_llama_stack_reaches_the_maas_with_verification_off(
    standin, target, llama_stack_url: str, openai_llama, chat_model: str
) -> None:
    """The chat tests prove the CA-bundle path through llama-stack; this proves tlsVerify: false."""
    settings = replace(standin.settings(), tls_verify=False)
    spec = reg.declared_specs(
        [settings.model], settings.endpoint, api_token=settings.api_key, tls_verify=False,
        provider=reg.EXTERNAL_PROVIDER,  # an external MaaS: llama-stack calls it with its MaaS key
    )  # fmt: skip
    # A second entry for the session's model: a public id of its own, the served model as upstreamModel.
    spec = {
        f"{key}-noverify": replace(s, key=f"{key}-noverify", id=f"{key}-noverify", upstream_model=s.id)
        for key, s in spec.items()
    }
    report = reg.register(target, llama_stack_url, spec, timeout=120)
    try:
        assert report.ok, report.render()
        model = next(iter(spec.values())).llama_stack_id
        reply = openai_llama.chat.completions.create(
            model=model, messages=[{"role": "user", "content": "Say OK."}], max_tokens=8
        )
        assert (reply.choices[0].message.content or "").strip(), f"{model} answered with empty content"
    finally:
        cleanup = reg.register(target, llama_stack_url, {}, remove=list(spec), timeout=120)
        assert cleanup.ok, cleanup.render()
    assert chat_model in http.list_models(llama_stack_url), "removing the no-verify model removed the session's"
