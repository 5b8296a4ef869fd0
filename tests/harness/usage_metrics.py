"""Read the gateway's usage metrics (charts/maas-gateway README, "Metrics") from its metrics port.

The gateway's Envoy exports them as `envoy_maas_<name>` in the Prometheus text format on
GET /metrics of `metrics.port`. This module parses that text (prometheus-client's parser) into
samples and sums them by label, which is what a bill is made of.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families

from harness import http
from harness.errors import HarnessError

PREFIX = "envoy_maas_"
TOKENS = PREFIX + "gen_ai_client_token_usage"  # labels user, tier, model, token_type (input|output)
CHARGED = PREFIX + "tokens_charged"  # the weighted charge (the model's tokenCost): user, tier, model
REQUESTS = PREFIX + "requests"  # user, tier, model, code
REFUSALS = PREFIX + "refusals"  # user, tier, model, budget
DURATION = PREFIX + "gen_ai_server_request_duration"  # histogram (ms): model
TTFT = PREFIX + "gen_ai_server_time_to_first_token"  # histogram (ms): model
TIMEOUT_S = 10.0


class MetricsUnavailable(HarnessError):
    """The metrics port did not answer with metrics."""


@dataclass(frozen=True)
class Sample:
    name: str
    labels: dict[str, str]
    value: float


def parse(text: str) -> list[Sample]:
    """Every sample of a Prometheus text exposition under the name it is exposed as, which is the
    name Prometheus stores (histograms give _bucket, _sum and _count). prometheus-client's parser
    names a counter's samples <name>_total; Envoy exposes and Prometheus keeps <name>."""
    return [
        Sample(family.name if family.type == "counter" else s.name, dict(s.labels), float(s.value))
        for family in text_string_to_metric_families(text)
        for s in family.samples
    ]


def scrape(url: str) -> str:
    """GET the metrics text; `url` is the metrics listener's base URL (http://host:port)."""
    try:
        response = http.request("GET", url.rstrip("/") + "/metrics", headers={}, timeout=TIMEOUT_S)
    except http.TransportError as e:
        raise MetricsUnavailable(f"the gateway's metrics at {url} did not answer: {e.reason}") from e
    if response.status != 200:
        raise MetricsUnavailable(f"the gateway's metrics at {url} answered HTTP {response.status}")
    return response.body


def total(samples: Iterable[Sample], name: str, **labels: str) -> float:
    """The sum of `name`'s samples whose labels include `labels` (0 when none match)."""
    return sum(s.value for s in samples if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()))
