"""Usage you can bill from: after a scripted set of calls (a chat, a streamed chat, an aborted stream,
a call to a weighted model, and one refusal per tier budget, per model budget, per model rule and
per bad key), the gateway's metrics per user and model equal what the gateway charged: the usage
its responses reported, the estimate of the aborted stream, the weighted charge its budgets
counted. The bill `python -m harness usage` reads from the stack's Prometheus equals it too, its
plot ends at each user's tokens, and every panel of the shipped dashboard shows the calls. The
metrics name users, never keys, whatever way a client sends its key.

The numbers are read from the gateway's own metrics port (GET /metrics), before and after: each
series must move by exactly what the calls made it owe.
"""

from __future__ import annotations

import json
import math
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from harness import gateway_keys, usage_metrics, usage_report
from harness.capabilities import Capability
from harness.declared import Declared
from harness.endpoints import Endpoints
from harness.targets import Target
from harness.usage_metrics import CHARGED, DURATION, REFUSALS, REQUESTS, TOKENS, TTFT, Sample

from .support import (
    TIER_REQUESTS,
    Gateway,
    Reply,
    aborted_stream,
    await_window,
    harness_cli,
    remaining_tokens,
    words,
)

pytestmark = [pytest.mark.e2e, pytest.mark.metering]

TEST_SPAN_S = 20.0
# Counters move when a call ends; histograms show at Envoy's next stats flush (every 5 s).
STATS_FLUSH_S = 5.5
SETTLE_S = 15.0
POLL_S = 0.5
MAX_SPEND_ATTEMPTS = TIER_REQUESTS["free"] - 1
MAX_MODEL_ATTEMPTS = 8  # calls of about 100 tokens against a model budget of a few hundred per minute

Series = tuple[str, tuple[tuple[str, str], ...]]


class Scrape:
    """The gateway's metrics port, read whole."""

    def __init__(self, url: str) -> None:
        self.url = url

    def text(self) -> str:
        return usage_metrics.scrape(self.url)

    def __call__(self) -> list[Sample]:
        return usage_metrics.parse(self.text())


def series(name: str, **labels: str) -> Series:
    return name, tuple(sorted(labels.items()))


def weighted(prompt: float, completion: float, w_in: float, w_out: float) -> int:
    """The gateway's weighted charge: ceil(prompt * input + completion * output)."""
    return math.ceil(prompt * w_in + completion * w_out - 1e-9)


class Bill:
    """What the scripted calls owe, series by series."""

    def __init__(self) -> None:
        self.owed: dict[Series, float] = defaultdict(float)
        self.served: dict[str, int] = defaultdict(int)  # model -> 2xx calls (the latency histograms)
        # model -> aborted streams: reset by the client after the headers, perhaps before the first
        # byte of the answer (then they have a duration but no time to first token).
        self.aborted: dict[str, int] = defaultdict(int)

    def call(self, user: str, tier: str, model: str, code: int, *, prompt: int = 0, completion: int = 0,
             charged: int = 0, refused: str = "") -> None:  # fmt: skip
        who = {"user": user, "tier": tier, "model": model}
        self.owed[series(TOKENS, **who, token_type="input")] += prompt
        self.owed[series(TOKENS, **who, token_type="output")] += completion
        self.owed[series(CHARGED, **who)] += charged
        self.owed[series(REQUESTS, **who, code=str(code))] += 1
        if refused:
            self.owed[series(REFUSALS, **who, budget=refused)] += 1
        if 200 <= code < 300:
            self.served[model] += 1

    def answered(self, user: str, tier: str, model: str, reply: Reply) -> None:
        """A 200 whose usage (JSON body or final chunk) the gateway charged with the model's weights."""
        assert reply.status == 200, reply.describe()
        usage = reply.usage
        assert usage.get("prompt_tokens") is not None and usage.get("completion_tokens") is not None, (
            f"a model call without usage parts: {reply.describe()}"
        )
        w_in, w_out = weights(reply)
        charged = weighted(usage["prompt_tokens"], usage["completion_tokens"], w_in, w_out)
        if reply.rate.consumed_tokens is not None:  # JSON answers say what they were charged
            assert reply.rate.consumed_tokens == charged, reply.describe()
        self.call(user, tier, model, 200, prompt=usage["prompt_tokens"], completion=usage["completion_tokens"],
                  charged=charged)  # fmt: skip


