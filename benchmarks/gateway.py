"""Benchmark (not a test): what the gateway adds to a model call, and how well it holds a token budget.

One interleaved run on this machine, every process on 127.0.0.1, three targets in front of one
fast backend (benchmarks/gatewaybench/backend: a Go server answering a fixed chat completion with
usage, or a stream of 64 one-token chunks and a usage chunk):

  direct   the backend itself
  envoy    plain Envoy, router only: the binary and worker count (--concurrency) the gateway runs
  gateway  the gateway as the charts render it: charts/rag with values/local.yaml plus a values file
           of this run (two tiers and their keys, below), its Envoy, envoyproxy/ratelimit and Redis,
           started by the local target's own code (LocalTarget.up_components)

The load generator (benchmarks/gatewaybench/loadgen, Go) keeps one connection per client and
times each call to the last byte. Rounds interleave the targets (a different order per round and
load) so a busy machine slows all of them alike; each figure is the median over the rounds.

Prints, for non-streaming and streaming chats: p50 and p99 latency at c=1 and what each adds to
direct, req/s at c=16 and c=64, each as a ratio to direct and to plain Envoy; a check that the
backend (and the load generator) was not the bottleneck; and the accuracy check: concurrent
clients on one fresh key with a token budget, each call taking a model's time, and the tokens
admitted beyond the budget in one window (over-admission).

The run's values file adds tier `bench-load` (budgets no run reaches: the figures measure the
checks, never a refusal) and tier `bench-budget` (the premium tier's token budget, a request budget
no run reaches), one key each; the rendered config is otherwise the one `make up` runs.

Run:   .cache/venv/bin/python benchmarks/gateway.py            (about 5 minutes; make bench runs it)
       .cache/venv/bin/python benchmarks/gateway.py --quick    (c=1 and c=2, 0.4 s per measurement,
                                                                16 clients for the accuracy check)
Needs `make bootstrap` (helm, Envoy, envoyproxy/ratelimit, redis-server) and Go on PATH; the Go
programs are built into .cache/bench/gateway/bin, the run folder is .cache/runs/bench-gateway.
Exit 0: measured; 1: measured, but the backend may have bounded a figure (marked NOT SHOWN); 2: not
measured (a tool missing, a start or a call failed: the error line says which).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import secrets
import shutil
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
# This checkout's harness (and so its charts), not the checkout the shared venv was installed from.
sys.path.insert(0, str(REPO / "tests"))

from harness import http  # noqa: E402
from harness.errors import BuildError, HarnessError, StackNotReady, ToolMissing  # noqa: E402
from harness.local import processes  # noqa: E402
from harness.local import stack as local_stack  # noqa: E402
from harness.local.pods import Probe  # noqa: E402
from harness.local.ports import Ports  # noqa: E402
from harness.local.state import RunFolder  # noqa: E402
from harness.loopback import free_ports  # noqa: E402
from harness.paths import CACHE_DIR, values_file  # noqa: E402
from harness.targets import TargetOptions  # noqa: E402
from harness.targets.local import LocalTarget  # noqa: E402
from harness.tools import require  # noqa: E402
from harness.waiting import Waiter, WaitPolicy  # noqa: E402

GO_SOURCES = REPO / "benchmarks" / "gatewaybench"
BIN_DIR = CACHE_DIR / "bench" / "gateway" / "bin"
RUN_NAME = "bench-gateway"
BACKEND = "bench-backend"  # the backend's name in the run folder (its log, its recorded pid)
GATEWAY_COMPONENTS = ("redis", "ratelimit", "gateway")  # app.kubernetes.io/component of the maas-gateway chart
GATEWAY_CONTAINER = "rag-maas-gateway-envoy"
MODEL = "simulated-model"  # values/local.yaml's model on the first model server: the gateway routes it there
LOAD_TIER, BUDGET_TIER = "bench-load", "bench-budget"
UNREACHED_LIMIT = 2_000_000_000  # a budget no run reaches (the rate limit service counts in uint32)
DELAY_HEADER = "X-Bench-Delay-Ms"  # the backend waits this long before answering
ACCURACY_MODEL_MS = 500  # a model call's time in the accuracy check: every call in flight counts
STREAM_TOKENS = 64  # the backend's stream
USAGE = {"chat": 110, "stream": 164}  # the backend's usage.total_tokens: 100 prompt + 10 or 64 completion
BOTTLENECK_MARGIN = 2.0  # direct req/s this many times a proxy's: the backend did not bound that proxy
BACKEND_IDLE = 0.25  # or the backend busy at most this share of one core during the proxy's run: it idled
LATENCY_GOAL_MS = 0.5  # what the gateway may add to direct at c=1 (p50)
THROUGHPUT_GOAL = 0.5  # the gateway's req/s at the top concurrency, as a share of plain Envoy's
READY = WaitPolicy.fixed(15.0, 0.1)  # a benchmark process answering its first probe (Envoy: a second or two)
BUILD_TIMEOUT_S = 600.0  # one `go build` on a busy 2-core machine with a cold build cache
SANITY_TIMEOUT_S = 10.0  # one call of the sanity check or the accuracy check
PROMPT = " ".join(["word"] * 96)  # about 100 prompt tokens (the backend reports 100 whatever it gets)


@dataclass(frozen=True)
class Plan:
    rounds: int
    seconds: float  # per measurement
    throughput: tuple[int, ...]  # concurrencies for req/s (latency is measured at c=1)
    accuracy_clients: int
    warmup: int  # unmeasured calls before each measurement

    @property
    def concurrencies(self) -> tuple[int, ...]:
        return (1, *self.throughput)


FULL = Plan(rounds=3, seconds=5.0, throughput=(16, 64), accuracy_clients=64, warmup=200)
# Light enough to run next to other work: at most 2 clients, 4 x 0.4 s of load per target.
QUICK = Plan(rounds=1, seconds=0.4, throughput=(2,), accuracy_clients=16, warmup=20)


@dataclass(frozen=True)
class Endpoint:
    name: str
    url: str  # the chat completions URL


@dataclass(frozen=True)
class Load:
    kind: str  # "chat" or "stream"
    concurrency: int


@dataclass
class Sample:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    backend_busy: float  # the backend's CPU time over the run's wall time (1.0: one core all along)
    loadgen_busy: float  # the load generator's, likewise


@dataclass
class Figures:
    """Median over the rounds of each (target, load)."""

    samples: dict[tuple[str, Load], list[Sample]] = field(default_factory=dict)

    def add(self, target: str, load: Load, sample: Sample) -> None:
        self.samples.setdefault((target, load), []).append(sample)

    def median(self, target: str, load: Load, pick: Callable[[Sample], float]) -> float:
        return statistics.median(pick(s) for s in self.samples[(target, load)])


class CallFailed(StackNotReady):
    """A benchmark call was answered with an error: the figures would not mean what they say."""


def say(message: str) -> None:
    print(f"[bench] {message}", flush=True)


# --- tools -----------------------------------------------------------------------------------------


def go_build(program: str) -> Path:
    """benchmarks/gatewaybench/<program> built into .cache (again only when its source changed)."""
    go = shutil.which("go")
    if go is None:
        raise ToolMissing(
            "go not found on PATH: install Go 1.22 or newer (https://go.dev/dl/) and put its bin folder on "
            "PATH; the benchmark builds its backend and load generator from benchmarks/gatewaybench"
        )
    out = BIN_DIR / program
    stamp = out.with_name(f"{program}.sha256")
    digest = _source_digest(program, go)
    if out.is_file() and stamp.is_file() and stamp.read_text() == digest:
        say(f"{program}: reusing {out} (its source is unchanged)")
        return out
    why = "its source changed" if out.is_file() else "not built yet"
    say(f"{program}: building it (Go, standard library only, at low priority) into {out}: {why}")
    argv = ["nice", "-n", "10", go, "build", "-trimpath", "-o", str(out), f"./{program}"]
    result = subprocess.run(argv, cwd=GO_SOURCES, capture_output=True, text=True, timeout=BUILD_TIMEOUT_S)
    if result.returncode != 0:
        raise BuildError(f"go build of benchmarks/gatewaybench/{program} failed (output above)", detail=result.stderr)
    stamp.write_text(digest)
    return out


def _source_digest(program: str, go: str) -> str:
    version = subprocess.run([go, "version"], capture_output=True, text=True).stdout
    digest = hashlib.sha256(version.encode())
    for path in [GO_SOURCES / "go.mod", *sorted((GO_SOURCES / program).glob("*.go"))]:
        digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()


def require_stack_tools() -> None:
    """The gateway's programs, as `make bootstrap` installs them (the message says so when one is missing)."""
    for tool in ("helm", "envoy", "ratelimit", "redis-server"):
        require(tool)


