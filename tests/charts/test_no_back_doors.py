"""No back doors, as rendered: llama-stack authenticates against the gateway's keys and holds no
model key of its own; the gateway's internals (Envoy admin, the rate limit debug port, Redis)
answer only the gateway's own components. The `kube` target can prove reachability on a real
cluster; until then these tests read the rendered policies, bind addresses and arguments."""

from __future__ import annotations

import base64
from typing import Any

import pytest
import yaml

from charts.cases import render_ok
from charts.helm import RELEASE, HelmBinary, Renderer
from charts.layout import overlays
from charts.manifests import Obj, config_map_files, containers, of_kind, pod_spec
from charts.test_models_contract import run_config

pytestmark = pytest.mark.charts

LOOPBACK = ("127.0.0.1", "::1", "localhost")
GATEWAY = "maas-gateway"
# Overlays that deploy the in-release gateway (kind-maas talks to an external MaaS instead).
GATEWAY_OVERLAYS = [p for p in overlays() if p.stem != "kind-maas"]
# ... and llama-stack with it (maas-standin renders only the MaaS half: gateway and model server).
STACK_OVERLAYS = [p for p in GATEWAY_OVERLAYS if p.stem != "maas-standin"]


def component(docs: list[Obj], kind: str, name: str) -> Obj:
    """The object of `kind` whose app.kubernetes.io/component label is `name`."""
    for obj in of_kind(docs, kind):
        if obj["metadata"].get("labels", {}).get("app.kubernetes.io/component") == name:
            return obj
    pytest.fail(f"no {kind} with component {name!r} was rendered", pytrace=False)
    raise AssertionError


def envoy_config(docs: list[Obj]) -> dict[str, Any]:
    for cm in of_kind(docs, "ConfigMap"):
        text = config_map_files(cm).get("envoy.yaml")
        if text:
            return yaml.safe_load(text)
    pytest.fail("no envoy.yaml was rendered", pytrace=False)
    raise AssertionError


def only_container(obj: Obj) -> Obj:
    spec = pod_spec(obj) or {}
    assert len(spec.get("containers") or []) == 1, f"{obj['metadata']['name']}: expected one container"
    return spec["containers"][0]


def env_of(container: Obj) -> dict[str, Obj]:
    return {e["name"]: e for e in container.get("env") or []}


# --- llama-stack authenticates with the gateway's keys ----------------------------------------


@pytest.mark.parametrize("overlay", STACK_OVERLAYS, ids=[p.stem for p in STACK_OVERLAYS])
def test_llama_stack_asks_the_gateway_about_every_key(helm: HelmBinary, renderer: Renderer, overlay) -> None:
    docs = render_ok(renderer, helm, "rag", overlay=overlay)
    _, config = run_config(docs)
    provider = ((config.get("server") or {}).get("auth") or {}).get("provider_config") or {}
    assert provider.get("type") == "custom", f"llama-stack server.auth is {config.get('server')}"
    gateway = envoy_config(docs)
    routes = [r for vh in _virtual_hosts(gateway, "maas") for r in vh["routes"]]
    validate = [r["match"]["path"] for r in routes if "path" in r["match"] and "direct_response" in r]
    assert validate, "the gateway renders no key-validation route"
    assert provider.get("endpoint", "").endswith(validate[0]), (
        f"llama-stack validates keys at {provider.get('endpoint')}, the gateway serves {validate}"
    )
    if overlay.stem != "local":  # local points at 127.0.0.1 with a harness-picked port
        assert provider["endpoint"].startswith(f"http://{RELEASE}-maas-gateway:"), provider["endpoint"]


