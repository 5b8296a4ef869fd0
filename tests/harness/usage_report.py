"""The bill: each user's (model's, tier's) tokens, charge, requests and refusals over a window, read
from the Prometheus that scrapes the gateway (`python -m harness usage`), and its plot.

The numbers are counter increases computed from Prometheus's raw samples, not from `increase()`
(which extrapolates to the window's edges and so gives fractions): for each series, the sum of its
steps inside the window, starting from its value at the window's start (0 for a series that was
not there then). A gateway pod that restarted starts its counters from 0: a sample taken after a
restart counts whole. Restarts are read from the pod's `envoy_server_uptime` (it drops), and a
counter that drops counts as restarted too. So a bill equals, call for call, what the gateway
counted while Prometheus was scraping it.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlencode

from harness import gateway_keys, http
from harness.errors import HarnessError
from harness.usage_metrics import CHARGED, REFUSALS, REQUESTS, TOKENS

GROUPS = ("user", "model", "tier")
FORMATS = ("table", "json", "csv")
# Column -> (metric, label matchers).
COLUMNS: dict[str, tuple[str, dict[str, str]]] = {
    "input_tokens": (TOKENS, {"token_type": "input"}),
    "output_tokens": (TOKENS, {"token_type": "output"}),
    "charged_tokens": (CHARGED, {}),
    "requests": (REQUESTS, {}),
    "refusals": (REFUSALS, {}),
}
UPTIME = "envoy_server_uptime"  # seconds since the gateway pod's Envoy started (a gauge)
# How long before the window a restart is looked for: Prometheus's lookback for the value at the
# window's start (its default query.lookback-delta, 5 minutes), so that a restart between that
# value and the window's first sample is seen.
LOOKBACK_S = 300
TIMEOUT_S = 30.0
UNNAMED = "(none)"  # the group of series without the label's value (an unauthenticated call has no user)


class PrometheusError(HarnessError):
    pass


class BadWindow(HarnessError, ValueError):
    pass


@dataclass(frozen=True)
class Window:
    start: datetime
    end: datetime

    @property
    def seconds(self) -> int:
        return int((self.end - self.start).total_seconds())

    def describe(self) -> str:
        return f"{_iso(self.start)} to {_iso(self.end)} ({self.seconds}s)"


def parse_time(text: str, option: str) -> datetime:
    try:
        at = datetime.strptime(text.strip(), "%Y-%m-%dT%H:%M:%SZ")
    except ValueError:
        raise BadWindow(f"{option} {text!r}: expected a UTC time such as 2026-11-01T00:00:00Z") from None
    return at.replace(tzinfo=UTC)


def window(since: str, until: str = "", now: datetime | None = None) -> Window:
    """The window of `--since` (a duration before the end, or a UTC time) and `--until` (a UTC time;
    default now). Raises BadWindow for anything else, or an empty window."""
    end = parse_time(until, "--until") if until else (now or datetime.now(UTC)).replace(microsecond=0)
    if since[:1].isdigit() and "T" in since:
        start = parse_time(since, "--since")
    else:
        try:
            start = end - gateway_keys.parse_duration(since, "--since")
        except gateway_keys.BadKeyRequest as e:
            raise BadWindow(f"{e} (or a UTC time such as 2026-11-01T00:00:00Z)") from None
    if start >= end:
        raise BadWindow(f"--since {since!r} is not before --until ({_iso(end)})")
    return Window(start, end)


@dataclass
class Series:
    labels: dict[str, str]
    baseline: float  # the value at the window's start; 0 for a series that was not there then
    samples: list[tuple[float, float]]  # (unix time, value) inside the window
    restarts: list[float] = field(default_factory=list)  # when its pod was seen restarted (unix time)
    since: float = 0.0  # the earliest time the baseline may have been scraped

    def steps(self) -> list[tuple[float, float]]:
        """(time, increase) of each sample: its rise over the one before; after a restart of its pod,
        or a drop, its whole value (the counter started again from 0)."""
        out, last, last_at = [], self.baseline, self.since
        for at, value in self.samples:
            restarted = any(last_at < r <= at for r in self.restarts)
            out.append((at, value if restarted or value < last else value - last))
            last, last_at = value, at
        return out

    def increase(self) -> float:
        return sum(step for _, step in self.steps())


class Prometheus:
    """The two calls of Prometheus's HTTP API the bill needs (/api/v1/query at a time)."""

    def __init__(self, url: str, session: http.Session | None = None) -> None:
        self.url = url.rstrip("/")
        self.session = session or http.client(timeout=TIMEOUT_S)

    def query(self, promql: str, at: datetime) -> list[dict[str, Any]]:
        url = f"{self.url}/api/v1/query?{urlencode({'query': promql, 'time': at.timestamp()})}"
        try:
            response = http.request("GET", url, headers={}, timeout=TIMEOUT_S, session=self.session)
        except http.TransportError as e:
            raise PrometheusError(f"Prometheus at {self.url} did not answer: {e.reason}") from e
        try:
            body = response.json()
        except ValueError:
            body = {}
        if response.status != 200 or body.get("status") != "success":
            error = body.get("error", response.body[:200])
            raise PrometheusError(f"Prometheus at {self.url} refused {promql!r}: HTTP {response.status} {error}")
        return list(body["data"]["result"])

    def close(self) -> None:
        self.session.close()