# --- processes -------------------------------------------------------------------------------------


def start_recorded(run: RunFolder, name: str, argv: list[str], probe: Probe) -> None:
    """Start a benchmark process in the run folder (its log there, its pid recorded so that the
    run's `down` stops it with the gateway) and wait for `probe`."""
    say(f"starting {name}: {Path(argv[0]).name} {' '.join(argv[1:])}")
    proc = processes.start(name, argv, {}, run.log(name), run.work_dir(name), None)
    run.record_pid(name, proc.pid)

    def ready() -> bool:
        if not processes.alive(proc.pid):
            raise processes.StartError(
                f"{name} exited at start-up; end of {run.log(name)}:\n{processes.log_tail(run.log(name))}"
            )
        return processes.probe_ok(probe)

    Waiter().until(ready, READY, what=f"{name} to answer {probe.kind} on 127.0.0.1:{probe.port}")


ENVOY_API = "type.googleapis.com/envoy.extensions"


def plain_envoy_config(port: int, admin_port: int, backend_port: int) -> dict[str, Any]:
    """Envoy with one listener whose only filter is the router, to one static backend."""
    hcm = {
        "@type": f"{ENVOY_API}.filters.network.http_connection_manager.v3.HttpConnectionManager",
        "stat_prefix": "plain",
        "route_config": {
            "virtual_hosts": [
                {
                    "name": "all",
                    "domains": ["*"],
                    "routes": [{"match": {"prefix": "/"}, "route": {"cluster": "backend"}}],
                }
            ]
        },
        "http_filters": [
            {
                "name": "envoy.filters.http.router",
                "typed_config": {"@type": f"{ENVOY_API}.filters.http.router.v3.Router"},
            }
        ],
    }
    backend = {"socket_address": {"address": "127.0.0.1", "port_value": backend_port}}
    return {
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": admin_port}}},
        "static_resources": {
            "listeners": [
                {
                    "name": "plain",
                    "address": {"socket_address": {"address": "127.0.0.1", "port_value": port}},
                    "filter_chains": [
                        {"filters": [{"name": "envoy.filters.network.http_connection_manager", "typed_config": hcm}]}
                    ],
                }
            ],
            "clusters": [
                {
                    "name": "backend",
                    "type": "STATIC",
                    "connect_timeout": "5s",
                    "load_assignment": {
                        "cluster_name": "backend",
                        "endpoints": [{"lb_endpoints": [{"endpoint": {"address": backend}}]}],
                    },
                }
            ],
        },
    }


