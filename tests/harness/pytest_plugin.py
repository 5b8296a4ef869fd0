"""pytest plugin `rag_harness`: deploy or reuse a target, hand its endpoints to the tests.

Options have env fallbacks so CI can set them once. The `endpoints` fixture reuses a
running stack (status() works) and otherwise deploys one, tearing it down at the end
unless --keep. A failing test that used the stack gets a diagnostics folder; every
report is redacted so that no API key reaches the terminal or a junit file.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
import traceback
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from harness import http, llama_stack_auth
from harness import registration as reg
from harness.capabilities import Capability
from harness.chart_archives import StaleArchives, refuse_stale_archives
from harness.cluster.target import ClusterTarget
from harness.declared import Declared
from harness.endpoints import Endpoints
from harness.errors import HarnessError
from harness.kube import prereqs
from harness.local.processes import sigterm_interrupts
from harness.local.programs import MODEL_CALLS_FILE
from harness.local.state import RunFolder, fingerprints
from harness.maas import MaasSettings
from harness.maas_standin import LOOPBACK, MODELS, RUN_NAME, StandinMaas
from harness.paths import CHARTS_DIR, RUNS_DIR, VALUES_DIR
from harness.redact import mask_known, redact
from harness.targets import TARGET_NAMES, Target, TargetOptions, get_target
from harness.vector_rows import Dsn, Rows, read_rows

if TYPE_CHECKING:  # the clients' types only; the modules load lazily in the fixtures
    from llama_stack_client import LlamaStackClient
    from openai import OpenAI

MARKERS = {
    "e2e": "end-to-end test against a deployed target",
    "models": "model listing and registration",
    "chat": "chat completions through llama-stack and the gateway",
    "rag": "files, vector stores, search and Responses file_search",
    "auth": "gateway API-key authentication",
    "ratelimit": "gateway token and request rate limits per tier",
    "faults": "gateway behaviour while a component is stopped (stops and restarts real processes)",
    "maas": "needs a MaaS endpoint (MAAS_ENDPOINT and MAAS_API_KEY, or MAAS_ENDPOINT=standin)",
}
# The longest default limit window (requests per 2 minutes); shorter windows divide it, so
# every window of a key has ended at a multiple of it.
KEY_WINDOW_S = 120.0
WINDOW_SLACK_S = 2.0  # clock skew between this machine and the gateway's, and charge latency
MAX_DIAGNOSES = 5  # a broken stack fails many tests; a few folders say it all
_STATE = pytest.StashKey["HarnessState"]()


@dataclass
class HarnessState:
    """Session-wide state shared by fixtures and hooks."""

    target_name: str
    options: TargetOptions
    maas: MaasSettings
    target: Target | None = None
    endpoints: Endpoints | None = None
    secrets: set[str] = field(default_factory=set)
    diagnoses: list[tuple[str, Path]] = field(default_factory=list)
    standin: Any = None  # harness.maas_standin.Standin when MAAS_ENDPOINT=standin
    stop_standin: Callable[[], None] | None = None  # set when this session started the stand-in

    def add_secrets(self, *values: str) -> None:
        self.secrets.update(v for v in values if v)

    def stop_standin_now(self) -> None:
        """Stop the stand-in MaaS this session started (once; a no-op otherwise)."""
        stop, self.stop_standin = self.stop_standin, None
        if stop is not None:
            stop()


class KeyPool:
    """Hands each test keys of a tier that no test has used in the current limit window.

    Rate-limit counters are per key and per window, and the gateway's windows are aligned to
    multiples of their length since the epoch (its Lua computes `floor(now / window)`). So a
    key is fresh again once the window of its last use has ended. A ledger in the run folder
    remembers when keys were last used, also by earlier sessions against the same (reused)
    stack; when every key of a tier is spent, `take` waits for the next window boundary
    (at most KEY_WINDOW_S) instead of skipping, so a second run right after the first passes.
    """

    def __init__(
        self,
        keys: dict[str, list[str]],
        ledger: Path | None = None,
        *,
        window_s: float = KEY_WINDOW_S,
        scope: str = "",
        clock: Any = time.time,
        sleep: Any = time.sleep,
        notify: Any = print,
    ) -> None:
        self._ledger = ledger
        # Entries are digests of scope + key: a restarted stack (new URL, empty counters)
        # does not inherit the previous one's spent keys, and the file never holds a key.
        self._scope = scope
        self._window_s = window_s
        self._clock, self._sleep, self._notify = clock, sleep, notify
        # The last key of a tier is shared by light tests (listing, auth, chat smoke):
        # its budget is large enough for many of them, and fresh takes never get it.
        self._shared = {tier: ks[-1] for tier, ks in keys.items() if ks}
        # Handed out from the end: targets probe with a tier's first key (status()).
        self._pool = {tier: list(reversed(ks[:-1])) for tier, ks in keys.items()}
        self._taken: list[str] = []  # by this session; their budgets are spent until their window ends

    def shared(self, tier: str) -> str:
        """A key for light use (few requests, few tokens), the same for every caller."""
        if tier not in self._shared:
            pytest.skip(f"the target declares no {tier!r} key (its gateway values list none)")
        return self._shared[tier]

    def take(self, tier: str, count: int = 1) -> list[str]:
        """`count` keys of `tier` with full budgets; waits for a window boundary if needed.

        Skips when the target declares no key of the tier; fails when it declares fewer than
        `count` (besides the shared one): no wait can help then.
        """
        pool = self._pool.get(tier)
        if pool is None:
            pytest.skip(f"the target declares no {tier!r} key (its gateway values list none)")
        if len(pool) < count:
            pytest.fail(
                f"the target declares {len(pool) + 1} {tier!r} key(s); this test needs {count} besides the "
                f"shared one: add {tier} keys to the gateway values"
            )
        self._touch(self._taken)  # earlier tests are done with their keys: their last use is now
        ready = sorted(pool, key=self._fresh_at)
        wait = self._fresh_at(ready[count - 1]) - self._clock()
        if wait > 0:
            self._notify(
                f"\n[rag_harness] every {tier!r} key was used in the current rate-limit window (by this or an "
                f"earlier run); waiting {wait:.0f}s for the window to end so the next test starts with a full budget"
            )
            self._sleep(wait)
        taken = ready[:count]
        self._taken.extend(taken)
        self._touch(taken)
        return taken

    def one(self, tier: str) -> str:
        return self.take(tier)[0]

    def close(self) -> None:
        """Record the end of this session's use of its keys (their windows count from now)."""
        self._touch(self._taken)

    def _fresh_at(self, key: str) -> float:
        """When `key`'s budgets are full again: the end of the window of its last use (plus slack)."""
        used_at = self._used().get(self._digest(key))
        if used_at is None:
            return 0.0
        return (used_at // self._window_s + 1) * self._window_s + WINDOW_SLACK_S

    def _used(self) -> dict[str, float]:
        """Digest -> time of last use (the ledger never holds keys)."""
        if self._ledger is None or not self._ledger.is_file():
            return {}
        ledger: dict[str, float] = json.loads(self._ledger.read_text() or "{}")
        return ledger

    def _digest(self, key: str) -> str:
        return hashlib.sha256(f"{self._scope}\n{key}".encode()).hexdigest()[:16]

    def _touch(self, keys: list[str]) -> None:
        if self._ledger is None or not keys:
            return
        used = self._used()
        used.update({self._digest(k): self._clock() for k in keys})
        self._ledger.write_text(json.dumps(used))


# --- options and markers ------------------------------------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("rag_harness", "RAG stack harness")
    env = os.environ.get
    group.addoption(
        "--target",
        default=env("RAG_TARGET", "local"),
        choices=TARGET_NAMES,
        help="where the stack runs (env RAG_TARGET; default local)",
    )
    group.addoption(
        "--keep",
        action="store_true",
        default=env("RAG_KEEP", "") == "1",
        help="leave a stack this session deployed running",
    )
    group.addoption(
        "--namespace", default=env("RAG_NAMESPACE", ""), help="kind/existing: namespace (default: one per run)"
    )
    group.addoption("--values", action="append", default=[], metavar="FILE", help="extra values overlay (repeatable)")
    group.addoption(
        "--run-name", default=env("RAG_RUN_NAME", "default"), help="local: run folder / stack name (env RAG_RUN_NAME)"
    )
    group.addoption(
        "--maas-endpoint",
        default=env("MAAS_ENDPOINT", ""),
        help="MaaS base URL (env MAAS_ENDPOINT); `standin` starts the stand-in MaaS (harness.maas_standin)",
    )
    # No --maas-api-key option: the key is read from MAAS_API_KEY only, never from a command line.
    group.addoption(
        "--maas-model",
        default=env("MAAS_MODEL", ""),
        help="MaaS model id to use (env MAAS_MODEL; default: all discovered)",
    )


def pytest_configure(config: pytest.Config) -> None:
    for name, text in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {text}")
    sigterm_interrupts()  # SIGTERM unwinds like Ctrl-C: fixtures that started stacks stop them
    try:  # every chart test, meta copy and target renders from CHARTS_DIR
        refuse_stale_archives(CHARTS_DIR)
    except StaleArchives as exc:
        raise pytest.UsageError(exc.summary) from None
    opt = config.getoption
    maas = replace(MaasSettings.from_env(), endpoint=opt("--maas-endpoint"), model=opt("--maas-model"))
    options = TargetOptions(
        namespace=opt("--namespace"),
        keep=opt("--keep"),
        values=[Path(v).resolve() for v in opt("--values")],
        maas=bool(maas.endpoint) and not maas.is_standin,  # cluster targets: values/kind-maas.yaml
        run_name=opt("--run-name"),
    )
    state = HarnessState(opt("--target"), options, maas)
    state.add_secrets(maas.api_key)
    config.stash[_STATE] = state


def _state(config: pytest.Config) -> HarnessState:
    return config.stash[_STATE]


# --- fixtures -----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def harness_state(pytestconfig: pytest.Config) -> HarnessState:
    return _state(pytestconfig)


@pytest.fixture(scope="session")
def maas(harness_state: HarnessState, request: pytest.FixtureRequest) -> Iterator[MaasSettings]:
    """The MaaS under test. MAAS_ENDPOINT=standin starts (or reuses) the stand-in MaaS and
    uses one of its enterprise keys and its CA bundle; MAAS_MODEL defaults to its model with a slash.

    The stand-in runs where the target's llama-stack reaches this machine's processes
    (`Target.maas_standin_host()`): 127.0.0.1 for the local target; on the kube target the node
    address inside the cluster's network namespace, so the cluster is started first (it moves
    this process into that namespace, and the stand-in's processes start there too)."""
    if not harness_state.maas.is_standin:
        yield harness_state.maas
        return
    target = request.getfixturevalue("target")
    if Capability.MAAS_STANDIN not in target.capabilities:
        pytest.fail(
            f"MAAS_ENDPOINT=standin: the stand-in MaaS runs on this machine, which the {harness_state.target_name} "
            "target's pods do not reach; use --target local or --target kube, or a real MAAS_ENDPOINT"
        )
    host = target.maas_standin_host()
    if host != LOOPBACK:
        request.getfixturevalue("endpoints")  # the cluster (and its network namespace) exists from here on
    standin = StandinMaas(RUN_NAME if host == LOOPBACK else f"{RUN_NAME}-{harness_state.target_name}", host=host)
    found = standin.running()
    started = found is None
    found = found or standin.up()
    harness_state.add_secrets(*found.secrets)
    harness_state.standin = found
    harness_state.maas = found.settings(model=harness_state.maas.model or MODELS[0])
    if started:
        harness_state.stop_standin = standin.down
    yield harness_state.maas
    if not harness_state.options.keep:
        harness_state.stop_standin_now()


REQUIRE_ENV = "RAG_REQUIRE_TOOLS"


def require_target_prerequisites(target_name: str) -> None:
    """Skip (fail under RAG_REQUIRE_TOOLS=1) when the machine lacks what the target needs, naming it."""
    if target_name != "kube":
        return
    if found := prereqs.problems():
        reason = "kube target: " + "; ".join(found)
        if os.environ.get(REQUIRE_ENV, "") not in ("", "0", "false", "no"):
            pytest.fail(f"{reason} ({REQUIRE_ENV}=1 turns this skip into a failure)", pytrace=False)
        pytest.skip(reason)


@pytest.fixture(scope="session")
def target(harness_state: HarnessState) -> Target:
    require_target_prerequisites(harness_state.target_name)
    if harness_state.target is None:
        harness_state.target = get_target(harness_state.target_name, harness_state.options)
    return harness_state.target


@pytest.fixture(scope="session")
def endpoints(harness_state: HarnessState, target: Target) -> Iterator[Endpoints]:
    """Reuse a running stack started with the same values, or deploy one (removed at the end unless --keep).

    Every e2e test needs this stack, so a failure here ends the session once, with one
    message, instead of repeating the same error in every test's setup.
    """
    started = False
    try:
        found = target.status()
    except Exception as error:  # any failure means "nothing usable runs": deploy
        print(f"\n[rag_harness] no running {harness_state.target_name} stack ({type(error).__name__}); deploying")
        t0 = time.monotonic()
        try:
            found = target.up()
        except Exception as up_error:
            if not harness_state.options.keep:
                target.down()  # leave no half-started stack behind
            _end_session(f"the {harness_state.target_name} stack did not start", up_error)
        started = True
        print(f"[rag_harness] {harness_state.target_name} stack up in {time.monotonic() - t0:.1f}s")
    else:
        _refuse_other_values(harness_state, found)
    harness_state.endpoints = found
    harness_state.add_secrets(*(k for keys in found.keys.values() for k in keys))
    yield found
    if started and not harness_state.options.keep:
        target.down()


def _end_session(what: str, error: Exception) -> None:
    """Stop the whole session with one message: the error's detail, then what failed and what to do.

    An error that is not a HarnessError is a harness bug: its traceback is part of the message.
    """
    if isinstance(error, HarnessError):
        detail, summary = error.detail, error.summary
    else:
        detail, summary = "".join(traceback.format_exception(error)).strip(), f"{type(error).__name__}: {error}"
    pytest.exit(f"{detail}\n{what}: {summary}" if detail else f"{what}: {summary}", returncode=1)


def _refuse_other_values(state: HarnessState, found: Endpoints) -> None:
    """A running stack started with other overlays would prove a configuration nobody asked for."""
    if found.values is None:
        return  # the target does not record its overlays
    wanted = fingerprints(state.options.values)
    if found.values != wanted:
        running = ", ".join(found.values) or "no extra values"
        asked = ", ".join(wanted) or "no extra values"
        _end_session(
            f"the running {state.target_name} stack does not match this run",
            HarnessError(
                f"it was started with {running}; this run asks for {asked}. "
                f"Stop it (`make down`) and re-run, or use another stack name (RAG_RUN_NAME=NAME)"
            ),
        )


@pytest.fixture(scope="session")
def gateway_url(endpoints: Endpoints, declared: Declared) -> str:
    if not endpoints.gateway_url:
        if declared.gateway_enabled:
            pytest.fail(f"the values ({declared.describe()}) enable the gateway, but the target exposes no gateway URL")
        pytest.skip(f"the values ({declared.describe()}) disable the gateway (maas-gateway.enabled)")
    return endpoints.gateway_url.rstrip("/")


@pytest.fixture(scope="session")
def llama_stack_url(endpoints: Endpoints, registration: reg.Report | None) -> str:
    """llama-stack's URL, after the session's MaaS registration: that registration restarts
    llama-stack, so it must happen before any test creates data or opens connections."""
    if not endpoints.llama_stack_url:
        pytest.skip("target exposes no llama-stack URL")
    return endpoints.llama_stack_url.rstrip("/")


@pytest.fixture(scope="session")
def llama_stack_key(endpoints: Endpoints) -> str:
    """The key the harness's own llama-stack clients authenticate with (and spend)."""
    return endpoints.llama_stack_key()


@pytest.fixture(scope="session")
def llama_client(llama_stack_url: str, llama_stack_key: str) -> LlamaStackClient:
    from llama_stack_client import LlamaStackClient  # lazy: only e2e tests pay its import time

    headers = llama_stack_auth.caller_headers(llama_stack_key)
    return LlamaStackClient(base_url=llama_stack_url, timeout=60, default_headers=headers)


def openai_llama_client(llama_stack_url: str, key: str) -> OpenAI:
    """The OpenAI client on llama-stack's OpenAI-compatible routes as the caller owning `key`
    (Bearer auth plus the key in provider data, see harness.llama_stack_auth); no retries, so a
    429 reaches the test. An empty key sends a key no gateway knows and no provider data."""
    from openai import OpenAI  # lazy: only e2e tests pay its import time

    headers = llama_stack_auth.caller_headers(key)
    headers.pop("Authorization", None)  # the client sets it from api_key
    return OpenAI(
        base_url=llama_stack_url + "/v1", api_key=key or "none", timeout=60, max_retries=0, default_headers=headers
    )


@pytest.fixture(scope="session")
def llama_stack_as(llama_stack_url: str) -> Callable[[str], OpenAI]:
    """A factory: the OpenAI client on llama-stack for the caller owning a given key."""
    return lambda key: openai_llama_client(llama_stack_url, key)


@pytest.fixture(scope="session")
def openai_llama(llama_stack_url: str, llama_stack_key: str) -> OpenAI:
    """The OpenAI client pointed at llama-stack's OpenAI-compatible routes (works for OGX too)."""
    return openai_llama_client(llama_stack_url, llama_stack_key)


@pytest.fixture(scope="session")
def key_pool(endpoints: Endpoints, pytestconfig: pytest.Config) -> Iterator[KeyPool]:
    ledger = Path(endpoints.run_dir) / "e2e-key-ledger.json" if endpoints.run_dir else None
    pool = KeyPool(endpoints.keys, ledger, scope=endpoints.gateway_url, notify=_uncaptured(pytestconfig))
    yield pool
    pool.close()


def _uncaptured(config: pytest.Config) -> Any:
    """A print that reaches the terminal while a test runs (pytest captures test output)."""
    capture = config.pluginmanager.getplugin("capturemanager")

    def say(message: str) -> None:
        if capture is None:
            print(message, flush=True)
            return
        with capture.global_and_fixture_disabled():
            print(message, flush=True)

    return say


@pytest.fixture(scope="session")
def registration(
    harness_state: HarnessState, maas: MaasSettings, target: Target, endpoints: Endpoints
) -> reg.Report | None:
    """With a MaaS configured: register MAAS_MODEL (or every model it lists), report.

    Without one the stack's own gateway + simulator already play MaaS: nothing to do.
    """
    if not maas.configured:
        return None
    declared = reg.base_models(harness_state.target_name, harness_state.options.values)
    report = reg.register_maas(target, endpoints.llama_stack_url, maas, declared=declared)
    print("\n" + redact(report.render(), harness_state.secrets))
    return report


@pytest.fixture(scope="session")
def chat_models(registration: reg.Report | None, llama_stack_url: str, maas: MaasSettings) -> list[str]:
    """llama-stack ids of the LLMs to exercise; skips (never passes) when none is reachable."""
    if registration is not None:
        wanted = registration.registered + registration.already
        if not wanted:
            pytest.skip(f"no MaaS model reachable: {redact(registration.render(), [maas.api_key])}")
        return [m for m in wanted if not maas.model or m.endswith("/" + maas.model)] or wanted
    status, payload = http.json_request("GET", llama_stack_url + "/v1/models")
    models = llm_ids(payload) if status == 200 else []
    if not models:
        pytest.skip(f"no LLM registered in llama-stack at {llama_stack_url} (GET /v1/models -> {status})")
    return models


def llm_ids(payload: Any) -> list[str]:
    """LLM ids from llama-stack's /v1/models; embedding models carry model_type=embedding."""
    items = payload.get("data", []) if isinstance(payload, dict) else []
    return [str(m["id"]) for m in items if isinstance(m, dict) and "id" in m and _model_type(m) == "llm"]


def _model_type(item: dict[str, Any]) -> str:
    meta = item.get("custom_metadata") or item.get("metadata") or {}
    return str(item.get("model_type") or meta.get("model_type") or "llm")


@pytest.fixture(scope="session")
def chat_model(chat_models: list[str]) -> str:
    return chat_models[0]


@pytest.fixture(scope="session")
def declared(harness_state: HarnessState, target: Target) -> Declared:
    """What the deployed stack's values declare (chart defaults + the target's values files)."""
    return Declared.from_files(declared_values_files(harness_state, target))


def declared_values_files(state: HarnessState, target: Target) -> list[Path]:
    """The values files the target deploys with, in Helm's order (later wins)."""
    if state.target_name == "local":
        return RunFolder.named(state.options.run_name).values_files()
    if isinstance(target, ClusterTarget):
        return target.values()
    return [VALUES_DIR / f"{state.target_name}.yaml", *state.options.values]


@pytest.fixture(scope="session")
def gateway_model(endpoints: Endpoints, gateway_url: str, declared: Declared) -> str:
    """The first model the gateway lists; fails when the values declare a served model and it lists none."""
    if not endpoints.gateway_models:
        if declared.served_models:
            pytest.fail(
                f"the gateway at {gateway_url} lists no model, but the values ({declared.describe()}) "
                f"declare the served model(s) {declared.served_models}"
            )
        pytest.skip(f"the values ({declared.describe()}) declare no model server and the gateway lists no model")
    return endpoints.gateway_models[0]


@dataclass
class ModelCalls:
    """What the stack's model server received, one record per model call (the local target's
    recording tap, harness.local.model_tap, keeps them: path and JSON body, never headers), read
    from its record files."""

    files: list[Path] = field(default_factory=list)

    def records(self) -> list[dict[str, Any]]:
        """Every recorded call, oldest first (slice from an earlier len() to see new ones)."""
        return [json.loads(line) for path in self.files for line in path.read_text(encoding="utf-8").splitlines()]

    def containing(self, marker: str) -> list[dict[str, Any]]:
        """Records whose body mentions `marker` (a unique string the test put in its request)."""
        return [record for record in self.records() if marker in json.dumps(record["body"])]


@pytest.fixture(scope="session")
def model_calls(harness_state: HarnessState, target: Target, endpoints: Endpoints) -> ModelCalls:
    if harness_state.target_name != "local" or not endpoints.run_dir:
        pytest.skip(
            f"the {harness_state.target_name} target's model server records nothing: the real simulator does not "
            "report the calls it receives (only the local target's recording tap does)"
        )
    files = sorted(Path(endpoints.run_dir).glob(f"work/*/{MODEL_CALLS_FILE}"))
    if not files:
        pytest.fail(f"the local model server records no calls under {endpoints.run_dir}/work (restart the stack)")
    return ModelCalls(files)


@pytest.fixture(scope="session")
def pgvector_rows(
    harness_state: HarnessState, target: Target, endpoints: Endpoints, declared: Declared
) -> Callable[[str], Rows]:
    """A function store id -> Rows read from the stack's PostgreSQL (see harness.vector_rows)."""

    if declared.vector_store_provider != "pgvector":
        pytest.skip(f"the values ({declared.describe()}) declare the vector store {declared.vector_store_provider!r}")
    if Capability.POSTGRES in target.capabilities:  # cluster targets: a port-forward to the release's PostgreSQL
        dsn = target.postgres_dsn()
        harness_state.add_secrets(dsn.password)
        return lambda store_id: read_rows(dsn, store_id)
    if harness_state.target_name != "local" or not endpoints.run_dir:
        pytest.skip(f"the {harness_state.target_name} target exposes no PostgreSQL connection to the tests")
    run = RunFolder.named(harness_state.options.run_name)
    password = json.loads((run.values_dir / "secrets.yaml").read_text())["pgvector"]["auth"]["password"]
    harness_state.add_secrets(password)
    database = declared.values.get("pgvector") or {}
    dsn = Dsn("127.0.0.1", int(run.get("ports")["pgvector"]), database["user"], password, database["database"])
    return lambda store_id: read_rows(dsn, store_id)


@pytest.fixture(scope="session")
def secrets(harness_state: HarnessState, endpoints: Endpoints) -> set[str]:
    """Every key the session knows, for tests that must prove none leaks."""
    return harness_state.secrets


# --- failure diagnostics and redaction ----------------------------------------------------


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Generator[None, Any, None]:
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    state = item.config.stash.get(_STATE, None)
    if state is None:
        return
    if report.failed and state.endpoints is not None and "endpoints" in getattr(item, "fixturenames", ()):
        _diagnose(state, item, report)
    _redact_report(report, state.secrets)


def _diagnose(state: HarnessState, item: pytest.Item, report: pytest.TestReport) -> None:
    if len(state.diagnoses) >= MAX_DIAGNOSES or state.target is None or state.endpoints is None:
        return
    # Never the working directory: a run writes only under its run folder (or .cache/runs).
    run_dir = Path(state.endpoints.run_dir) if state.endpoints.run_dir else RUNS_DIR
    root = Path(os.environ.get("RAG_DIAGNOSTICS_DIR") or run_dir / "diagnostics")
    dest = root / re.sub(r"[^\w.-]+", "_", item.nodeid)[-120:]
    try:
        path = state.target.diagnose(dest)
    except Exception as error:  # diagnostics must never hide the real failure
        report.sections.append(("rag diagnostics", f"diagnose() failed: {type(error).__name__}: {error}"))
        return
    state.diagnoses.append((item.nodeid, Path(path)))
    report.sections.append(("rag diagnostics", f"diagnostics written to {path}"))


def _redact_report(report: pytest.TestReport, secrets: set[str]) -> None:
    """Mask keys in the failure text and captured output before anything prints them."""
    if not secrets:
        return
    if report.longrepr is not None:
        text = str(report.longrepr)
        if any(s in text for s in secrets):
            report.longrepr = mask_known(text, secrets)
    report.sections = [(title, mask_known(body, secrets)) for title, body in report.sections]


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    _workflow_summary(terminalreporter)
    state = config.stash.get(_STATE, None)
    if state is None or not state.diagnoses:
        return
    terminalreporter.section("rag diagnostics")
    for nodeid, path in state.diagnoses:
        terminalreporter.write_line(f"{nodeid}: {path}")


def _workflow_summary(terminalreporter: Any) -> None:
    """One line per e2e area (the module name: models, chat, rag, auth, ratelimit).

    `ok`: a test passed and none failed. `FAIL`: a test failed or errored (the run exits non-zero).
    `skipped (why)`: no test of the area ran here, with the skip reasons. `not ok` is printed only
    for failures, so it always comes with a non-zero exit.
    """
    counts: dict[str, dict[str, int]] = {}
    reasons: dict[str, list[str]] = {}
    for outcome in ("passed", "failed", "skipped", "error"):
        for report in terminalreporter.stats.get(outcome, []):
            path = getattr(report, "nodeid", "").split("::")[0]
            if not path.startswith("tests/e2e/test_") or getattr(report, "when", "call") == "teardown":
                continue
            area = path.removeprefix("tests/e2e/test_").removesuffix(".py")
            counts.setdefault(area, {}).setdefault(outcome, 0)
            counts[area][outcome] += 1
            if outcome == "skipped":
                reason = _skip_reason(report)
                if reason not in reasons.setdefault(area, []):
                    reasons[area].append(reason)
    if not counts:
        return
    terminalreporter.section("end-to-end workflows")
    for area, by_outcome in sorted(counts.items()):
        detail = ", ".join(f"{n} {o}" for o, n in by_outcome.items())
        if by_outcome.get("failed") or by_outcome.get("error"):
            line = f"FAIL  {area:<10} {detail}"
        elif by_outcome.get("passed"):
            line = f"  ok  {area:<10} {detail}"
        else:
            line = f"skipped {area:<10} {detail} ({'; '.join(reasons.get(area, [])) or 'no reason given'})"
        terminalreporter.write_line(line)
    failed = sorted(area for area, by_outcome in counts.items() if by_outcome.get("failed") or by_outcome.get("error"))
    if failed:
        terminalreporter.write_line(f"not ok: tests failed in {', '.join(failed)}")


def _skip_reason(report: Any) -> str:
    """The reason a skipped report gives (pytest stores it as (path, line, "Skipped: reason"))."""
    longrepr = getattr(report, "longrepr", None)
    reason = longrepr[2] if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr or "")
    return str(reason).removeprefix("Skipped: ")