def _selector(metric: str, matchers: Mapping[str, str]) -> str:
    inside = ",".join(f"{k}={json.dumps(v)}" for k, v in sorted(matchers.items()))
    return f"{metric}{{{inside}}}"


def _key(labels: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((k, v) for k, v in labels.items() if k not in ("__name__", "instance", "job")))


def restarts(prom: Prometheus, window: Window) -> dict[str, list[float]]:
    """Per scraped pod (instance), the times of the first samples after its Envoy restarted: where
    its uptime drops, from LOOKBACK_S before the window to its end."""
    out: dict[str, list[float]] = defaultdict(list)
    for r in prom.query(f"{UPTIME}[{window.seconds + LOOKBACK_S}s]", window.end):
        samples = [(float(t), float(v)) for t, v in r.get("values", [])]
        instance = r["metric"].get("instance", "")
        out[instance] += [t for (_, before), (t, now) in zip(samples, samples[1:], strict=False) if now < before]
    return dict(out)


def series(
    prom: Prometheus, metric: str, matchers: Mapping[str, str], window: Window, started: Mapping[str, list[float]]
) -> list[Series]:
    """Every series of `metric` with its raw samples in the window and its value at the window's start
    (Prometheus's instant value: none for a series that was gone, as after its pod restarted). Series
    of several scraped pods (instance) stay apart: each pod counts only its own calls."""
    selector = _selector(metric, matchers)
    raw = prom.query(f"{selector}[{window.seconds}s]", window.end)
    at_start = prom.query(selector, window.start)

    def key(r: dict[str, Any]) -> tuple[tuple[str, str], ...]:
        return _key(r["metric"]) + (("instance", r["metric"].get("instance", "")),)

    baselines = {key(r): float(r["value"][1]) for r in at_start}
    since = window.start.timestamp() - LOOKBACK_S
    return [
        Series(
            dict(_key(r["metric"])),
            baselines.get(key(r), 0.0),
            [(float(t), float(v)) for t, v in r.get("values", [])],
            started.get(r["metric"].get("instance", ""), []),
            since,
        )
        for r in raw
    ]


@dataclass
class Bill:
    source: str
    window: Window
    by: str
    rows: dict[str, dict[str, float]] = field(default_factory=dict)  # group value -> column -> amount

    def totals(self) -> dict[str, float]:
        return {c: sum(row.get(c, 0.0) for row in self.rows.values()) for c in COLUMNS}

    def statement(self) -> str:
        return f"Usage from Prometheus at {self.source}, {self.window.describe()}, by {self.by}"