def gateway_envoy_argv(run: RunFolder) -> tuple[str, str]:
    """(Envoy executable, --concurrency) of the running gateway, read from its process."""
    pids = run.recorded_pids()
    if GATEWAY_CONTAINER not in pids:
        raise processes.StartError(
            f"the gateway's Envoy ({GATEWAY_CONTAINER}) is not among the started: {sorted(pids)}"
        )
    pid = pids[GATEWAY_CONTAINER]
    argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
    return argv[0], argv[argv.index("--concurrency") + 1]


def local_gateway_values() -> dict[str, Any]:
    values: dict[str, Any] = yaml.safe_load(values_file("local").read_text())["maas-gateway"]
    return values


def budget_tokens() -> dict[str, Any]:
    """The accuracy check's token budget: values/local.yaml's premium tier's ({limit, window})."""
    tokens: dict[str, Any] = local_gateway_values()["tiers"]["premium"]["tokens"]
    return tokens


def bench_values(load_key: str, budget_key: str) -> dict[str, Any]:
    """values/local.yaml's keys (a list replaces, never merges) plus one key of each benchmark tier."""
    local = local_gateway_values()
    tokens = budget_tokens()
    unreached = {"limit": UNREACHED_LIMIT, "window": "1m"}
    keys = [
        *local["apiKeys"]["keys"],
        {"user": "bench-load-user", "tier": LOAD_TIER, "key": load_key},
        {"user": "bench-budget-user", "tier": BUDGET_TIER, "key": budget_key},
    ]
    tiers = {
        LOAD_TIER: {"tokens": unreached, "requests": unreached},
        BUDGET_TIER: {"tokens": tokens, "requests": unreached},
    }
    return {"maas-gateway": {"tiers": tiers, "apiKeys": {"keys": keys}}}


