"""The bill's arithmetic (harness.usage_report): exact counter increases from raw samples across pod
restarts, the window options, and the outputs stating their source and window."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from harness import usage_report
from harness.usage_metrics import CHARGED, REFUSALS, REQUESTS, TOKENS, parse
from harness.usage_report import Series, Window

pytestmark = pytest.mark.unit

END = datetime(2026, 12, 7, 12, 0, 0, tzinfo=UTC)
WINDOW = Window(END - timedelta(minutes=10), END)
T0 = WINDOW.start.timestamp()


def test_steps_count_rises_and_a_drop_as_a_restart() -> None:
    s = Series({}, baseline=5, samples=[(T0 + 5, 7), (T0 + 10, 7), (T0 + 15, 2), (T0 + 20, 4)])
    assert s.increase() == 2 + 0 + 2 + 2


def test_a_restart_seen_in_the_uptime_counts_the_next_sample_whole() -> None:
    """The pod restarted and its counter climbed back above the last value before the next scrape:
    without the uptime, the bill would miss the new process's first 5 tokens."""
    s = Series({}, baseline=5, samples=[(T0 + 5, 7), (T0 + 20, 9)], restarts=[T0 + 12], since=T0 - 300)
    assert s.increase() == 2 + 9


def test_a_restart_before_the_first_sample_resets_the_baseline() -> None:
    s = Series({}, baseline=40, samples=[(T0 + 5, 46)], restarts=[T0 + 1], since=T0 - 300)
    assert s.increase() == 46


class FakePrometheus(usage_report.Prometheus):
    """Canned answers of Prometheus's query API, keyed by the query text (unit tests of the arithmetic;
    the e2e tests run the real Prometheus)."""

    def __init__(self, answers: dict[str, list[dict[str, Any]]]) -> None:
        self.url = "http://prometheus.test"
        self.answers = answers
        self.asked: list[str] = []

    def query(self, promql: str, at: datetime) -> list[dict[str, Any]]:
        self.asked.append(promql)
        return self.answers.get(promql, [])

    def close(self) -> None:
        pass


def matrix(labels: dict[str, str], *points: tuple[float, float]) -> dict[str, Any]:
    return {"metric": labels, "values": [[t, str(v)] for t, v in points]}


def vector(labels: dict[str, str], value: float) -> dict[str, Any]:
    return {"metric": labels, "value": [T0, str(value)]}


def test_bill_groups_by_the_label_and_states_its_source_and_window() -> None:
    alice = {"user": "alice", "tier": "free", "model": "m", "instance": "a:9102"}
    bob = {"user": "bob", "tier": "free", "model": "m", "instance": "a:9102"}
    sel_in = f'{TOKENS}{{token_type="input"}}'
    answers = {
        f"{sel_in}[600s]": [matrix({**alice, "token_type": "input"}, (T0 + 5, 10), (T0 + 10, 30)),
                            matrix({**bob, "token_type": "input"}, (T0 + 10, 4))],
        sel_in: [vector({**alice, "token_type": "input"}, 10)],
        f"{CHARGED}{{}}[600s]": [matrix(alice, (T0 + 10, 50))],
        f"{REQUESTS}{{}}[600s]": [matrix({**alice, "code": "200"}, (T0 + 10, 3))],
        f"{REFUSALS}{{}}[600s]": [matrix({**bob, "budget": "tier_tokens"}, (T0 + 10, 1))],
    }  # fmt: skip
    bill = usage_report.bill(FakePrometheus(answers), WINDOW, "user")
    assert bill.rows["alice"]["input_tokens"] == 20  # from its value at the window's start
    assert bill.rows["bob"]["input_tokens"] == 4  # born inside the window: counted from 0
    assert bill.rows["alice"]["charged_tokens"] == 50 and bill.rows["bob"]["refusals"] == 1
    table = usage_report.render(bill, "table")
    assert table.startswith(
        "Usage from Prometheus at http://prometheus.test, 2026-12-07T11:50:00Z to 2026-12-07T12:00:00Z"
    )
    report = json.loads(usage_report.render(bill, "json"))
    assert report["window"] == {"start": "2026-12-07T11:50:00Z", "end": "2026-12-07T12:00:00Z", "seconds": 600}
    assert report["totals"]["input_tokens"] == 24
    rows = list(csv.reader(io.StringIO(usage_report.render(bill, "csv"))))
    assert rows[0] == ["user", *usage_report.COLUMNS] and rows[1][:2] == ["alice", "20"]


@pytest.mark.parametrize(
    ("since", "until", "seconds"),
    [("1h", "", 3600), ("2026-12-07T11:00:00Z", "2026-12-07T11:30:00Z", 1800), ("15m", "2026-12-07T11:30:00Z", 900)],
)
def test_window_options(since: str, until: str, seconds: int) -> None:
    assert usage_report.window(since, until, now=END).seconds == seconds


@pytest.mark.parametrize(
    ("since", "until", "says"),
    [("0s", "", "--since '0s'"), ("yesterday", "", "--since 'yesterday'"),
     ("2026-12-07T12:30:00Z", "", "is not before --until"), ("1h", "noon", "--until 'noon'")],
)  # fmt: skip
def test_bad_window_options_are_named(since: str, until: str, says: str) -> None:
    with pytest.raises(usage_report.BadWindow, match=says):
        usage_report.window(since, until, now=END)


def test_counters_keep_the_name_prometheus_stores() -> None:
    text = (
        "# TYPE envoy_maas_requests counter\n"
        'envoy_maas_requests{user="alice",code="200"} 3\n'
        "# TYPE envoy_maas_gen_ai_server_request_duration histogram\n"
        'envoy_maas_gen_ai_server_request_duration_bucket{model="m",le="+Inf"} 2\n'
        'envoy_maas_gen_ai_server_request_duration_sum{model="m"} 7\n'
        'envoy_maas_gen_ai_server_request_duration_count{model="m"} 2\n'
    )
    names = {s.name for s in parse(text)}
    assert REQUESTS in names and REQUESTS + "_total" not in names
    assert "envoy_maas_gen_ai_server_request_duration_count" in names