def bill(prom: Prometheus, window: Window, by: str) -> Bill:
    if by not in GROUPS:
        raise ValueError(f"--by {by!r}: choose one of {', '.join(GROUPS)}")
    rows: dict[str, dict[str, float]] = defaultdict(lambda: dict.fromkeys(COLUMNS, 0.0))
    started = restarts(prom, window)  # once for every column
    for column, (metric, matchers) in COLUMNS.items():
        for s in series(prom, metric, matchers, window, started):
            rows[s.labels.get(by) or UNNAMED][column] += s.increase()
    return Bill(prom.url, window, by, dict(sorted(rows.items())))


def cumulative_tokens(prom: Prometheus, window: Window, by: str) -> dict[str, list[tuple[datetime, float]]]:
    """Each group's tokens (input and output) summed over time: the lines `plot` draws."""
    events: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for s in series(prom, TOKENS, {}, window, restarts(prom, window)):
        events[s.labels.get(by) or UNNAMED].extend(s.steps())
    lines = {}
    for group, steps in sorted(events.items()):
        total, points = 0.0, [(window.start, 0.0)]
        for at, step in sorted(steps):
            total += step
            points.append((datetime.fromtimestamp(at, UTC), total))
        lines[group] = points
    return lines


def plot(
    lines: Mapping[str, list[tuple[datetime, float]]], window: Window, by: str, source: str, path: Path
) -> dict[str, list[float]]:
    """Draw each group's cumulative tokens into a PNG at `path`; returns the plotted y data per line
    (read back from the figure: what was drawn, not what was meant)."""
    import matplotlib

    matplotlib.use("Agg")  # no display: write files only
    from matplotlib import pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 5))
    try:
        for group, points in lines.items():
            days = [t.timestamp() / 86400 for t, _ in points]  # matplotlib's dates: days since 1970
            ax.step(days, [v for _, v in points], where="post", label=group)
        ax.set_title(f"Tokens (input + output) by {by}, {window.describe()}")
        ax.xaxis_date("UTC")
        ax.set_xlabel("time (UTC)")
        ax.set_ylabel("tokens since the window began")
        ax.text(0, -0.15, f"source: Prometheus at {source}", transform=ax.transAxes, fontsize=8)
        if lines:
            ax.legend(loc="upper left", fontsize=8)
        fig.autofmt_xdate()
        fig.savefig(path, dpi=100, bbox_inches="tight")
        return {
            str(line.get_label()): [float(y) for y in cast(Sequence[float], line.get_ydata())]
            for line in ax.get_lines()
        }
    finally:
        plt.close(fig)


def render(b: Bill, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(
            {
                "source": f"Prometheus at {b.source}",
                "window": {"start": _iso(b.window.start), "end": _iso(b.window.end), "seconds": b.window.seconds},
                "by": b.by,
                "rows": [{b.by: group, **_ints(row)} for group, row in b.rows.items()],
                "totals": _ints(b.totals()),
            },
            indent=2,
        )
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow([b.by, *COLUMNS])
        for group, row in b.rows.items():
            writer.writerow([group, *(_ints(row)[c] for c in COLUMNS)])
        return out.getvalue().rstrip("\n")
    return _table(b)


def _table(b: Bill) -> str:
    header = [b.by, *COLUMNS]
    body = [[group, *(str(_ints(row)[c]) for c in COLUMNS)] for group, row in b.rows.items()]
    body.append(["total", *(str(_ints(b.totals())[c]) for c in COLUMNS)])
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]
    lines = [b.statement() + ":"]
    for r in [header, *body]:
        lines.append(
            "  ".join(
                cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(r, widths, strict=True))
            )
        )
    if not b.rows:
        lines.append("(no metered calls in this window)")
    return "\n".join(lines)


def _ints(row: Mapping[str, float]) -> dict[str, int | float]:
    """Counts are whole numbers; a fraction (never expected) is shown as it is, not rounded away."""
    return {c: int(v) if math.isclose(v, round(v)) else v for c, v in row.items()}


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