@dataclass
class Stack:
    target: LocalTarget
    backend_port: int
    envoy_port: int
    gateway_port: int
    load_key: str
    budget_key: str

    @property
    def backend_pid(self) -> int:
        return self.target.run.recorded_pids()[BACKEND]

    def endpoints(self) -> list[Endpoint]:
        path = "/v1/chat/completions"
        ports = {"direct": self.backend_port, "envoy": self.envoy_port, "gateway": self.gateway_port}
        return [Endpoint(name, f"http://127.0.0.1:{port}{path}") for name, port in ports.items()]


@contextmanager
def running_stack(backend: Path) -> Iterator[Stack]:
    """The gateway (its rendered components), the backend and plain Envoy, stopped on the way out."""
    backend_port, envoy_port, envoy_admin = free_ports(3)
    run = RunFolder.named(RUN_NAME)
    load_key, budget_key = f"bench-load-{secrets.token_hex(12)}", f"bench-budget-{secrets.token_hex(12)}"
    overlay = run.root / "bench-values.yaml"
    target = LocalTarget(TargetOptions(run_name=RUN_NAME, values=[overlay]), Ports(model_server=backend_port))
    _write_overlay(run, overlay, bench_values(load_key, budget_key))
    say(
        f"starting the gateway's components ({', '.join(GATEWAY_COMPONENTS)}) as `make up` renders and runs them "
        "(charts/rag, values/local.yaml and the benchmark's two tiers): the target under test"
    )
    ports = target.up_components(GATEWAY_COMPONENTS)  # on a failed start it stops what it started
    try:
        say("starting the backend: the fast model server that every target forwards to")
        start_recorded(
            run,
            BACKEND,
            [str(backend), "-listen", f"127.0.0.1:{backend_port}", "-model", MODEL],
            Probe("http", backend_port, "/health"),
        )
        envoy, workers = gateway_envoy_argv(run)
        config = run.work_dir("bench-envoy") / "envoy.yaml"
        config.write_text(json.dumps(plain_envoy_config(envoy_port, envoy_admin, backend_port)))
        argv = [envoy, "-c", str(config), "--concurrency", workers, "--disable-hot-restart", "--use-dynamic-base-id"]
        say("starting plain Envoy, the baseline (a proxy that only routes): the gateway's binary and --concurrency")
        start_recorded(run, "bench-envoy", argv, Probe("http", envoy_admin, "/ready"))
        yield Stack(target, backend_port, envoy_port, ports.gateway, load_key, budget_key)
    finally:
        target.down()


def _write_overlay(run: RunFolder, path: Path, values: dict[str, Any]) -> None:
    local_stack.refuse_if_running(run)  # as the local target does, before this run's files change
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(values, indent=2))
    path.chmod(0o600)  # holds the run's two keys


# --- requests --------------------------------------------------------------------------------------


