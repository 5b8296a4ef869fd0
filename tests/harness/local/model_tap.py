"""A recording tap in front of the real inference simulator on the local target.

llm-d-inference-sim answers every model call, but it reports nothing of what it received
(its `--log-http` would log header values, and llama-stack's provider-data header carries the
caller's key). Tests need exactly that to prove what reaches a model: that the gateway strips
keys and identity headers, that retrieved chunks and tool results reach the prompt. So the
local target starts the simulator through this tap, a STAND-IN for an observation point only:

    python -m harness.local.model_tap --record FILE -- /path/llm-d-inference-sim <chart args>

It listens on 127.0.0.1 at the `--port` of the simulator's own args, starts the simulator with
those args on another free loopback port, and relays every request and response unchanged
(streams chunk by chunk). What it keeps:

* each model call's path and JSON body, one line in FILE (never headers; credential-named body
  fields masked, as a client may put its key there): `GET /tap/model-calls`;
* the header *names* of the last requests (never values): `GET /tap/received-headers`.

It exits with the simulator's exit code when the simulator ends, and stops it on SIGTERM.
"""

from __future__ import annotations

import argparse
import http.client
import json
import signal
import socket
import subprocess
import sys
import threading
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from harness.redact import redact_fields

RECEIVED_HEADERS_PATH = "/tap/received-headers"
MODEL_CALLS_PATH = "/tap/model-calls"
MODEL_ROUTES = ("/v1/chat/completions", "/v1/completions", "/v1/responses", "/v1/embeddings")
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-connection"}
UPSTREAM_TIMEOUT_S = 300.0  # the longest model call a test makes, slow CPU included
STOP_TIMEOUT_S = 10.0
STREAM_READ_BYTES = 65536
KEEP_HEADER_RECORDS = 512


class HeaderNames:
    """Header names of the last requests (newest last), numbered from 1. Names only: values may be keys."""

    def __init__(self, keep: int = KEEP_HEADER_RECORDS) -> None:
        self._seen: deque[dict[str, Any]] = deque(maxlen=keep)
        self._count = 0
        self._lock = threading.Lock()

    def record(self, method: str, path: str, names: list[str]) -> None:
        with self._lock:
            self._count += 1
            self._seen.append({"seq": self._count, "method": method, "path": path, "names": sorted(set(names))})

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {"count": self._count, "requests": list(self._seen)}


class TapServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, port: int, upstream_port: int, record: Path) -> None:
        super().__init__(("127.0.0.1", port), TapHandler)
        self.upstream_port = upstream_port
        self.record = record
        self.record_lock = threading.Lock()
        self.header_names = HeaderNames()

    def write_call(self, path: str, body: Any) -> None:
        line = json.dumps({"path": path, "body": redact_fields(body)}) + "\n"
        with self.record_lock, self.record.open("a", encoding="utf-8") as out:
            out.write(line)

    def calls(self) -> list[dict[str, Any]]:
        if not self.record.exists():
            return []
        with self.record_lock, self.record.open(encoding="utf-8") as lines:
            return [json.loads(line) for line in lines if line.strip()]


class TapHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: TapServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (stdlib signature)
        return  # the simulator logs every call; the tap adds nothing worth a line

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    def _handle(self) -> None:
        path = self.path.split("?", 1)[0]
        if self.command == "GET" and path == RECEIVED_HEADERS_PATH:
            self._send_json(200, self.server.header_names.snapshot())
            return
        if self.command == "GET" and path == MODEL_CALLS_PATH:
            self._send_json(200, {"calls": self.server.calls()})
            return
        self.server.header_names.record(self.command, path, [k.lower() for k in self.headers])
        body = self._read_body()
        if self.command == "POST" and path in MODEL_ROUTES:
            try:
                self.server.write_call(path, json.loads(body or b"null"))
            except (json.JSONDecodeError, UnicodeDecodeError):
                self.server.write_call(path, None)  # the simulator answers the bad body itself
        self._relay(body)

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            parts: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _relay(self, body: bytes) -> None:
        upstream = http.client.HTTPConnection("127.0.0.1", self.server.upstream_port, timeout=UPSTREAM_TIMEOUT_S)
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP | {"content-length"}}
            if body or self.command in ("POST", "PUT"):
                headers["Content-Length"] = str(len(body))
            upstream.request(self.command, self.path, body=body or None, headers=headers)
            response = upstream.getresponse()
            self.send_response_only(response.status, response.reason)
            for name, value in response.getheaders():
                if name.lower() not in HOP_BY_HOP | {"content-length"}:
                    self.send_header(name, value)
            if response.status in (204, 304) or self.command == "HEAD":
                self.end_headers()
                return
            if response.getheader("Content-Length") is not None and not response.chunked:
                payload = response.read()
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
                return
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            while chunk := response.read1(STREAM_READ_BYTES):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client left: dropping the upstream connection aborts the call
        except (OSError, http.client.HTTPException) as err:
            self.close_connection = True
            self._send_json(502, {"error": {"message": f"model server unreachable: {err}", "type": "server_error"}})
        finally:
            upstream.close()

    def _send_json(self, status: int, doc: dict[str, Any]) -> None:
        payload = json.dumps(doc).encode()
        try:
            self.send_response_only(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True


def free_loopback_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def with_port(argv: list[str], port: int) -> tuple[list[str], int]:
    """`argv` with its `--port N` (or `--port=N`) value replaced; returns it and N."""
    for i, arg in enumerate(argv):
        if arg == "--port" and i + 1 < len(argv):
            return [*argv[:i], "--port", str(port), *argv[i + 2 :]], int(argv[i + 1])
        if arg.startswith("--port="):
            return [*argv[:i], f"--port={port}", *argv[i + 1 :]], int(arg.split("=", 1)[1])
    raise SystemExit("model_tap: the simulator's args have no --port: nothing to listen on")


def main(args: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="harness.local.model_tap", description=__doc__.split("\n\n")[0])
    parser.add_argument("--record", type=Path, required=True, help="append each model call's path and body here")
    parser.add_argument("simulator", nargs=argparse.REMAINDER, help="-- then the simulator's command line")
    opts = parser.parse_args(args)
    command = opts.simulator[1:] if opts.simulator[:1] == ["--"] else opts.simulator
    if not command:
        parser.error("give the simulator's command line after --")
    opts.record.touch()  # present from the start: an empty record means no model call yet
    upstream_port = free_loopback_port()
    command, port = with_port(command, upstream_port)
    server = TapServer(port, upstream_port, opts.record)
    simulator = subprocess.Popen(command)

    def stop(signum: int, frame: Any) -> None:
        simulator.terminate()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(f"model_tap: 127.0.0.1:{port} -> simulator on 127.0.0.1:{upstream_port}", flush=True)
    try:
        code = simulator.wait()
    finally:
        server.shutdown()
        if simulator.poll() is None:
            simulator.kill()
    return code


if __name__ == "__main__":
    sys.exit(main())
