"""harness.http, the one HTTP client, against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from harness import http
from harness.loopback import free_port

pytestmark = pytest.mark.unit


class Handler(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass

    def _answer(self, status: int, payload: object, content_type: str = "application/json") -> None:
        data = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        auth = self.headers.get("Authorization", "")
        if self.path == "/v1/models":
            if auth != "Bearer good":
                self._answer(401, {"error": {"type": "authentication_error"}})
            else:
                self._answer(200, {"data": [{"id": "a"}, {"identifier": "b"}]})
        elif self.path == "/text":
            self._answer(200, "plain words", "text/plain")
        else:
            self._answer(404, {"error": {"message": "no such route"}})

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self._answer(201, {"echo": body, "accept": self.headers.get("Accept")})


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_json_in_and_out(server: str):
    status, payload = http.json_request("POST", f"{server}/anything", body={"n": 1})
    assert (status, payload) == (201, {"echo": {"n": 1}, "accept": "application/json"})


def test_http_errors_come_back_as_answers_and_text_stays_text(server: str):
    assert http.json_request("GET", f"{server}/missing")[0] == 404
    assert http.json_request("GET", f"{server}/text") == (200, "plain words")
    response = http.request("GET", f"{server}/missing")
    assert response.status == 404 and response.headers["content-type"] == "application/json"


def test_an_unreachable_server_raises_a_transport_error_naming_the_url():
    url = f"http://127.0.0.1:{free_port()}/v1/models"
    with pytest.raises(http.TransportError, match=rf"GET {url}: ConnectError") as caught:
        http.request("GET", url, timeout=2)
    assert isinstance(caught.value, OSError)


def test_list_models_sends_the_key_and_reads_both_id_fields(server: str):
    assert http.list_models(server, "good") == ["a", "b"]


def test_list_models_raises_or_gives_nothing_when_refused(server: str):
    with pytest.raises(http.NotListed, match="answered HTTP 401"):
        http.list_models(server, "bad")
    assert http.list_models(server, "bad", missing_ok=True) == []
    assert http.list_models(f"http://127.0.0.1:{free_port()}", "good", missing_ok=True, timeout=2) == []


def test_answers_ok_is_a_health_check(server: str):
    assert http.answers_ok(f"{server}/text")
    assert not http.answers_ok(f"{server}/missing")
    assert http.answers_ok(f"{server}/missing", accept=range(200, 500))
    assert not http.answers_ok(f"http://127.0.0.1:{free_port()}/", timeout=2)