def chat_body(kind: str) -> dict[str, Any]:
    body: dict[str, Any] = {"model": MODEL, "messages": [{"role": "user", "content": PROMPT}], "max_tokens": 10}
    if kind == "stream":
        body |= {"stream": True, "stream_options": {"include_usage": True}, "max_tokens": STREAM_TOKENS}
    return body


def expected(kind: str) -> str:
    """What every answer of this kind holds: the usage (the stream's last chunk)."""
    return f'"total_tokens":{USAGE[kind]}'


def sanity_check(stack: Stack) -> None:
    """One call of each kind on each target: 200 with the usage; the gateway's budget headers present."""
    for endpoint in stack.endpoints():
        for kind in ("chat", "stream"):
            reply = http.request(
                "POST", endpoint.url, key=stack.load_key, body=chat_body(kind), timeout=SANITY_TIMEOUT_S
            )
            if reply.status != 200 or expected(kind) not in reply.body:
                raise CallFailed(
                    f"{endpoint.name} {kind}: {reply.status} {reply.body[:300]!r}: see {stack.target.run.logs_dir}"
                )
            if endpoint.name == "gateway" and "x-ratelimit-remaining-tokens" not in reply.headers:
                raise CallFailed(f"the gateway answered without x-ratelimit-remaining-tokens: {sorted(reply.headers)}")
    say("sanity check: every target answers both kinds with usage; the gateway with its budget headers")


# --- load ------------------------------------------------------------------------------------------


def measure(
    loadgen: Path, endpoint: Endpoint, load: Load, plan: Plan, *, key: str, bodies: dict[str, Path], backend_pid: int
) -> Sample:
    flags = {
        "-url": endpoint.url,
        "-body-file": str(bodies[load.kind]),
        "-c": str(load.concurrency),
        "-duration": f"{plan.seconds}s",
        "-warmup": str(plan.warmup),
        "-expect": expected(load.kind),
        "-header": f"Authorization: Bearer {key}",  # every target gets the same request
    }
    argv = [str(loadgen), *(part for pair in flags.items() for part in pair)]
    backend_before, loadgen_before, started = cpu_seconds(backend_pid), children_cpu_seconds(), time.monotonic()
    result = subprocess.run(argv, capture_output=True, text=True, timeout=plan.seconds + 60)
    wall = time.monotonic() - started
    backend_busy = (cpu_seconds(backend_pid) - backend_before) / wall
    loadgen_busy = (children_cpu_seconds() - loadgen_before) / wall
    if result.returncode != 0:
        raise CallFailed(f"the load generator failed: {result.stderr.strip()}")
    out = json.loads(result.stdout)
    if out["errors"]:
        raise CallFailed(
            f"{endpoint.name} {load.kind} c={load.concurrency}: {out['errors']} of {out['errors'] + out['requests']} "
            f"calls failed; first: {out['first_error']}"
        )
    return Sample(out["rps"], out["p50_ms"], out["p99_ms"], out["requests"], backend_busy, loadgen_busy)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a running process, all its threads (/proc/<pid>/stat, clock ticks)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children_cpu_seconds() -> float:
    """CPU time of this process's waited-for children: the load generator runs (the stack's are reaped at the end)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def loads(plan: Plan) -> list[Load]:
    return [Load(kind, c) for kind in ("chat", "stream") for c in plan.concurrencies]


def interleaved(stack: Stack, loadgen: Path, plan: Plan, bodies: dict[str, Path]) -> Figures:
    """Every (target, load) once per round; the targets' order rotates from one load to the next."""
    figures = Figures()
    endpoints = stack.endpoints()
    todo = loads(plan)
    for round_no in range(plan.rounds):
        for index, load in enumerate(todo):
            shift = (round_no + index) % len(endpoints)
            for endpoint in endpoints[shift:] + endpoints[:shift]:
                sample = measure(
                    loadgen, endpoint, load, plan, key=stack.load_key, bodies=bodies, backend_pid=stack.backend_pid
                )
                figures.add(endpoint.name, load, sample)
                say(
                    f"round {round_no + 1}/{plan.rounds} {KIND_NAMES[load.kind]} c={load.concurrency} "
                    f"{endpoint.name}: {sample.rps:,.0f} req/s, p50 {sample.p50_ms:.3f} ms, p99 {sample.p99_ms:.3f} ms "
                    f"({sample.requests:,} calls; backend busy {sample.backend_busy:.0%} of a core, "
                    f"load generator {sample.loadgen_busy:.0%})"
                )
    return figures