def weights(reply: Reply) -> tuple[float, float]:
    return (
        float(reply.headers.get("x-maas-token-cost-input", "1")),
        float(reply.headers.get("x-maas-token-cost-output", "1")),
    )


def delta(before: list[Sample], after: list[Sample], key: Series) -> float:
    name, labels = key
    return usage_metrics.total(after, name, **dict(labels)) - usage_metrics.total(before, name, **dict(labels))


def histogram_count(samples: list[Sample], name: str, model: str) -> float:
    return usage_metrics.total(samples, name + "_count", model=model)


@pytest.fixture(scope="module")
def scrape(target: Target, declared: Declared) -> Scrape:
    if not declared.gateway_metrics():
        pytest.skip(f"the values ({declared.describe()}) turn the gateway's metrics off (maas-gateway.metrics.enabled)")
    return Scrape(f"http://127.0.0.1:{target.internal_port('gateway_metrics')}")


@pytest.fixture(scope="module")
def user_of(target: Target, secrets: set[str]) -> Callable[[str], str]:
    """The user name the key store holds for a key (the name the metrics must show)."""
    if Capability.KEY_STORE not in target.capabilities:
        pytest.skip(f"target {target.name!r} declares no key store (Capability.KEY_STORE) to name a key's user")
    store = target.key_store()
    secret = store.secret()
    secrets.add(secret)
    records = store.read()

    def find(key: str) -> str:
        digest = gateway_keys.hash_key(secret, key)
        users = [r.user for r in records if r.key == key or r.hash == digest]
        assert len(users) == 1, f"the key store holds {len(users)} records for a key of the pool"
        return users[0]

    return find


def spend_until_refused(
    gateway: Gateway, key: str, prompt: str, attempts: int = MAX_SPEND_ATTEMPTS
) -> tuple[list[Reply], Reply]:
    passed: list[Reply] = []
    for _ in range(attempts):
        reply = gateway.chat(key, prompt, max_tokens=1)
        if reply.status != 200:
            return passed, reply
        passed.append(reply)
    raise AssertionError(f"{len(passed)} calls of {len(prompt.split())} words passed the token budget")


@dataclass
class Scripted:
    """The scripted calls: what they owe, the gateway's metrics around them, and when they ran."""

    bill: Bill
    before: list[Sample]
    after: list[Sample]
    started: datetime
    ended: datetime
    aborted: Aborted


@dataclass(frozen=True)
class Aborted:
    """The aborted stream: whose, to which model, its request's size and max_tokens, its charge."""

    user: str
    model: str
    body_bytes: int
    max_tokens: int
    charged: int

    def tokens(self, before: list[Sample], after: list[Sample]) -> tuple[float, float]:
        """The input and output tokens the gateway's metrics counted for it."""
        who = {"user": self.user, "tier": "enterprise", "model": self.model}
        return (
            delta(before, after, series(TOKENS, **who, token_type="input")),
            delta(before, after, series(TOKENS, **who, token_type="output")),
        )