@pytest.mark.parametrize("overlay", STACK_OVERLAYS, ids=[p.stem for p in STACK_OVERLAYS])
def test_llama_stack_holds_no_model_key_of_its_own(helm: HelmBinary, renderer: Renderer, overlay) -> None:
    """Every model call spends the caller's forwarded key: a key in llama-stack's own config would
    be spent by any caller who does not forward one."""
    docs = render_ok(renderer, helm, "rag", overlay=overlay)
    _, config = run_config(docs)
    for provider in config["providers"]["inference"]:
        if provider["provider_id"] == "embeddings":
            continue
        held = {k for k in ("api_token", "api_key") if k in provider["config"]}
        assert not held, f"provider {provider['provider_id']} carries its own {held}"


def test_auth_is_on_by_default(helm: HelmBinary, renderer: Renderer) -> None:
    _, config = run_config(render_ok(renderer, helm, "llama-stack"))
    assert config["server"].get("auth", {}).get("provider_config", {}).get("type") == "custom"


# --- Envoy admin on loopback, readiness on its own listener ------------------------------------


def _virtual_hosts(config: dict[str, Any], listener: str) -> list[Obj]:
    for lst in config["static_resources"]["listeners"]:
        if lst["name"] == listener:
            manager = lst["filter_chains"][0]["filters"][0]["typed_config"]
            return manager["route_config"]["virtual_hosts"]
    pytest.fail(f"no listener {listener!r}", pytrace=False)
    raise AssertionError


@pytest.mark.parametrize("overlay", [None, *GATEWAY_OVERLAYS], ids=["defaults", *[p.stem for p in GATEWAY_OVERLAYS]])
def test_envoy_admin_listens_on_loopback_and_probes_use_the_health_listener(
    helm: HelmBinary, renderer: Renderer, overlay
) -> None:
    docs = render_ok(renderer, helm, "rag" if overlay else GATEWAY, overlay=overlay)
    config = envoy_config(docs)
    admin = config["admin"]["address"]["socket_address"]
    assert admin["address"] in LOOPBACK, f"Envoy admin binds {admin}"
    deployment = component(docs, "Deployment", "gateway")
    envoy = only_container(deployment)
    ports = {p["name"]: p["containerPort"] for p in envoy.get("ports") or []}
    assert admin["port_value"] not in ports.values(), f"the admin port is declared on the pod: {ports}"
    health = next(lst for lst in config["static_resources"]["listeners"] if lst["name"] == "health")
    assert health["address"]["socket_address"]["port_value"] == ports["health"]
    manager = health["filter_chains"][0]["filters"][0]["typed_config"]
    routes = manager["route_config"]["virtual_hosts"][0]["routes"]
    assert all(r.get("direct_response", {}).get("status") == 404 for r in routes), f"health listener routes {routes}"
    check = next(f for f in manager["http_filters"] if f["name"] == "envoy.filters.http.health_check")
    assert check["typed_config"]["pass_through_mode"] is False
    for probe in ("readinessProbe", "livenessProbe"):
        get = envoy[probe]["httpGet"]
        assert (get["port"], get["path"]) == ("health", "/ready"), f"{probe} is {get}"


# --- rate limit debug port on loopback -----------------------------------------------------------


@pytest.mark.parametrize("overlay", [None, *GATEWAY_OVERLAYS], ids=["defaults", *[p.stem for p in GATEWAY_OVERLAYS]])
def test_ratelimit_debug_port_is_local(helm: HelmBinary, renderer: Renderer, overlay) -> None:
    docs = render_ok(renderer, helm, "rag" if overlay else GATEWAY, overlay=overlay)
    ratelimit = only_container(component(docs, "Deployment", "ratelimit"))
    env = env_of(ratelimit)
    assert env["DEBUG_HOST"]["value"] in LOOPBACK, f"DEBUG_HOST is {env['DEBUG_HOST']}"
    debug_port = int(env["DEBUG_PORT"]["value"])
    assert debug_port not in [p["containerPort"] for p in ratelimit.get("ports") or []]


# --- Redis: a password from a Secret, never in args or env values ------------------------------