# --- accuracy --------------------------------------------------------------------------------------


@dataclass
class Accuracy:
    clients: int
    budget: int
    window: str
    admitted: int
    refused: int
    admitted_tokens: int
    send_spread_ms: float  # from the first call sent to the last
    first_answer_ms: float  # from the first call sent to the first answer


def window_room(gateway: str, key: str, need_s: float) -> None:
    """Return once the key's token window has `need_s` seconds left (the gateway says how many, on
    /v1/models, which costs nothing), sleeping into the next window otherwise."""
    reply = http.request("GET", f"{gateway}/v1/models", key=key, timeout=SANITY_TIMEOUT_S)
    reset = reply.headers.get("x-ratelimit-reset-tokens")
    if reset is None:
        raise CallFailed(f"the gateway sent no x-ratelimit-reset-tokens on /v1/models ({reply.status})")
    if float(reset) < need_s:
        say(f"accuracy check: {reset} s left in the token window, too few: waiting for the next one")
        time.sleep(float(reset) + 0.5)


def burst(url: str, key: str, clients: int) -> list[tuple[float, float, http.Response]]:
    """`clients` calls released together, each taking ACCURACY_MODEL_MS at the model: (sent, answered, reply)."""
    barrier = threading.Barrier(clients)
    body, headers = chat_body("chat"), {DELAY_HEADER: str(ACCURACY_MODEL_MS)}
    with http.client(verify=False, timeout=SANITY_TIMEOUT_S) as session:

        def one(_: int) -> tuple[float, float, http.Response]:
            barrier.wait()
            sent = time.monotonic()
            reply = http.request(
                "POST", url, key=key, body=body, headers=headers, timeout=SANITY_TIMEOUT_S, session=session
            )
            return sent, time.monotonic(), reply

        with ThreadPoolExecutor(max_workers=clients) as pool:
            return list(pool.map(one, range(clients)))


def accuracy(stack: Stack, clients: int) -> Accuracy:
    gateway = f"http://127.0.0.1:{stack.gateway_port}"
    tokens = budget_tokens()
    window_room(gateway, stack.budget_key, need_s=ACCURACY_MODEL_MS / 1000 + 5.0)
    say(
        f"accuracy check: {clients} concurrent chats on one fresh key, budget {tokens['limit']} tokens per "
        f"{tokens['window']}, each call {ACCURACY_MODEL_MS} ms at the model and {USAGE['chat']} tokens of usage: "
        "do the calls in flight together stay within the budget?"
    )
    calls = burst(f"{gateway}/v1/chat/completions", stack.budget_key, clients)
    for _, _, reply in calls:
        if reply.status not in (200, 429):
            raise CallFailed(f"accuracy check: a call answered {reply.status}: {reply.body[:300]!r}")
    ok = [reply for _, _, reply in calls if reply.status == 200]
    first_sent = min(sent for sent, _, _ in calls)
    return Accuracy(
        clients=clients,
        budget=int(tokens["limit"]),
        window=str(tokens["window"]),
        admitted=len(ok),
        refused=len(calls) - len(ok),
        admitted_tokens=sum(int(reply.json()["usage"]["total_tokens"]) for reply in ok),
        send_spread_ms=(max(sent for sent, _, _ in calls) - first_sent) * 1000,
        first_answer_ms=(min(done for _, done, _ in calls) - first_sent) * 1000,
    )


# --- report ----------------------------------------------------------------------------------------

KIND_NAMES = {"chat": "non-streaming", "stream": f"streaming ({STREAM_TOKENS} tokens)"}
TARGETS = ("direct", "envoy", "gateway")


def ratio(value: float, base: float) -> str:
    return f"{value / base:.2f}x" if base > 0 else "-"