@pytest.fixture(scope="module")
def scripted(gateway: Gateway, key_pool, scrape: Scrape, user_of: Callable[[str], str], declared: Declared) -> Scripted:
    """Run the scripted calls once; the module's tests read what they owe and what was counted."""
    model = gateway.model
    routed = declared.routed_models()
    enterprise = key_pool.one("enterprise")
    aborter = key_pool.one("enterprise")  # the estimate can be large: a key of its own
    by_requests, by_tokens = key_pool.take("free", 2)
    by_model = key_pool.one("premium")  # its tier's budget is above the limited model's
    for key in (enterprise, aborter, by_requests, by_tokens, by_model):
        await_window(gateway, key, TEST_SPAN_S)
    bill = Bill()
    # Envoy merges histograms into what /metrics shows once per stats flush: let the calls of earlier
    # tests reach them before taking the starting point.
    time.sleep(STATS_FLUSH_S)
    before = scrape()
    started = datetime.now(UTC)

    # A chat and a streamed chat.
    user = user_of(enterprise)
    bill.answered(user, "enterprise", model, gateway.chat(enterprise, words(12), max_tokens=8))
    bill.answered(user, "enterprise", model, gateway.stream(enterprise, words(9), max_tokens=6))

    # A model with token weights, when the catalog has one for the tier.
    weighted_models = [
        m for m, e in routed.items() if e.allows("enterprise") and (e.cost_input, e.cost_output) != (1, 1)
    ]
    if weighted_models:
        other = Gateway(str(gateway.http.base_url), weighted_models[0])
        try:
            bill.answered(user, "enterprise", weighted_models[0], other.chat(enterprise, words(10), max_tokens=5))
        finally:
            other.http.close()

    # An aborted stream: charged the usage if its last chunk reached the gateway, else the estimate
    # (the request's bytes as prompt tokens plus max_tokens). The budget's drop is the charge.
    budget = remaining_tokens(gateway, aborter)
    max_tokens = 1000
    body = json.dumps({"model": model, "messages": [{"role": "user", "content": words(300)}],
                       "max_tokens": max_tokens, "stream": True}).encode()  # fmt: skip
    received = aborted_stream(str(gateway.http.base_url), aborter, body)
    assert received.startswith(b"HTTP/1.1 200"), f"the stream did not start: {received[:200]!r}"

    # A bad key, and a catalog model the free tier may not use.
    assert gateway.chat("sk-maas-not-a-key", "hello", max_tokens=1).status == 401
    bill.call("", "", "unknown", 401, refused="auth")
    forbidden = [m for m, e in routed.items() if not e.allows("free")]
    free_user = user_of(by_requests)
    if forbidden:
        other = Gateway(str(gateway.http.base_url), forbidden[0])
        try:
            reply = other.chat(by_requests, "hello", max_tokens=1)
        finally:
            other.http.close()
        assert reply.status == 403, reply.describe()
        bill.call(free_user, "free", forbidden[0], 403, refused="model_access")

    # The free tier's request budget, then its token budget (another key).
    for _ in range(TIER_REQUESTS["free"]):
        bill.answered(free_user, "free", model, gateway.chat(by_requests, "tiny", max_tokens=1))
    over = gateway.chat(by_requests, "tiny", max_tokens=1)
    assert over.status == 429 and over.headers.get("x-maas-ratelimit-exceeded") == "requests", over.describe()
    bill.call(free_user, "free", model, 429, refused="tier_requests")
    spender = user_of(by_tokens)
    passed, refused = spend_until_refused(gateway, by_tokens, words(120))
    for reply in passed:
        bill.answered(spender, "free", model, reply)
    assert refused.status == 429 and refused.headers.get("x-maas-ratelimit-exceeded") == "tokens", refused.describe()
    bill.call(spender, "free", model, 429, refused="tier_tokens")

    # A model's own token budget (shared by every caller), when the catalog gives one a premium key
    # may use.
    limited = [m for m, e in routed.items() if e.tpm is not None and e.allows("premium")]
    if limited:
        other = Gateway(str(gateway.http.base_url), limited[0])
        try:
            passed, refused = spend_until_refused(other, by_model, words(100), attempts=MAX_MODEL_ATTEMPTS)
        finally:
            other.http.close()
        for reply in passed:
            bill.answered(user_of(by_model), "premium", limited[0], reply)
        assert refused.status == 429, refused.describe()
        assert refused.headers.get("x-maas-ratelimit-exceeded") == "model_tokens", refused.describe()
        bill.call(user_of(by_model), "premium", limited[0], 429, refused="model_tokens")

    # The aborted stream's charge, read from its key's budget now that its stream has surely ended.
    charged = budget - remaining_tokens(gateway, aborter)
    assert charged > 0, "the aborted stream cost nothing"
    aborter_user = user_of(aborter)
    owed_aborted = series(CHARGED, user=aborter_user, tier="enterprise", model=model)
    bill.owed[owed_aborted] += charged
    bill.owed[series(REQUESTS, user=aborter_user, tier="enterprise", model=model, code="200")] += 1
    bill.served[model] += 1
    bill.aborted[model] += 1

    ended = datetime.now(UTC)
    after = wait_for_metrics(scrape, before, bill)
    return Scripted(bill, before, after, started, ended, Aborted(aborter_user, model, len(body), max_tokens, charged))