@pytest.mark.parametrize("overlay", [None, *GATEWAY_OVERLAYS], ids=["defaults", *[p.stem for p in GATEWAY_OVERLAYS]])
def test_redis_requires_a_password_kept_in_a_secret(helm: HelmBinary, renderer: Renderer, overlay) -> None:
    docs = render_ok(renderer, helm, "rag" if overlay else GATEWAY, overlay=overlay)
    redis_deploy = component(docs, "Deployment", "redis")
    redis = only_container(redis_deploy)
    argv = [*redis.get("command", []), *redis.get("args", [])]
    assert "--protected-mode" not in argv and "--requirepass" not in argv, argv
    conf = argv[1]
    mount = next(m for m in redis["volumeMounts"] if conf.startswith(m["mountPath"] + "/"))
    redis_pod = pod_spec(redis_deploy)
    assert redis_pod is not None, "the redis Deployment has no pod template"
    volume = next(v for v in redis_pod["volumes"] if v["name"] == mount["name"])
    secret_name = volume["secret"]["secretName"]
    secret = next(s for s in of_kind(docs, "Secret") if s["metadata"]["name"] == secret_name)
    data = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    password = data["password"]
    assert len(password) >= 16, "the Redis password is short"
    assert data["redis.conf"].strip() == f"requirepass {password}"
    ratelimit = only_container(component(docs, "Deployment", "ratelimit"))
    auth = env_of(ratelimit)["REDIS_AUTH"]
    assert auth["valueFrom"]["secretKeyRef"] == {"name": secret_name, "key": "password"}
    for c in containers(docs):
        for e in c.spec.get("env") or []:
            assert password not in str(e.get("value", "")), f"{c.where}: the Redis password in env {e['name']}"
        assert all(password not in a for a in c.argv), f"{c.where}: the Redis password in its arguments"


# --- NetworkPolicies on by default ---------------------------------------------------------------


def policy_for(docs: list[Obj], name: str) -> Obj:
    return component(docs, "NetworkPolicy", name)


def peers(rule: Obj) -> list[dict[str, str]]:
    return [p.get("podSelector", {}).get("matchLabels", {}) for p in rule.get("from") or []]


@pytest.mark.parametrize("overlay", [None, *GATEWAY_OVERLAYS], ids=["defaults", *[p.stem for p in GATEWAY_OVERLAYS]])
def test_network_policies_allow_only_the_flows_each_internal_needs(
    helm: HelmBinary, renderer: Renderer, overlay
) -> None:
    docs = render_ok(renderer, helm, "rag" if overlay else GATEWAY, overlay=overlay)
    labels = {
        name: component(docs, "Deployment", name)["spec"]["selector"]["matchLabels"]
        for name in ("gateway", "ratelimit", "redis")
    }
    redis_port = only_container(component(docs, "Deployment", "redis"))["ports"][0]["containerPort"]
    redis = policy_for(docs, "redis")
    assert redis["spec"]["podSelector"]["matchLabels"] == labels["redis"]
    assert redis["spec"]["policyTypes"] == ["Ingress"]
    [rule] = redis["spec"]["ingress"]
    assert peers(rule) == [labels["ratelimit"]], f"Redis accepts {peers(rule)}"
    assert [p["port"] for p in rule["ports"]] == [redis_port]

    ratelimit = only_container(component(docs, "Deployment", "ratelimit"))
    ports = {p["name"]: p["containerPort"] for p in ratelimit["ports"]}
    policy = policy_for(docs, "ratelimit")
    assert policy["spec"]["podSelector"]["matchLabels"] == labels["ratelimit"]
    grpc = [r for r in policy["spec"]["ingress"] if ports["grpc"] in [p["port"] for p in r["ports"]]]
    assert len(grpc) == 1 and peers(grpc[0]) == [labels["gateway"]], f"gRPC rules {grpc}"
    open_rules = [r for r in policy["spec"]["ingress"] if not r.get("from")]
    assert [p["port"] for r in open_rules for p in r["ports"]] == [ports["http"]], "only the health port is open"

    envoy = only_container(component(docs, "Deployment", "gateway"))
    gw_ports = sorted(p["containerPort"] for p in envoy["ports"])
    gateway = policy_for(docs, "gateway")
    assert gateway["spec"]["podSelector"]["matchLabels"] == labels["gateway"]
    assert sorted(p["port"] for r in gateway["spec"]["ingress"] for p in r["ports"]) == gw_ports