def latency_table(figures: Figures, kind: str) -> list[str]:
    load = Load(kind, 1)
    p50 = {t: figures.median(t, load, lambda s: s.p50_ms) for t in TARGETS}
    p99 = {t: figures.median(t, load, lambda s: s.p99_ms) for t in TARGETS}
    lines = [
        f"{KIND_NAMES[kind]}, c=1: latency in ms; +: added to direct; x direct, x envoy: as a multiple of theirs",
        f"  {'target':<8} {'p50':>8} {'p99':>8} {'+p50':>8} {'+p99':>8}   {'p50 x direct':>12} {'p50 x envoy':>11}"
        f"   {'p99 x direct':>12} {'p99 x envoy':>11}   {'+p50 x envoy':>12}",
    ]
    for t in TARGETS:
        added = p50[t] - p50["direct"]
        lines.append(
            f"  {t:<8} {p50[t]:>8.3f} {p99[t]:>8.3f} {added:>8.3f} {p99[t] - p99['direct']:>8.3f}"
            f"   {ratio(p50[t], p50['direct']):>12} {ratio(p50[t], p50['envoy']):>11}"
            f"   {ratio(p99[t], p99['direct']):>12} {ratio(p99[t], p99['envoy']):>11}"
            f"   {ratio(added, p50['envoy'] - p50['direct']) if t != 'direct' else '-':>12}"
        )
    return lines


def throughput_table(figures: Figures, kind: str, plan: Plan) -> list[str]:
    lines = [
        f"{KIND_NAMES[kind]}: req/s",
        f"  {'target':<8}" + "".join(f" {'c=' + str(c):>10} {'x direct':>9} {'x envoy':>8}" for c in plan.throughput),
    ]
    for t in TARGETS:
        cells = []
        for c in plan.throughput:
            rps = {x: figures.median(x, Load(kind, c), lambda s: s.rps) for x in TARGETS}
            cells.append(f" {rps[t]:>10,.0f} {ratio(rps[t], rps['direct']):>9} {ratio(rps[t], rps['envoy']):>8}")
        lines.append(f"  {t:<8}" + "".join(cells))
    return lines


def bottleneck_check(figures: Figures, plan: Plan) -> tuple[bool, list[str]]:
    """For each proxy at the top concurrency: the backend did not bound its figure when direct served
    BOTTLENECK_MARGIN times its req/s (through the same load generator), or when the backend idled
    during its run (busy at most BACKEND_IDLE of one core)."""
    top = plan.throughput[-1]
    lines, ok = [], True
    for kind in ("chat", "stream"):
        direct = figures.median("direct", Load(kind, top), lambda s: s.rps)
        for proxy in ("envoy", "gateway"):
            rps = figures.median(proxy, Load(kind, top), lambda s: s.rps)
            busy = figures.median(proxy, Load(kind, top), lambda s: s.backend_busy)
            margin = direct / rps if rps else float("inf")
            passed = margin >= BOTTLENECK_MARGIN or busy <= BACKEND_IDLE
            ok = ok and passed
            verdict = "OK, not the bottleneck" if passed else "NOT SHOWN: the backend may bound this figure"
            lines.append(
                f"  {KIND_NAMES[kind]}, c={top}, {proxy}: direct served {margin:.1f}x its {rps:,.0f} req/s "
                f"(needs {BOTTLENECK_MARGIN:.0f}x), backend busy {busy:.0%} of a core during its run "
                f"(or at most {BACKEND_IDLE:.0%}): {verdict}"
            )
    return ok, lines