def test_metrics_equal_what_the_gateway_charged(scripted: Scripted) -> None:
    bill, before, after, aborted = scripted.bill, scripted.before, scripted.after, scripted.aborted
    mismatches = {
        f"{name}{dict(labels)}": (delta(before, after, (name, labels)), owed)
        for (name, labels), owed in bill.owed.items()
        if delta(before, after, (name, labels)) != owed
    }
    assert not mismatches, f"metric moved by (got, owed): {mismatches}"

    # The aborted stream's tokens: the estimate's parts when the estimate was charged; any split
    # the model's weights turn into the charge when its usage arrived.
    got_in, got_out = aborted.tokens(before, after)
    if aborted.charged == weighted(aborted.body_bytes, aborted.max_tokens, 1, 1):
        assert (got_in, got_out) == (aborted.body_bytes, aborted.max_tokens), (
            f"the aborted stream's estimate metered as {got_in}+{got_out}"
        )
    else:
        assert weighted(got_in, got_out, 1, 1) == aborted.charged, (
            f"metered {got_in}+{got_out} tokens for a charge of {aborted.charged}"
        )

    for m, count in bill.served.items():
        moved = histogram_count(after, DURATION, m) - histogram_count(before, DURATION, m)
        assert moved == count, f"{DURATION} of {m} counted {moved} answered calls; {count} were answered"
        first = histogram_count(after, TTFT, m) - histogram_count(before, TTFT, m)
        assert count - bill.aborted[m] <= first <= count, (
            f"{TTFT} of {m} counted {first} answered calls; {count} were answered ({bill.aborted[m]} aborted)"
        )


def wait_for_metrics(scrape: Scrape, before: list[Sample], bill: Bill) -> list[Sample]:
    """The metrics once every owed series and histogram has moved (or SETTLE_S has passed)."""
    deadline = time.monotonic() + SETTLE_S
    while True:
        after = scrape()
        counters_done = all(delta(before, after, key) >= owed for key, owed in bill.owed.items())
        histograms_done = all(
            histogram_count(after, name, m) - histogram_count(before, name, m) >= count - bill.aborted[m]
            for name in (DURATION, TTFT)
            for m, count in bill.served.items()
        )
        if (counters_done and histograms_done) or time.monotonic() > deadline:
            return after
        time.sleep(POLL_S)


# --- the bill, from the stack's Prometheus -------------------------------------------------------

PROMETHEUS_SETTLE_S = 30.0  # a few scrape intervals (the rag chart scrapes every 5 s)
# Once Prometheus holds the gateway's counts of the script's end: one more scrape interval and a second.
PROMETHEUS_LAST_SCRAPE_S = 6.0


@pytest.fixture(scope="module")
def prometheus(endpoints: Endpoints, declared: Declared) -> Iterator[usage_report.Prometheus]:
    if not endpoints.prometheus_url:
        pytest.skip(f"the stack runs no Prometheus (the values ({declared.describe()}) leave prometheus.enabled off)")
    prom = usage_report.Prometheus(endpoints.prometheus_url)
    yield prom
    prom.close()


def owed_by_user(scripted: Scripted) -> dict[str, dict[str, float]]:
    """What the script's users owe, column by column (the aborted stream's tokens as the gateway
    counted them: the test above holds those to its charge)."""
    rows: dict[str, dict[str, float]] = defaultdict(lambda: dict.fromkeys(usage_report.COLUMNS, 0.0))
    for (name, labels), amount in scripted.bill.owed.items():
        found = dict(labels)
        column = next(
            c for c, (metric, match) in usage_report.COLUMNS.items()
            if metric == name and all(found.get(k) == v for k, v in match.items())
        )  # fmt: skip
        rows[found["user"] or usage_report.UNNAMED][column] += amount
    got_in, got_out = scripted.aborted.tokens(scripted.before, scripted.after)
    rows[scripted.aborted.user]["input_tokens"] += got_in
    rows[scripted.aborted.user]["output_tokens"] += got_out
    rows.pop(usage_report.UNNAMED, None)  # unauthenticated calls: later tests add theirs
    return dict(rows)


def script_window(scripted: Scripted) -> usage_report.Window:
    """From just before the script to now, in whole seconds (what `--since`/`--until` can name)."""
    start = scripted.started.replace(microsecond=0) - timedelta(seconds=1)
    return usage_report.Window(start, datetime.now(UTC).replace(microsecond=0))


def caught_up(prom: usage_report.Prometheus, scripted: Scripted) -> bool:
    """Whether Prometheus has scraped the gateway since the script: its count of the gateway's requests
    reached what the gateway's own metrics counted when the script ended."""
    result = prom.query(f"sum({REQUESTS})", datetime.now(UTC))
    return bool(result) and float(result[0]["value"][1]) >= usage_metrics.total(scripted.after, REQUESTS)