def test_network_policies_can_be_turned_off(helm: HelmBinary, renderer: Renderer) -> None:
    docs = render_ok(renderer, helm, GATEWAY, values={"networkPolicy": {"enabled": False}})
    assert not of_kind(docs, "NetworkPolicy")


# --- the stack's back ends accept only their one client ------------------------------------------


def workload_labels(docs: list[Obj], component_name: str) -> dict[str, str]:
    for obj in docs:
        spec = pod_spec(obj)
        labels = ((obj.get("spec") or {}).get("template") or {}).get("metadata", {}).get("labels") or {}
        if spec is not None and labels.get("app.kubernetes.io/component") == component_name:
            return labels
    pytest.fail(f"no workload with component {component_name!r}", pytrace=False)
    raise AssertionError


def every_workload_labels(docs: list[Obj], component_name: str) -> list[dict[str, str]]:
    """Pod labels of every workload with that component (a stack may run two model servers)."""
    found = []
    for obj in docs:
        labels = ((obj.get("spec") or {}).get("template") or {}).get("metadata", {}).get("labels") or {}
        if pod_spec(obj) is not None and labels.get("app.kubernetes.io/component") == component_name:
            found.append(labels)
    if not found:
        pytest.fail(f"no workload with component {component_name!r}", pytrace=False)
    return found


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


@pytest.mark.parametrize("overlay", STACK_OVERLAYS, ids=[p.stem for p in STACK_OVERLAYS])
def test_back_ends_accept_only_their_client(helm: HelmBinary, renderer: Renderer, overlay) -> None:
    """Without these, any pod could call the model server with no key and no budget, or use the
    embeddings server and the vector database directly. The model server also admits its own
    chart's `helm test` pod (which lists its models), and only that one: an enforcing cluster
    would otherwise fail `helm test`."""
    docs = render_ok(renderer, helm, "rag", overlay=overlay)
    gateway, llama_stack = workload_labels(docs, "gateway"), workload_labels(docs, "llama-stack")
    expected = {"model-server": gateway, "embeddings": llama_stack, "pgvector": llama_stack}
    for back_end, client in expected.items():
        for pods in every_workload_labels(docs, back_end):
            check_back_end(docs, back_end, pods, client)


def check_back_end(docs: list[Obj], back_end: str, pods: dict[str, str], client: dict[str, str]) -> None:
    """One NetworkPolicy selects the back end's pods and admits its client (and, for a model
    server, its own chart's `helm test` pod) and nothing else."""
    policies = [p for p in of_kind(docs, "NetworkPolicy") if selects(p["spec"]["podSelector"]["matchLabels"], pods)]
    assert len(policies) == 1, f"{back_end}: {len(policies)} NetworkPolicies select its pods"
    [rule] = policies[0]["spec"]["ingress"]
    allowed = peers(rule)
    if back_end == "model-server":
        test_pod = {**pods, "app.kubernetes.io/component": "test"}
        assert len(allowed) == 2 and selects(allowed[1], test_pod), f"{back_end} accepts {allowed}"
        assert not selects(allowed[1], pods) and not selects(allowed[1], client), f"test peer too wide: {allowed}"
    else:
        assert len(allowed) == 1, f"{back_end} accepts {allowed}"
    assert selects(allowed[0], client), f"{back_end} accepts {allowed}"
    others = [workload_labels(docs, c) for c in ("gateway", "llama-stack", "ratelimit") if c != back_end]
    assert [selects(allowed[0], labels) for labels in others].count(True) == 1, f"{back_end}: peer too wide"