def goal_lines(figures: Figures, plan: Plan, quick: bool) -> list[str]:
    p50 = {t: figures.median(t, Load("chat", 1), lambda s: s.p50_ms) for t in TARGETS}
    added = p50["gateway"] - p50["direct"]
    top = plan.throughput[-1]
    share = figures.median("gateway", Load("chat", top), lambda s: s.rps) / figures.median(
        "envoy", Load("chat", top), lambda s: s.rps
    )
    note = " (quick run: indicative only; the goals are for a full run)" if quick else ""
    return [
        f"goals{note}:",
        f"  added p50 at c=1 <= {LATENCY_GOAL_MS} ms: {added:.3f} ms: "
        + ("met" if added <= LATENCY_GOAL_MS else f"MISSED by {added - LATENCY_GOAL_MS:.3f} ms"),
        f"  req/s at c={top} >= {THROUGHPUT_GOAL}x plain Envoy: {share:.2f}x: "
        + ("met" if share >= THROUGHPUT_GOAL else f"MISSED by {THROUGHPUT_GOAL - share:.2f}x"),
    ]


def accuracy_lines(result: Accuracy) -> list[str]:
    over = max(0, result.admitted_tokens - result.budget)
    fits = result.budget // USAGE["chat"]
    return [
        f"accuracy: {result.clients} concurrent clients on one fresh key, "
        f"budget {result.budget} tokens per {result.window}",
        f"  admitted {result.admitted} calls ({result.admitted_tokens:,} tokens of usage), "
        f"refused {result.refused} (429); {fits} calls ({fits * USAGE['chat']} tokens) fit the budget",
        f"  over-admission: {over:,} tokens beyond the budget in the window ({over / result.budget:.0%} over)",
        f"  all in flight together: the last call left {result.send_spread_ms:.0f} ms after the first, "
        f"the first answer came after {result.first_answer_ms:.0f} ms",
    ]


def report(figures: Figures, result: Accuracy, plan: Plan, quick: bool) -> bool:
    """Print the tables; False when the backend may have been the bottleneck."""
    mode = "quick (c=2 stands in for c=16 and c=64)" if quick else f"median of {plan.rounds} interleaved rounds"
    lines = [
        f"== gateway benchmark: {mode}, {plan.seconds:g} s per measurement, load average "
        f"{', '.join(f'{x:.2f}' for x in os.getloadavg())} =="
    ]
    for kind in ("chat", "stream"):
        lines += latency_table(figures, kind) + throughput_table(figures, kind, plan)
    ok, check = bottleneck_check(figures, plan)
    lines += ["backend (and load generator) not the bottleneck:", *check]
    if not ok:
        lines.append("  the figures marked NOT SHOWN may measure the backend, not the proxy (exit status 1)")
    lines += [*goal_lines(figures, plan, quick), *accuracy_lines(result)]
    print("\n".join(lines), flush=True)
    return ok


# --- main ------------------------------------------------------------------------------------------


def write_bodies(run: RunFolder) -> dict[str, Path]:
    folder = run.work_dir("bench-loadgen")
    bodies = {kind: folder / f"{kind}.json" for kind in ("chat", "stream")}
    for kind, path in bodies.items():
        path.write_text(json.dumps(chat_body(kind)))
    return bodies


def bench(plan: Plan, quick: bool) -> int:
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    say(f"load average now {load}: whatever else runs here slows the targets, and the rounds share it out alike")
    require_stack_tools()
    backend, loadgen = go_build("backend"), go_build("loadgen")
    with running_stack(backend) as stack:
        sanity_check(stack)
        todo = loads(plan)
        say(
            f"measuring {len(todo)} loads x {len(TARGETS)} targets x {plan.rounds} rounds x {plan.seconds:g} s; the "
            "targets take turns in a rotating order, so that whatever else runs here slows them alike"
        )
        figures = interleaved(stack, loadgen, plan, write_bodies(stack.target.run))
        result = accuracy(stack, plan.accuracy_clients)
        say(f"stopping what the benchmark started; logs stay in {stack.target.run.logs_dir}")
    return 0 if report(figures, result, plan, quick) else 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="c=1 and c=2, 0.4 s per measurement, 16 clients")
    args = parser.parse_args(argv)
    processes.sigterm_interrupts()  # SIGTERM unwinds through the clean-up, as Ctrl-C does
    try:
        return bench(QUICK if args.quick else FULL, args.quick)
    except HarnessError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM: the clean-up has run on the way out
        print("error: interrupted; every process the benchmark started is stopped", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