def settled_bill(prom: usage_report.Prometheus, scripted: Scripted, by: str = "user") -> usage_report.Bill:
    """The bill of the script's window, once Prometheus has scraped the gateway after the script. It
    is read until it equals what the script owes, for at most PROMETHEUS_LAST_SCRAPE_S once Prometheus
    has caught up (a wrong bill is then final: waiting longer cannot change it)."""
    owed = owed_by_user(scripted)
    deadline = time.monotonic() + PROMETHEUS_SETTLE_S
    while True:
        bill = usage_report.bill(prom, script_window(scripted), by)
        if by != "user" or all(bill.rows.get(u) == row for u, row in owed.items()) or time.monotonic() > deadline:
            return bill
        if caught_up(prom, scripted):
            deadline = min(deadline, time.monotonic() + PROMETHEUS_LAST_SCRAPE_S)
        time.sleep(POLL_S)


def test_prometheus_bill_equals_the_charges(prometheus: usage_report.Prometheus, scripted: Scripted) -> None:
    bill = settled_bill(prometheus, scripted)
    owed = owed_by_user(scripted)
    wrong = {u: (bill.rows.get(u), row) for u, row in owed.items() if bill.rows.get(u) != row}
    assert not wrong, f"Prometheus's bill (got, owed) per user: {wrong}"
    by_model = usage_report.bill(prometheus, bill.window, "model")
    assert by_model.totals() == bill.totals(), f"by model {by_model.totals()} != by user {bill.totals()}"


def test_usage_command_prints_and_plots_the_bill(
    prometheus: usage_report.Prometheus, scripted: Scripted, target: Target, secrets: set[str], tmp_path: Path
) -> None:
    owed = owed_by_user(scripted)
    settled_bill(prometheus, scripted)
    window = script_window(scripted)
    png = tmp_path / "usage.png"
    since, until = (at.strftime("%Y-%m-%dT%H:%M:%SZ") for at in (window.start, window.end))
    result = harness_cli(target, "usage", "--since", since, "--until", until, "--format", "json", "--plot", str(png))
    assert result.returncode == 0, f"exit {result.returncode}: {result.stderr}"
    leaked = sum(1 for secret in secrets if secret and secret in result.stdout + result.stderr)
    assert not leaked, f"{leaked} key(s) or secret(s) appear in the usage report (withheld here)"
    report = json.loads(result.stdout)
    assert report["source"].startswith("Prometheus at http"), report["source"]
    assert (report["window"]["start"], report["window"]["end"]) == (since, until), report["window"]
    rows = {row["user"]: {c: row[c] for c in usage_report.COLUMNS} for row in report["rows"]}
    wrong = {u: (rows.get(u), row) for u, row in owed.items() if rows.get(u) != row}
    assert not wrong, f"`harness usage` (got, owed) per user: {wrong}"
    assert png.read_bytes().startswith(b"\x89PNG"), "--plot wrote no PNG"

    # What the plot draws: one line per user, ending at the user's tokens (input + output).
    drawn = usage_report.plot(usage_report.cumulative_tokens(prometheus, window, "user"), window, "user",
                              prometheus.url, tmp_path / "check.png")  # fmt: skip
    ends = {user: ys[-1] for user, ys in drawn.items() if user in owed}
    expected = {user: row["input_tokens"] + row["output_tokens"] for user, row in owed.items()}
    assert ends == expected, f"the plotted lines end at {ends}; the users' tokens are {expected}"


DASHBOARD_FILE = "maas-usage.json"  # the key of the dashboard ConfigMap (maas-gateway metrics.dashboard)
# Grafana's interval variables, which the test sets to the time since the script began: the
# panels must show the script's calls, not what the stack counted before.
GRAFANA_VARIABLES = ("$__rate_interval", "$__range")


