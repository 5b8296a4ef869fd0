"""A MaaS endpoint as the harness sees it: settings, and model discovery with clear errors.

One definition of the MaaS settings (`MaasSettings.from_env()`), one HTTP path (`harness.http`), and
errors that name the endpoint and what to do, never the key:

- a bad or missing key: `MaasError` naming the URL and the 401/403;
- an unreachable endpoint: `MaasError` naming the URL and the transport error;
- a certificate the client does not trust: `MaasError` saying to set MAAS_CA_BUNDLE or
  MAAS_TLS_VERIFY=false;
- 429 (or 503) answers are retried, honouring `Retry-After` (seconds, RFC 9110), for at
  most `DISCOVERY_DEADLINE_S` in total.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from harness import http
from harness.errors import MaasError as MaasError  # the MaaS family, named where MaaS calls live
from harness.redact import redact
from harness.waiting import Waiter, WaitPolicy

# Values of MAAS_ENDPOINT that mean "the stand-in MaaS this repository runs" (harness.maas_standin).
STANDIN = "standin"
REQUEST_TIMEOUT_S = 10.0  # one MaaS request; real MaaS front doors answer /v1/models well within this
DISCOVERY_DEADLINE_S = 60.0  # all retries of one discovery together: a CI lane must not hang on a busy MaaS
RETRY_AFTER_CAP_S = 30.0  # one wait at most, whatever Retry-After says; the deadline still bounds the sum
DEFAULT_RETRY_WAIT_S = 1.0  # a 429 without Retry-After
# One discovery's retries: the pause between them is the server's Retry-After (see `_wait`), so the
# policy's backoff only documents the default; the deadline is DISCOVERY_DEADLINE_S.
DISCOVERY = WaitPolicy.fixed(DISCOVERY_DEADLINE_S, DEFAULT_RETRY_WAIT_S)
RETRIED_STATUSES = (429, 503)


class RetryableMaasError(MaasError):
    """A 429/503 answer; `retry_after` is what the server asked for (seconds), if anything."""

    def __init__(self, message: str, retry_after: float | None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def _false(text: str) -> bool:
    return text.strip().lower() in ("0", "false", "no", "off")


@dataclass(frozen=True)
class MaasSettings:
    """An external MaaS: MAAS_ENDPOINT, MAAS_API_KEY, MAAS_MODEL, MAAS_TIER, MAAS_CA_BUNDLE, MAAS_TLS_VERIFY.

    `tls_verify` is what both httpx and llama-stack's `network.tls.verify` take: True (system
    trust store), False (no verification), or the path of a PEM CA bundle.
    """

    endpoint: str = ""
    api_key: str = ""
    model: str = ""
    tier: str = "free"  # the tier the MaaS key belongs to, for Endpoints.keys
    tls_verify: bool | str = True

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> MaasSettings:
        env = dict(os.environ if env is None else env)
        verify: bool | str = True
        if env.get("MAAS_CA_BUNDLE"):
            verify = env["MAAS_CA_BUNDLE"]
        elif _false(env.get("MAAS_TLS_VERIFY", "true")):
            verify = False
        return cls(
            endpoint=env.get("MAAS_ENDPOINT", ""),
            api_key=env.get("MAAS_API_KEY", ""),
            model=env.get("MAAS_MODEL", ""),
            tier=env.get("MAAS_TIER", "free"),
            tls_verify=verify,
        )

    @property
    def configured(self) -> bool:
        return bool(self.endpoint and self.api_key)

    @property
    def is_standin(self) -> bool:
        return self.endpoint == STANDIN

    def missing(self) -> list[str]:
        return [name for name, value in (("MAAS_ENDPOINT", self.endpoint), ("MAAS_API_KEY", self.api_key)) if not value]


def v1_url(endpoint: str) -> str:
    """Endpoints may be given with or without the trailing /v1; normalise to it."""
    base = endpoint.rstrip("/")
    return base if base.endswith("/v1") else base + "/v1"


def retry_after_seconds(value: str | None) -> float | None:
    """Seconds from a `Retry-After` header given as delay-seconds; None when absent or an HTTP date."""
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None


def _wait(error: BaseException | None) -> float:
    asked = error.retry_after if isinstance(error, RetryableMaasError) else None
    return min(RETRY_AFTER_CAP_S, DEFAULT_RETRY_WAIT_S if asked is None else asked)


def get_models(
    endpoint: str,
    api_key: str,
    *,
    verify: bool | str = True,
    deadline_s: float = DISCOVERY_DEADLINE_S,
    transport: http.Transport | None = None,
    waiter: Waiter | None = None,
) -> list[str]:
    """`GET <endpoint>/v1/models` with the key; the model ids listed. Raises `MaasError`.

    429/503 answers are retried after their `Retry-After` (capped at RETRY_AFTER_CAP_S) until
    `deadline_s` has passed; the last error is raised then. `transport`/`waiter`: for tests.
    """
    url = v1_url(endpoint) + "/models"
    retrying = (waiter or Waiter()).retrying(
        DISCOVERY.within(deadline_s),
        error_if=lambda e: isinstance(e, RetryableMaasError),
        pause=_wait,
    )
    with http.client(verify=verify, timeout=REQUEST_TIMEOUT_S, transport=transport) as client:
        return retrying(_get_once, client, url, api_key)


def _get_once(client: http.Session, url: str, api_key: str) -> list[str]:
    try:
        response = http.request("GET", url, key=api_key, session=client)
    except http.TransportError as error:
        reason = redact(error.reason, [api_key])
        if error.untrusted_certificate:
            raise MaasError(
                f"MaaS endpoint {url} failed TLS verification ({reason}): its certificate is not trusted; "
                "give its CA bundle in MAAS_CA_BUNDLE=<path> (or, for a test endpoint only, MAAS_TLS_VERIFY=false)"
            ) from None
        raise MaasError(f"MaaS endpoint {url} unreachable: {reason}") from None
    body = redact(response.body[:300], [api_key])
    if response.status in RETRIED_STATUSES:
        retry_after = retry_after_seconds(response.headers.get("retry-after"))
        raise RetryableMaasError(f"MaaS endpoint {url} answered {response.status}: {body}", retry_after)
    if response.status in (401, 403):
        raise MaasError(
            f"MaaS endpoint {url} answered {response.status}: the API key was refused (check MAAS_API_KEY); {body}"
        )
    if response.status != 200:
        raise MaasError(f"MaaS endpoint {url} answered {response.status}: {body}")
    try:
        return http.model_ids(response.json())
    except ValueError:
        raise MaasError(f"MaaS endpoint {url} answered 200 with a body that is not JSON: {body}") from None


def select_models(listed: list[str], wanted: str = "") -> list[str]:
    """The models to register: every listed one, or only `wanted` (MAAS_MODEL) when given.

    Raises `MaasError` when `wanted` is not among the listed models (naming what is listed).
    """
    if not wanted:
        return listed
    if wanted not in listed:
        raise MaasError(f"MAAS_MODEL={wanted!r} is not listed by the MaaS; it lists {sorted(listed)}")
    return [wanted]
