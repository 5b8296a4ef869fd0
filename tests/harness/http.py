"""The harness's one HTTP client (httpx): every request the harness makes goes through `request`.

- JSON in and out: `body` is sent as JSON; `Response.json()` parses the answer, `json_request`
  returns `(status, parsed body or text)`.
- HTTP error statuses come back as a `Response` (callers decide); a request that reaches no
  server raises `TransportError`, a `ConnectionError` (so an `OSError`) naming the method, the
  URL and httpx's error.
- Credentials: `key` is sent as `Authorization: Bearer`; without a key and without `headers`, the
  caller headers remembered for an authenticated llama-stack at that URL (`harness.llama_stack_auth`).
- Timeouts are the named constants below; retries go through tenacity (`harness.maas`, the waits).
"""

from __future__ import annotations

import json
import ssl
from dataclasses import dataclass, field
from typing import Any

import httpx

from harness import llama_stack_auth
from harness.errors import StackNotReady

REQUEST_TIMEOUT_S = 10.0  # one llama-stack or gateway request on a busy 2-core machine
PROBE_TIMEOUT_S = 5.0  # one readiness/version probe; the caller polls
HEALTH_TIMEOUT_S = 2.0  # one health check of a process that answers from memory; the caller polls
LOCAL_PROBE_TIMEOUT_S = 1.0  # one readinessProbe of a local process on 127.0.0.1; the caller polls
LIST_TIMEOUT_S = 15.0  # one `GET /v1/models` while a deployment's endpoints are collected

Transport = httpx.BaseTransport  # tests inject httpx.MockTransport
Verify = bool | str | ssl.SSLContext  # TLS verification: on/off, a CA bundle path, or a context
Session = httpx.Client  # several requests to one server: `client()` makes one


class TransportError(StackNotReady, ConnectionError):
    """No HTTP answer: connection refused, timeout, TLS failure. `reason` is httpx's error, by type."""

    def __init__(self, method: str, url: str, cause: Exception) -> None:
        self.reason = f"{type(cause).__name__}: {cause}"
        self.untrusted_certificate = "CERTIFICATE_VERIFY_FAILED" in str(cause) or isinstance(
            cause.__context__, ssl.SSLCertVerificationError
        )
        super().__init__(f"{method} {url}: {self.reason}")


@dataclass
class Response:
    status: int
    headers: dict[str, str] = field(default_factory=dict)  # names in lower case
    body: str = ""

    def json(self) -> Any:
        return json.loads(self.body)


def ssl_verify(verify: Verify) -> bool | ssl.SSLContext:
    """httpx's `verify` for a setting that may be a CA bundle path: a path becomes an SSL context."""
    return ssl.create_default_context(cafile=verify) if isinstance(verify, str) else verify


def client(
    *, verify: Verify = True, timeout: float = REQUEST_TIMEOUT_S, transport: Transport | None = None
) -> Session:
    """A client for several requests to one server (connection reuse); pass it to `request`."""
    return httpx.Client(verify=ssl_verify(verify), timeout=timeout, transport=transport)


def request(
    method: str,
    url: str,
    *,
    key: str = "",
    body: Any = None,
    headers: dict[str, str] | None = None,
    timeout: float = REQUEST_TIMEOUT_S,
    verify: Verify = True,
    session: Session | None = None,
) -> Response:
    """One request. `headers` are sent as given, after `key`'s; with neither, the caller headers of
    an authenticated llama-stack at `url`. Raises `TransportError` when no server answers."""
    if not key and headers is None:
        headers = llama_stack_auth.headers_for(url)
    bearer = {"Authorization": f"Bearer {key}"} if key else {}
    sent = {"Accept": "application/json", **bearer, **(headers or {})}
    try:
        if session is not None:
            answer = session.request(method, url, json=body, headers=sent, timeout=timeout)
        else:
            answer = httpx.request(method, url, json=body, headers=sent, timeout=timeout, verify=ssl_verify(verify))
    except httpx.HTTPError as error:
        raise TransportError(method, url, error) from None
    return Response(answer.status_code, {k.lower(): v for k, v in answer.headers.items()}, answer.text)


def json_request(
    method: str, url: str, *, token: str = "", body: Any = None, timeout: float = REQUEST_TIMEOUT_S
) -> tuple[int, Any]:
    """One JSON request; `(status, parsed body or text)`. Never raises on HTTP errors; raises
    `TransportError` (an OSError) when the server cannot be reached."""
    response = request(method, url, key=token, body=body, timeout=timeout)
    try:
        return response.status, response.json()
    except ValueError:
        return response.status, response.body


def model_ids(payload: Any) -> list[str]:
    """Ids from an OpenAI-style `{"data": [{"id": ...}]}`, or a bare list of such items (llama-stack
    also uses `identifier`)."""
    items = payload.get("data", []) if isinstance(payload, dict) else payload if isinstance(payload, list) else []
    return [str(item.get("id") or item.get("identifier")) for item in items if isinstance(item, dict)]


class NotListed(StackNotReady, LookupError):
    """`GET /v1/models` answered, but not with a model list."""


def list_models(
    base_url: str,
    key: str = "",
    *,
    timeout: float = LIST_TIMEOUT_S,
    headers: dict[str, str] | None = None,
    missing_ok: bool = False,
) -> list[str]:
    """The model ids `GET <base_url>/v1/models` lists (credentials as in `request`). Raises
    `NotListed` for an answer other than 200 with JSON, `TransportError` when nothing answers;
    with `missing_ok`, both give an empty list."""
    base = base_url.rstrip("/")
    try:
        response = request("GET", f"{base}/v1/models", key=key, timeout=timeout, headers=headers)
        if response.status != 200:
            raise NotListed(f"{base} did not list models: GET /v1/models answered HTTP {response.status}")
        try:
            return model_ids(response.json())
        except ValueError:
            raise NotListed(f"{base} did not list models: the answer is not JSON") from None
    except (TransportError, NotListed):
        if missing_ok:
            return []
        raise


def answers_ok(
    url: str, *, verify: Verify = True, timeout: float = HEALTH_TIMEOUT_S, accept: range = range(200, 201)
) -> bool:
    """A health check: GET `url` (no credentials) answers a status in `accept`; False when it cannot be reached."""
    try:
        return request("GET", url, headers={}, verify=verify, timeout=timeout).status in accept
    except OSError:
        return False