def test_every_dashboard_panel_returns_data(
    prometheus: usage_report.Prometheus, scripted: Scripted, target: Target, gateway: Gateway, key_pool
) -> None:
    """Each panel's query of the dashboard the release ships, run on the stack's Prometheus after the
    scripted calls and a few more (rates need a series to change between two scrapes: a stack that
    serves traffic, not one burst), returns at least one series with a number."""
    settled_bill(prometheus, scripted)
    key = key_pool.shared("enterprise")
    for _ in range(2):
        assert gateway.chat(key, words(5), max_tokens=2).status == 200
        assert gateway.stream(key, words(4), max_tokens=2).status == 200
    shipped = [
        o for o in target.rendered_objects() if o.get("kind") == "ConfigMap" and DASHBOARD_FILE in (o.get("data") or {})
    ]
    assert len(shipped) == 1, f"the release renders {len(shipped)} ConfigMaps with {DASHBOARD_FILE}"
    dashboard = json.loads(shipped[0]["data"][DASHBOARD_FILE])
    assert dashboard["panels"], "the dashboard has no panels"
    deadline = time.monotonic() + PROMETHEUS_SETTLE_S
    while (empty := panels_without_data(prometheus, dashboard, scripted.started)) and time.monotonic() < deadline:
        time.sleep(POLL_S)
    assert not empty, "panels whose query returns no number:\n" + "\n".join(empty)


def panels_without_data(prometheus: usage_report.Prometheus, dashboard: dict, since: datetime) -> list[str]:
    empty = []
    interval = f"{math.ceil((datetime.now(UTC) - since).total_seconds())}s"
    for panel in dashboard["panels"]:
        assert panel.get("targets"), f"panel {panel['title']!r} has no query"
        for query in panel["targets"]:
            expr = query["expr"]
            for variable in GRAFANA_VARIABLES:
                expr = expr.replace(variable, interval)
            result = prometheus.query(expr, datetime.now(UTC))
            if not any(math.isfinite(float(r["value"][1])) for r in result):
                empty.append(f"{panel['title']}: {expr}")
    return empty


def test_metrics_name_users_never_keys(
    gateway: Gateway, key_pool, scrape: Scrape, user_of: Callable[[str], str], secrets: set[str]
) -> None:
    """A key sent in the header, in the query string or in the body, valid or not, never becomes a
    label: the series name the key's user."""
    key = key_pool.shared("enterprise")
    bogus = "sk-maas-bogus-key-for-the-metrics-test"
    secrets.add(bogus)
    http = gateway.http
    body = {"model": gateway.model, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 1}
    http.post("/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {key}"})
    http.post(f"/v1/chat/completions?api_key={bogus}", json={**body, "api_key": bogus})
    http.post("/v1/chat/completions", json={**body, "user": bogus}, headers={"Authorization": f"APIKEY {bogus}"})
    http.post("/v1/chat/completions", json={**body, "user": key}, headers={"Authorization": f"Bearer {key}"})
    text = scrape.text()
    samples = usage_metrics.parse(text)
    users = {s.labels.get("user") for s in samples if s.name.startswith(usage_metrics.PREFIX)}
    assert user_of(key) in users, f"no series names the caller's user; users seen: {sorted(u for u in users if u)}"
    leaked = sum(1 for secret in secrets if secret and secret in text)
    assert not leaked, f"{leaked} key(s) or secret(s) appear in the gateway's metrics (withheld here)"


# Envoy's stats access logger, for a counter whose value is not a number (it then counts nothing).
NOT_A_NUMBER = "computed non-number value"
# The access loggers run as each call ends, and Envoy's log is flushed about every second.
LOG_SETTLE_S = 2.0


def test_refused_calls_give_every_counter_a_number(gateway: Gateway, key_pool, scrape: Scrape, target: Target) -> None:
    """Calls refused before any charge (a bad key, a body that is not JSON) are metered, and each
    counter they touch gets a number: Envoy logs an error for every metered call whose charge is
    missing, and counts nothing for it."""
    assert scrape.text(), "the gateway's metrics port answers nothing"
    before = len(target.component_log("gateway"))
    http = gateway.http
    body = {"model": gateway.model, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 1}
    refused = [
        http.post("/v1/chat/completions", json=body, headers={"Authorization": "Bearer not-a-key"}),
        http.post(
            "/v1/chat/completions",
            content=b"{not json",
            headers={"Authorization": f"Bearer {key_pool.shared('enterprise')}", "content-type": "application/json"},
        ),
    ]
    assert [r.status_code for r in refused] == [401, 400], [r.text[:200] for r in refused]
    time.sleep(LOG_SETTLE_S)  # an absence is checked: give the access loggers time to run
    written = target.component_log("gateway")[before:]
    bad = [line for line in written.splitlines() if NOT_A_NUMBER in line]
    assert not bad, f"{len(bad)} log lines say a metered call gave a counter no number: {bad[0][:300]}"
